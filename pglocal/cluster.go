package pglocal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Config says where and how the cluster runs.
type Config struct {
	// DataDir is the directory the cluster lives in, and is required. A
	// missing or empty directory is initialised with initdb; one that
	// already holds a cluster is reused as it is. Relative paths are taken
	// from the working directory.
	DataDir string

	// BinDir is the directory holding initdb, pg_ctl and postgres. Empty
	// means the result of FindBinDir.
	BinDir string

	// Port is the TCP port the server listens on at 127.0.0.1. Zero means
	// the port recorded in DataDir, or at the first start a free port that
	// is then recorded there, so the cluster keeps its port across restarts.
	// A non-zero Port is used and recorded. The unix socket uses the same
	// port number. A server Start reuses keeps the port it has.
	Port int

	// Settings are extra server settings passed on the command line when
	// Start launches the server, such as "fsync": "off" for tests or
	// "max_connections": "200". They do not apply to a server Start reuses.
	// port, listen_addresses and unix_socket_directories belong to pglocal
	// and are rejected here.
	Settings map[string]string

	// Logger receives lifecycle messages (initialised, started, reused,
	// stopped). Nil discards them.
	Logger *slog.Logger
}

// Cluster is a local PostgreSQL server started, or found running, by Start.
// The superuser is postgres, trusted without a password over the unix
// socket and over TCP on 127.0.0.1. Its methods are safe for concurrent use.
type Cluster struct {
	dataDir   string
	binDir    string
	socketDir string
	port      int
	started   bool
	user      serverUser
	logger    *slog.Logger

	mu      sync.Mutex // serialises Stop
	stopped bool
}

// defaultWait bounds a wait for the server when ctx has no earlier deadline.
const defaultWait = 60 * time.Second

// Start makes the cluster in cfg.DataDir available and returns it. If a
// postmaster from that directory is already running and answering, Start
// reuses it and Started reports false. Otherwise it runs initdb when the
// directory holds no cluster yet, starts the server with pg_ctl and waits
// until it accepts connections, honouring ctx. A postmaster.pid left behind
// by a crash does not block it.
//
// When the process runs as root, the server programs run as the owner of an
// existing cluster, else as the postgres account, else as nobody, and the
// data directory is handed to that account. If the account cannot enter a
// parent directory, Start returns an error wrapping ErrDataDirUnreachable.
// Start returns an error wrapping ErrNoBinaries when it finds no server
// programs.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	c, err := newCluster(cfg)
	if err != nil {
		return nil, err
	}

	reused, err := c.reuse(ctx)
	if err != nil {
		return nil, err
	}
	if reused {
		c.logger.InfoContext(ctx, "Reusing running PostgreSQL", c.logAttrs()...)
		return c, nil
	}

	if err := c.prepare(ctx, cfg.Port); err != nil {
		return nil, err
	}
	if err := c.launch(ctx, cfg.Settings); err != nil {
		return nil, err
	}

	c.started = true
	c.logger.InfoContext(ctx, "Started PostgreSQL", c.logAttrs()...)
	return c, nil
}

func newCluster(cfg Config) (*Cluster, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("no data directory given (Config.DataDir)")
	}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("resolve data directory %s: %w", cfg.DataDir, err)
	}
	// pg_ctl pastes the path into a double-quoted shell word.
	if strings.ContainsAny(dataDir, "\"$`\\\n") {
		return nil, fmt.Errorf("data directory %q has a character pg_ctl cannot quote", dataDir)
	}
	if err := checkSettings(cfg.Settings); err != nil {
		return nil, err
	}

	binDir := cfg.BinDir
	if binDir == "" {
		if binDir, err = FindBinDir(); err != nil {
			return nil, err
		}
	} else if !hasServerPrograms(binDir) {
		return nil, fmt.Errorf("%s lacks initdb, pg_ctl or postgres: %w", binDir, ErrNoBinaries)
	}

	u, err := chooseServerUser(dataDir)
	if err != nil {
		return nil, err
	}

	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}

	return &Cluster{dataDir: dataDir, binDir: binDir, user: u, logger: logger}, nil
}

// reuse adopts a postmaster already running from this data directory. It
// removes a postmaster.pid whose process is gone, so that the start which
// follows is not blocked by it.
func (c *Cluster) reuse(ctx context.Context) (bool, error) {
	pf, state, err := inspectPIDFile(c.dataDir)
	if err != nil {
		return false, err
	}

	switch state {
	case postmasterNone:
		return false, nil
	case postmasterGone, postmasterForeign:
		c.logger.WarnContext(ctx, "Removing stale postmaster.pid",
			slog.String("data_dir", c.dataDir),
			slog.Int("pid", pf.pid),
		)
		return false, removeStaleLock(filepath.Join(c.dataDir, pidFileName), pf)
	}

	if pf.socketDir == "" || pf.port == 0 {
		return false, fmt.Errorf("postgresql (pid %d) runs from %s without a unix socket", pf.pid, c.dataDir)
	}
	c.port, c.socketDir = pf.port, pf.socketDir

	// The server may still be starting up or recovering.
	err = waitReady(ctx, c.ConnString("postgres"), pf.pid)
	if errors.Is(err, errServerGone) {
		// It was shutting down; look again in case it left its lock behind.
		return c.reuse(ctx)
	}
	if err != nil {
		return false, fmt.Errorf("postgresql (pid %d) from %s is not answering: %w", pf.pid, c.dataDir, err)
	}
	return true, nil
}

