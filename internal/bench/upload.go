package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Upload streams generated files of size bytes to a server child over
// loopback into local-disk storage, one after another, and reports the
// throughput and the server's peak resident memory.
func Upload(ctx context.Context, e *Env, self string, size int64, count int, w io.Writer) error {
	tenants, err := e.seedHTTP(ctx, 1)
	if err != nil {
		return err
	}
	files, err := os.MkdirTemp("", "xatbench-files-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(files)

	cmd := exec.CommandContext(ctx, self, "serve-child", "--admin", e.AdminURL, "--serve", e.ServeURL,
		"--files", "file://"+files)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		return fmt.Errorf("server child: %w", err)
	}
	url := "http://" + strings.TrimSpace(addr) + "/api/v1/collectors/1/data"

	var rates []float64
	for range count {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, io.LimitReader(pattern{}, size))
		if err != nil {
			return err
		}
		req.ContentLength = size
		req.Host = tenants[0].host
		req.Header.Set("Authorization", "Bearer "+tenants[0].token)
		req.Header.Set("Content-Type", "text/csv")
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			return fmt.Errorf("upload: status %d: %s", resp.StatusCode, body)
		}
		rates = append(rates, float64(size)/(1<<20)/time.Since(start).Seconds())
	}
	peak, _ := procStatus(cmd.Process.Pid, "VmHWM:")
	fmt.Fprintf(w, "## Uploads of %d MiB over loopback into local-disk storage (SHA-256 and size computed while writing, fsync before the rename)\n\n", size>>20)
	fmt.Fprintf(w, "| uploads | MiB/s (median) | server peak RSS |\n|---|---|---|\n| %d | %.0f | %d MiB |\n",
		count, median(rates), peak/1024)
	return nil
}

// pattern is an endless reader of CSV-like bytes.
type pattern struct{}

func (pattern) Read(p []byte) (int, error) {
	const line = "2026-12-03T10:00:00Z,host-01,12.5,1073741824,4294967296,120,80,1048576,524288,2048,1024\n"
	for i := range p {
		p[i] = line[i%len(line)]
	}
	return len(p), nil
}

// procStatus reads one field, in KiB, of /proc/<pid>/status.
func procStatus(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			return strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in status", field)
}
