package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTick is the unit of the CPU times in /proc/<pid>/stat (USER_HZ,
// 100 on every Linux this runs on).
const clockTick = 10 * time.Millisecond

// procCPU returns the CPU time, user and system, that process pid has used
// so far; with children, the time of its children that have exited and
// been waited for is added.
func procCPU(pid int, children bool) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(string(b), children)
}

// parseStatCPU reads utime and stime (and cutime, cstime) from a
// /proc/<pid>/stat line. The command name, in parentheses, may hold
// spaces, so fields are counted from its closing parenthesis.
func parseStatCPU(stat string, children bool) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed stat line")
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state); utime is field 14, stime 15, cutime 16, cstime 17.
	last := 15
	if children {
		last = 17
	}
	if len(f) < last-2 {
		return 0, fmt.Errorf("short stat line")
	}
	var ticks int64
	for field := 14; field <= last; field++ {
		n, err := strconv.ParseInt(f[field-3], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("stat field %d: %w", field, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * clockTick, nil
}

// clusterCPU returns the CPU time used so far by a PostgreSQL cluster: its
// postmaster (whose pid is on the first line of postmaster.pid in dataDir)
// with every backend that has exited, plus every backend still running.
func clusterCPU(dataDir string) (time.Duration, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0, err
	}
	postmaster, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	if err != nil {
		return 0, fmt.Errorf("postmaster.pid: %w", err)
	}
	total, err := procCPU(postmaster, true)
	if err != nil {
		return 0, err
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == postmaster || parentOf(pid) != postmaster {
			continue
		}
		if d, err := procCPU(pid, false); err == nil {
			total += d
		}
	}
	return total, nil
}

// parentOf returns the parent pid of pid, or 0 when it cannot be read.
func parentOf(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}
