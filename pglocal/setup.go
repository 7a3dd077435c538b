package pglocal

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

const (
	// portFileName is pglocal's own settings file in the data directory.
	// postgresql.conf includes it, so a manual pg_ctl start agrees with us.
	portFileName = "pglocal.conf"

	// maxSocketPath is the longest unix socket path the kernel accepts:
	// sun_path holds 108 bytes including the terminating NUL.
	maxSocketPath = 107
)

// hbaConf replaces initdb's pg_hba.conf, which also trusts ::1.
const hbaConf = `# Written by pglocal: trust the unix socket and 127.0.0.1, nothing else.
local all all trust
host all all 127.0.0.1/32 trust
local replication all trust
host replication all 127.0.0.1/32 trust
`

// prepare makes sure the data directory holds a cluster, then settles the
// port and the socket directory for the start that follows.
func (c *Cluster) prepare(ctx context.Context, port int) error {
	initialised, err := c.makeDataDir()
	if err != nil {
		return err
	}
	if !initialised {
		if err := c.initdb(ctx); err != nil {
			// The directory was empty before, so emptying it again loses
			// nothing, and the next start does not mistake a half-made
			// cluster for a usable one.
			c.emptyDataDir(ctx)
			return err
		}
	}

	if err := c.settlePort(port); err != nil {
		return err
	}

	c.socketDir = socketDirFor(c.dataDir)
	if err := c.makeSocketDir(); err != nil {
		return err
	}
	return clearStaleSocketLock(c.socketDir, c.port)
}

// makeDataDir creates the data directory if needed, hands it to the server
// account and reports whether it already holds a cluster.
func (c *Cluster) makeDataDir() (bool, error) {
	if err := os.MkdirAll(filepath.Dir(c.dataDir), 0o755); err != nil {
		return false, fmt.Errorf("create parent of data directory: %w", err)
	}
	if err := c.user.checkReachable(c.dataDir); err != nil {
		return false, fmt.Errorf(
			"%w: %w; choose another data directory, for example one under /var/lib or /tmp",
			ErrDataDirUnreachable,
			err,
		)
	}

	if err := os.Mkdir(c.dataDir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return false, fmt.Errorf("create data directory: %w", err)
	}

	entries, err := os.ReadDir(c.dataDir)
	if err != nil {
		return false, fmt.Errorf("read data directory: %w", err)
	}
	_, err = os.Stat(filepath.Join(c.dataDir, "PG_VERSION"))
	initialised := err == nil
	if !initialised && len(entries) > 0 {
		return false, fmt.Errorf("data directory %s is not empty but holds no postgresql cluster", c.dataDir)
	}

	return initialised, c.user.chownTree(c.dataDir)
}

func (c *Cluster) initdb(ctx context.Context) error {
	out, err := c.run(ctx, "initdb",
		"-D", c.dataDir,
		"-U", "postgres",
		"-E", "UTF8",
		"--no-locale",
		"--auth-local=trust",
		"--auth-host=trust",
		"--no-sync",
	)
	if err != nil {
		return fmt.Errorf("initdb in %s: %w%s", c.dataDir, err, outputSuffix(out))
	}

	if err := c.writeFile("pg_hba.conf", hbaConf); err != nil {
		return err
	}

	conf, err := os.OpenFile(filepath.Join(c.dataDir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("open postgresql.conf: %w", err)
	}
	_, err = fmt.Fprintf(conf, "\n# Added by pglocal.\ninclude_if_exists = '%s'\n", portFileName)
	if closeErr := conf.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return fmt.Errorf("append to postgresql.conf: %w", err)
	}

	c.logger.InfoContext(ctx, "Initialised PostgreSQL cluster", slog.String("data_dir", c.dataDir))
	return nil
}

func (c *Cluster) emptyDataDir(ctx context.Context) {
	entries, err := os.ReadDir(c.dataDir)
	for _, e := range entries {
		if err == nil {
			err = os.RemoveAll(filepath.Join(c.dataDir, e.Name()))
		}
	}
	if err != nil {
		c.logger.WarnContext(ctx, "Could not clean up after failed initdb",
			slog.String("data_dir", c.dataDir),
			slog.String("error", err.Error()),
		)
	}
}

// settlePort picks the port: want if set, else the recorded one, else a
// free one. A change is recorded for the next start.
func (c *Cluster) settlePort(want int) error {
	recorded, err := c.recordedPort()
	if err != nil {
		return err
	}

	switch {
	case want != 0:
		c.port = want
	case recorded != 0:
		c.port = recorded
	default:
		if c.port, err = freePort(); err != nil {
			return err
		}
	}
	if c.port == recorded {
		return nil
	}

	return c.writeFile(portFileName, fmt.Sprintf(
		"# Managed by pglocal; the port is kept across restarts.\nport = %d\nlisten_addresses = '127.0.0.1'\n",
		c.port,
	))
}

func (c *Cluster) recordedPort() (int, error) {
	f, err := os.Open(filepath.Join(c.dataDir, portFileName))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read recorded port: %w", err)
	}
	defer f.Close()

	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, value, ok := strings.Cut(sc.Text(), "=")
		if ok && strings.TrimSpace(key) == "port" {
			port, err := strconv.Atoi(strings.TrimSpace(value))
			if err != nil {
				return 0, fmt.Errorf("parse recorded port in %s: %w", portFileName, err)
			}
			return port, nil
		}
	}
	return 0, sc.Err()
}

// freePort asks the kernel for an unused loopback port. Another process
// could take it before the server binds it; the start then fails loudly.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()

	return l.Addr().(*net.TCPAddr).Port, nil
}

// socketDirFor returns dataDir itself when a socket in it fits in a socket
// address, else a short directory under os.TempDir named after a hash of
// dataDir, so each data directory keeps its own.
func socketDirFor(dataDir string) string {
	if len(filepath.Join(dataDir, ".s.PGSQL.65535")) <= maxSocketPath {
		return dataDir
	}

	sum := sha256.Sum256([]byte(dataDir))
	return filepath.Join(os.TempDir(), "pglocal-"+hex.EncodeToString(sum[:6]))
}

// makeSocketDir creates a fallback socket directory with mode 0700. It is in
// a shared temporary directory, so one made by anybody else is refused.
func (c *Cluster) makeSocketDir() error {
	if c.socketDir == c.dataDir {
		return nil
	}
	if len(filepath.Join(c.socketDir, ".s.PGSQL.65535")) > maxSocketPath {
		return fmt.Errorf("socket directory %s is too long for a unix socket; set TMPDIR to a shorter path", c.socketDir)
	}
	if err := c.user.checkReachable(c.socketDir); err != nil {
		return fmt.Errorf("socket directory: %w; set TMPDIR to a directory it can reach", err)
	}

	if err := os.Mkdir(c.socketDir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create socket directory: %w", err)
	}

	fi, err := os.Lstat(c.socketDir)
	if err != nil {
		return fmt.Errorf("check socket directory: %w", err)
	}
	uid, _, _ := statOwner(fi)
	if !fi.IsDir() || (uid != c.user.uid && uid != uint32(os.Geteuid())) {
		return fmt.Errorf("socket directory %s exists and is not ours; remove it", c.socketDir)
	}

	if err := os.Chmod(c.socketDir, 0o700); err != nil {
		return fmt.Errorf("restrict socket directory: %w", err)
	}
	return c.user.chown(c.socketDir)
}

// writeFile writes a file in the data directory, owned by the server
// account and readable by it alone.
func (c *Cluster) writeFile(name, content string) error {
	path := filepath.Join(c.dataDir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return c.user.chown(path)
}
