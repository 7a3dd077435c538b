package pglocal

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestCluster walks one data directory through a cluster's life. The steps
// share the directory and run in order, which keeps the number of slow
// initdb runs and server starts down.
func TestCluster(t *testing.T) {
	t.Parallel()
	requireBinDir(t)

	// c is replaced as steps restart the server; the last one is stopped.
	dataDir := newDataDir(t)
	c := startClusterUnmanaged(t, dataDir)
	t.Cleanup(func() { stopCluster(t, c) })
	require.True(t, c.Started())
	require.NotZero(t, c.Port())
	require.Equal(t, dataDir, c.SocketDir())
	require.Equal(t, dataDir, c.DataDir())
	require.Equal(t, "127.0.0.1", c.Host())
	if os.Geteuid() == 0 {
		uid, _, ok := fileOwner(dataDir)
		require.True(t, ok)
		require.NotZero(t, uid, "data directory still owned by root")
	}

	t.Run("Connect", func(t *testing.T) {
		for _, cs := range []string{c.ConnString(""), c.TCPConnString("postgres")} {
			var one int
			require.NoError(t, connect(t, cs).QueryRow(t.Context(), "SELECT 1").Scan(&one))
			require.Equal(t, 1, one)
		}

		var fsync string
		require.NoError(t, connect(t, c.ConnString("")).QueryRow(t.Context(), "SHOW fsync").Scan(&fsync))
		require.Equal(t, "off", fsync)
	})

	t.Run("ReuseRunning", func(t *testing.T) {
		again, err := Start(t.Context(), Config{DataDir: dataDir})
		require.NoError(t, err)
		require.False(t, again.Started())
		require.Equal(t, c.Port(), again.Port())
		require.Equal(t, c.SocketDir(), again.SocketDir())
		require.NoError(t, ping(t.Context(), again.ConnString("")))
	})

	t.Run("CreateDatabase", func(t *testing.T) {
		require.NoError(t, c.CreateDatabase(t.Context(), "app"))
		require.NoError(t, c.CreateDatabase(t.Context(), "app"))

		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Go(func() { errs <- c.CreateDatabase(t.Context(), "raced") })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}

		var current string
		conn := connect(t, c.ConnString("raced"))
		require.NoError(t, conn.QueryRow(t.Context(), "SELECT current_database()").Scan(&current))
		require.Equal(t, "raced", current)
	})

	t.Run("RestartKeepsDataAndPort", func(t *testing.T) {
		conn := connect(t, c.ConnString("app"))
		_, err := conn.Exec(t.Context(), "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here')")
		require.NoError(t, err)
		require.NoError(t, conn.Close(t.Context()))

		port := c.Port()
		require.NoError(t, c.Stop(t.Context()))
		require.NoError(t, c.Stop(t.Context()), "second Stop")
		require.NoFileExists(t, filepath.Join(dataDir, pidFileName))

		c = startClusterUnmanaged(t, dataDir)
		require.True(t, c.Started())
		require.Equal(t, port, c.Port())

		var v string
		require.NoError(t, connect(t, c.ConnString("app")).QueryRow(t.Context(), "SELECT v FROM kept").Scan(&v))
		require.Equal(t, "still here", v)
	})

	t.Run("CrashLeavesStalePIDFile", func(t *testing.T) {
		crash(t, dataDir)

		c = startClusterUnmanaged(t, dataDir)
		require.True(t, c.Started())
		require.NoError(t, ping(t.Context(), c.ConnString("app")))
	})

	t.Run("PIDFileNamesForeignProcess", func(t *testing.T) {
		require.NoError(t, c.Stop(t.Context()))

		// A recycled PID: the file names a live process that is not postgres,
		// here the test binary itself.
		stale := fmt.Sprintf("%d\n%s\n1700000000\n%d\n%s\n127.0.0.1\n  1234  5678\nready   \n",
			os.Getpid(), dataDir, c.Port(), c.SocketDir())
		require.NoError(t, os.WriteFile(filepath.Join(dataDir, pidFileName), []byte(stale), 0o600))
		fresh, err := newCluster(Config{DataDir: dataDir})
		require.NoError(t, err)
		require.NoError(t, fresh.Stop(t.Context()), "Stop must not signal a foreign process")

		c = startClusterUnmanaged(t, dataDir)
		require.True(t, c.Started())
		require.NoError(t, ping(t.Context(), c.ConnString("app")))
	})
}

// crash kills the postmaster and its children at once, as a power cut
// would, leaving postmaster.pid behind.
func crash(t *testing.T, dataDir string) {
	t.Helper()

	pf, state, err := inspectPIDFile(dataDir)
	require.NoError(t, err)
	require.Equal(t, postmasterAlive, state)

	// The children notice the postmaster's death and exit on their own;
	// wait for that, as a new server would refuse to start beside them.
	require.NoError(t, syscall.Kill(pf.pid, syscall.SIGKILL))
	require.Eventually(t, func() bool {
		return !processAlive(pf.pid) && !sharedMemoryInUse(pf.shmID)
	}, 10*time.Second, 20*time.Millisecond)
	require.FileExists(t, filepath.Join(dataDir, pidFileName))
}

