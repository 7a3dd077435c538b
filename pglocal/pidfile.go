package pglocal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// pidFileName is the lock file a running postmaster keeps in its data
// directory. Its lines are: PID, data directory, start time, port, first
// socket directory, first listen address, shared memory key, status.
const pidFileName = "postmaster.pid"

// postmasterState says what the process named in postmaster.pid is.
type postmasterState int

const (
	postmasterNone    postmasterState = iota // no postmaster.pid
	postmasterGone                           // the PID is dead: a crash left the file behind
	postmasterForeign                        // the PID was reused by an unrelated process
	postmasterAlive                          // a live postgres process
)

type pidFile struct {
	pid       int
	port      int
	socketDir string
	shmID     int // System V shared memory id; 0 if unknown
}

// inspectPIDFile reads dataDir's postmaster.pid and classifies its process.
func inspectPIDFile(dataDir string) (pidFile, postmasterState, error) {
	data, err := os.ReadFile(filepath.Join(dataDir, pidFileName))
	if errors.Is(err, os.ErrNotExist) {
		return pidFile{}, postmasterNone, nil
	}
	if err != nil {
		return pidFile{}, postmasterNone, fmt.Errorf("read %s: %w", pidFileName, err)
	}

	lines := strings.Split(string(data), "\n")
	field := func(i int) string {
		if i < len(lines) {
			return strings.TrimSpace(lines[i])
		}
		return ""
	}

	pid, err := strconv.Atoi(field(0))
	if err != nil || pid <= 0 {
		// A file cut short by a crash names no process to worry about.
		return pidFile{}, postmasterGone, nil
	}
	port, _ := strconv.Atoi(field(3))
	pf := pidFile{pid: pid, port: port, socketDir: field(4)}
	if key := strings.Fields(field(6)); len(key) == 2 {
		pf.shmID, _ = strconv.Atoi(key[1])
	}

	switch {
	case !processAlive(pid):
		return pf, postmasterGone, nil
	case !isPostgresProcess(pid):
		return pf, postmasterForeign, nil
	default:
		return pf, postmasterAlive, nil
	}
}

// removeStaleLock removes the lock file at path, postmaster.pid or a
// socket's .lock file, left by a server that is gone. The server clears such
// files itself only when their PID is dead, not when it is a zombie (PID 1
// in containers does not always reap) or was recycled by another process.
// Orphaned children of a crashed server may still run, though, and a new
// server beside them would corrupt the data, so like the server we refuse
// while they hold its shared memory.
func removeStaleLock(path string, pf pidFile) error {
	if pf.shmID != 0 && sharedMemoryInUse(pf.shmID) {
		return fmt.Errorf(
			"processes of a stopped server (pid %d) still hold its shared memory (id %d); end them, then start again",
			pf.pid,
			pf.shmID,
		)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale lock file: %w", err)
	}
	return nil
}

// sharedMemoryInUse reports whether processes are attached to the segment.
// A segment that is gone or unreadable is not in use by our server.
func sharedMemoryInUse(shmID int) bool {
	var desc unix.SysvShmDesc
	if _, err := unix.SysvShmCtl(shmID, unix.IPC_STAT, &desc); err != nil {
		return false
	}
	return desc.Nattch > 0
}

// clearStaleSocketLock removes the lock file beside the unix socket of port
// in dir unless a live postgres process holds it.
func clearStaleSocketLock(dir string, port int) error {
	path := filepath.Join(dir, fmt.Sprintf(".s.PGSQL.%d.lock", port))
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read socket lock file: %w", err)
	}

	first, _, _ := strings.Cut(string(data), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err == nil && pid > 0 && processAlive(pid) && isPostgresProcess(pid) {
		return nil
	}
	return removeStaleLock(path, pidFile{pid: pid})
}

// processAlive reports whether pid names a running process. A zombie counts
// as dead: in containers PID 1 does not always reap orphans, and a crashed
// postmaster can linger that way.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	if err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}

	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// The state letter follows the command name, which is in parentheses
	// and may itself contain spaces or parentheses.
	rest := string(stat[strings.LastIndexByte(string(stat), ')')+1:])
	return !strings.HasPrefix(strings.TrimSpace(rest), "Z")
}

// isPostgresProcess reports whether pid runs the postgres program. When the
// name cannot be read it answers true, so that a live server is never
// mistaken for a stale lock.
func isPostgresProcess(pid int) bool {
	name, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()

		name, err = exec.CommandContext(ctx, "ps", "-o", "comm=", "-p", strconv.Itoa(pid)).Output()
		if err != nil {
			return true
		}
	}

	base := filepath.Base(strings.TrimSpace(string(name)))
	return base == "postgres" || base == "postmaster"
}
