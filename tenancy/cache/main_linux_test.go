package cache

import (
	"os/exec"
	"syscall"
)

func init() {
	prepareRedisCmd = func(cmd *exec.Cmd) {
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	}
}