func TestStartLongDataDir(t *testing.T) {
	t.Parallel()
	requireBinDir(t)

	parent := newDataDir(t)
	require.NoError(t, os.Chmod(parent, 0o755))
	dataDir := filepath.Join(parent, strings.Repeat("a-rather-long-directory-name-", 4))
	require.Greater(t, len(dataDir), maxSocketPath)

	c := startCluster(t, dataDir)
	require.NotEqual(t, dataDir, c.SocketDir())
	require.Equal(t, os.TempDir(), filepath.Dir(c.SocketDir()))
	require.Equal(t, socketDirFor(dataDir), c.SocketDir(), "socket directory must be stable")

	fi, err := os.Lstat(c.SocketDir())
	require.NoError(t, err)
	require.True(t, fi.IsDir())
	require.Equal(t, os.FileMode(0o700), fi.Mode().Perm())

	var one int
	conn := connect(t, c.ConnString(""))
	require.NoError(t, conn.QueryRow(t.Context(), "SELECT 1").Scan(&one))
	require.Equal(t, 1, one)
	require.NoError(t, conn.Close(t.Context()))

	require.NoError(t, c.Stop(t.Context()))
	require.NoDirExists(t, c.SocketDir())
}

func TestStartInterrupted(t *testing.T) {
	t.Parallel()
	requireBinDir(t)

	// initdb alone takes longer than this, so the first start is cut short
	// in the middle and must leave nothing that trips up the next one.
	dataDir := newDataDir(t)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err := Start(ctx, Config{DataDir: dataDir})
	require.ErrorIs(t, err, context.DeadlineExceeded)

	c := startCluster(t, dataDir)
	require.True(t, c.Started())
	require.NoError(t, ping(t.Context(), c.ConnString("")))
}

func TestStartUnreachableDataDir(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("only root hands the cluster to another account")
	}
	requireBinDir(t)

	// MkdirTemp makes a 0700 directory owned by root, like /root itself.
	private := newDataDir(t)
	dataDir := filepath.Join(private, "pgdata")

	_, err := Start(t.Context(), Config{DataDir: dataDir})
	require.ErrorIs(t, err, ErrDataDirUnreachable)
	require.ErrorContains(t, err, private)
	require.ErrorContains(t, err, "choose another data directory")
	require.NoDirExists(t, dataDir)
}

func TestStartRejectsConfig(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		cfg     Config
		wantErr string
		target  error
	}{
		{name: "NoDataDir", cfg: Config{}, wantErr: "no data directory"},
		{
			name:    "ManagedSetting",
			cfg:     Config{DataDir: "x", Settings: map[string]string{"port": "5432"}},
			wantErr: "managed by pglocal",
		},
		{
			name:    "BadSettingName",
			cfg:     Config{DataDir: "x", Settings: map[string]string{"fsync=off -c x": "1"}},
			wantErr: "invalid server setting name",
		},
		{
			name:    "UnquotablePath",
			cfg:     Config{DataDir: "/tmp/$HOME"},
			wantErr: "cannot quote",
		},
		{
			name:   "BinDirWithoutPrograms",
			cfg:    Config{DataDir: "x", BinDir: "/nonexistent"},
			target: ErrNoBinaries,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			_, err := Start(t.Context(), tt.cfg)
			require.Error(t, err)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
			}
			if tt.target != nil {
				require.ErrorIs(t, err, tt.target)
			}
		})
	}
}

func TestCreateDatabaseRejectsName(t *testing.T) {
	t.Parallel()

	for _, name := range []string{
		"",
		"App",
		"1app",
		"app-db",
		"app db",
		`app"; DROP DATABASE postgres; --`,
		strings.Repeat("a", 64),
	} {
		// Validation comes before any connection, so no server is needed.
		err := createDatabase(t.Context(), "host=/nonexistent", name)
		require.ErrorIs(t, err, ErrInvalidDatabaseName, "name %q", name)
	}
}

func TestServerOptions(t *testing.T) {
	t.Parallel()

	c := &Cluster{port: 5433, socketDir: "/tmp/it's here"}
	got := c.serverOptions(map[string]string{"application_name": "a b"})
	require.Equal(t,
		`-c 'application_name=a b' -c 'listen_addresses=127.0.0.1' -c 'port=5433' `+
			`-c 'unix_socket_directories="/tmp/it'\''s here"'`,
		got,
	)
}

func TestConnString(t *testing.T) {
	t.Parallel()

	require.Equal(t,
		"host=/tmp/d port=5433 user=postgres dbname=postgres sslmode=disable",
		connString("/tmp/d", 5433, ""),
	)
	require.Equal(t,
		`host='/tmp/a b\'c' port=1 user=postgres dbname=app sslmode=disable`,
		connString("/tmp/a b'c", 1, "app"),
	)
}
