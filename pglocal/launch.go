package pglocal

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	// logFileName is the server log in the data directory.
	logFileName = "pglocal.log"

	// maxLogSize is the size past which the log is moved aside at start,
	// keeping one previous generation.
	maxLogSize = 16 << 20
)

// managedSettings are set by pglocal on every start and may not come from
// Config.Settings.
var managedSettings = []string{"port", "listen_addresses", "unix_socket_directories"}

var settingNamePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.]*$`)

func checkSettings(settings map[string]string) error {
	for name := range settings {
		if !settingNamePattern.MatchString(name) {
			return fmt.Errorf("invalid server setting name %q", name)
		}
		if slices.Contains(managedSettings, strings.ToLower(name)) {
			return fmt.Errorf("server setting %s is managed by pglocal", name)
		}
	}
	return nil
}

// launch starts the server with pg_ctl and waits until it answers. On
// failure it makes sure no half-started server is left behind.
func (c *Cluster) launch(ctx context.Context, settings map[string]string) error {
	c.rotateLog(ctx)

	out, err := c.run(ctx, "pg_ctl", "start",
		"-D", c.dataDir,
		"-l", filepath.Join(c.dataDir, logFileName),
		"-w",
		"-t", waitSeconds(ctx),
		"-o", c.serverOptions(settings),
	)
	if err == nil {
		err = waitReady(ctx, c.ConnString("postgres"), 0)
	}
	if err == nil {
		return nil
	}

	c.abandon()
	return fmt.Errorf("start postgresql in %s: %w%s%s", c.dataDir, err, outputSuffix(out), c.logTail())
}

// serverOptions builds pg_ctl's -o argument. pg_ctl hands it to /bin/sh, so
// every word is single-quoted.
func (c *Cluster) serverOptions(settings map[string]string) string {
	all := map[string]string{
		"port":                    strconv.Itoa(c.port),
		"listen_addresses":        "127.0.0.1",
		"unix_socket_directories": c.socketDir,
	}
	// The server splits this list at commas and trims spaces unless quoted.
	if strings.ContainsAny(c.socketDir, ", ") {
		all["unix_socket_directories"] = `"` + c.socketDir + `"`
	}
	maps.Copy(all, settings)

	words := make([]string, 0, 2*len(all))
	for _, name := range slices.Sorted(maps.Keys(all)) {
		words = append(words, "-c", shellQuote(name+"="+all[name]))
	}
	return strings.Join(words, " ")
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// abandon stops a server that a failed or cancelled start may have left
// running. It must not depend on the caller's context, which may be done.
func (c *Cluster) abandon() {
	if _, state, err := inspectPIDFile(c.dataDir); err != nil || state != postmasterAlive {
		return
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	out, err := c.run(ctx, "pg_ctl", "stop", "-D", c.dataDir, "-m", "immediate", "-w")
	if err != nil {
		c.logger.WarnContext(ctx, "Could not stop PostgreSQL after a failed start",
			slog.String("data_dir", c.dataDir),
			slog.String("error", err.Error()),
			slog.String("output", string(bytes.TrimSpace(out))),
		)
	}
}

// rotateLog moves a large server log aside. Failure only costs disk space,
// so it is logged and ignored.
func (c *Cluster) rotateLog(ctx context.Context) {
	path := filepath.Join(c.dataDir, logFileName)
	fi, err := os.Stat(path)
	if err != nil || fi.Size() < maxLogSize {
		return
	}
	if err := os.Rename(path, path+".1"); err != nil {
		c.logger.WarnContext(ctx, "Could not rotate PostgreSQL log",
			slog.String("path", path),
			slog.String("error", err.Error()),
		)
	}
}

// logTail returns the end of the server log for an error message, where a
// failed start explains itself.
func (c *Cluster) logTail() string {
	data, err := os.ReadFile(filepath.Join(c.dataDir, logFileName))
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(lastBytes(data, 4000))), "\n")
	lines = lines[max(0, len(lines)-8):]
	return "\nend of " + logFileName + ":\n" + strings.Join(lines, "\n")
}

// run runs one of the server programs as the server account. The working
// directory is / because the account may not be allowed into the caller's,
// and PG* variables are dropped so the caller's libpq settings cannot steer
// the server programs.
func (c *Cluster) run(ctx context.Context, program string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(c.binDir, program), args...)
	cmd.Dir = "/"
	cmd.WaitDelay = 5 * time.Second
	cmd.Env = make([]string, 0, len(os.Environ()))
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: c.user.credential()}

	// On cancel, kill the whole group: initdb's own postgres children would
	// otherwise keep writing into a directory about to be cleaned. The
	// server escapes this, as pg_ctl starts it in a session of its own.
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}

	c.logger.DebugContext(ctx, "Running PostgreSQL program",
		slog.String("program", program),
		slog.Any("args", args),
		slog.String("user", c.user.name),
	)
	out, err := cmd.CombinedOutput()
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("%w: %w", ctx.Err(), err)
	}
	return out, err
}

// outputSuffix formats program output to follow an error message.
func outputSuffix(out []byte) string {
	out = bytes.TrimSpace(lastBytes(out, 4000))
	if len(out) == 0 {
		return ""
	}
	return "\n" + string(out)
}

func lastBytes(b []byte, n int) []byte {
	if len(b) <= n {
		return b
	}
	return b[len(b)-n:]
}