var errServerGone = errors.New("server process exited")

// waitReady connects until the server answers. With a pid, it gives up with
// errServerGone as soon as that process has exited.
func waitReady(ctx context.Context, connString string, pid int) error {
	ctx, cancel := context.WithTimeout(ctx, defaultWait)
	defer cancel()

	for {
		err := ping(ctx, connString)
		if err == nil {
			return nil
		}
		if pid != 0 && !processAlive(pid) {
			return errServerGone
		}

		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last attempt: %w)", ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func ping(ctx context.Context, connString string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()

	conn, err := pgconn.Connect(ctx, connString)
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}

// Stop shuts the server down with pg_ctl's fast mode, which disconnects
// clients and rolls back their transactions, and waits for it to exit; it
// then removes a fallback socket directory under os.TempDir. It
// stops a server Start reused as well; callers that share a cluster with
// other processes check Started first. Stop is idempotent: once it has
// succeeded, or when no server runs, it returns nil.
func (c *Cluster) Stop(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()

	if c.stopped {
		return nil
	}

	// pg_ctl would signal whatever process holds a recycled PID.
	if _, state, err := inspectPIDFile(c.dataDir); err == nil && state != postmasterAlive {
		c.stopped = true
		return nil
	}

	out, err := c.run(ctx, "pg_ctl", "stop",
		"-D", c.dataDir,
		"-m", "fast",
		"-w",
		"-t", waitSeconds(ctx),
	)
	if err != nil {
		return fmt.Errorf("stop postgresql in %s: %w%s", c.dataDir, err, outputSuffix(out))
	}

	c.stopped = true
	c.logger.InfoContext(ctx, "Stopped PostgreSQL", slog.String("data_dir", c.dataDir))

	// A stopped server leaves its fallback socket directory empty; removing
	// it keeps the temporary directory tidy, and the next start recreates it.
	if c.socketDir != c.dataDir {
		_ = os.Remove(c.socketDir)
	}
	return nil
}

// ConnString returns a libpq keyword/value connection string, accepted by
// pgx and psql, for user postgres over the unix socket. An empty database
// means postgres.
func (c *Cluster) ConnString(database string) string {
	return connString(c.socketDir, c.port, database)
}

// TCPConnString is like ConnString but connects over TCP to 127.0.0.1, as
// a remote client such as pgbench would.
func (c *Cluster) TCPConnString(database string) string {
	return connString(c.Host(), c.port, database)
}

func connString(host string, port int, database string) string {
	if database == "" {
		database = "postgres"
	}
	return fmt.Sprintf(
		"host=%s port=%d user=postgres dbname=%s sslmode=disable",
		quoteConnValue(host),
		port,
		quoteConnValue(database),
	)
}

// quoteConnValue quotes a keyword/value connection string value when it
// needs it.
func quoteConnValue(s string) string {
	if s != "" && !strings.ContainsAny(s, ` '\`) {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`)
	return "'" + r.Replace(s) + "'"
}

// Host returns the TCP address the server listens on, always 127.0.0.1.
func (c *Cluster) Host() string { return "127.0.0.1" }

// Port returns the port of both the TCP listener and the unix socket.
func (c *Cluster) Port() int { return c.port }

// SocketDir returns the directory holding the unix socket: the data
// directory itself, or, when that path is too long for a socket address, a
// private directory under os.TempDir.
func (c *Cluster) SocketDir() string { return c.socketDir }

// BinDir returns the directory of the server programs in use.
func (c *Cluster) BinDir() string { return c.binDir }

// DataDir returns the absolute path of the data directory.
func (c *Cluster) DataDir() string { return c.dataDir }

// Started reports whether Start launched the server; false means it found
// the server already running and reused it.
func (c *Cluster) Started() bool { return c.started }

func (c *Cluster) logAttrs() []any {
	return []any{
		slog.String("data_dir", c.dataDir),
		slog.Int("port", c.port),
		slog.String("socket_dir", c.socketDir),
	}
}

// waitSeconds turns ctx's deadline into pg_ctl's -t argument.
func waitSeconds(ctx context.Context) string {
	wait := defaultWait
	if deadline, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(deadline))
	}
	return strconv.Itoa(max(1, int(wait.Round(time.Second).Seconds())))
}
