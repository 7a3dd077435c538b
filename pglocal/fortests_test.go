package pglocal

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

func TestForTests(t *testing.T) {
	t.Parallel()
	requireBinDir(t)

	logger := slog.New(slog.NewTextHandler(t.Output(), nil))

	// The local branch is what ForTests does without XAT_TEST_DATABASE_URL;
	// calling it directly keeps the test parallel, which t.Setenv forbids.
	localURL, cleanupLocal, err := forTestsLocal(t.Context(), testDatabaseName("pglocal"), logger)
	require.NoError(t, err)
	t.Cleanup(cleanupLocal)

	cfg, err := pgx.ParseConfig(localURL)
	require.NoError(t, err)
	dataDir := cfg.Host

	t.Run("LocalCluster", func(t *testing.T) {
		conn := connect(t, localURL)

		var current, maxConns, fsync string
		require.NoError(t, conn.QueryRow(t.Context(), "SELECT current_database()").Scan(&current))
		require.Equal(t, cfg.Database, current)
		require.Regexp(t, `^test_pglocal_[0-9a-f]{12}$`, current)
		require.NoError(t, conn.QueryRow(t.Context(), "SHOW max_connections").Scan(&maxConns))
		require.Equal(t, "300", maxConns)
		require.NoError(t, conn.QueryRow(t.Context(), "SHOW fsync").Scan(&fsync))
		require.Equal(t, "off", fsync)
	})

	t.Run("ExistingServer", func(t *testing.T) {
		serverURL := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", cfg.Port)
		database := testDatabaseName("Other Package")

		connString, cleanup, err := forTestsOnServer(t.Context(), serverURL, database, logger)
		require.NoError(t, err)

		var current string
		conn := connect(t, connString)
		require.NoError(t, conn.QueryRow(t.Context(), "SELECT current_database()").Scan(&current))
		require.Equal(t, database, current)

		cleanup()
		cleanup()

		var exists bool
		admin := connect(t, localURL)
		require.NoError(t, admin.QueryRow(t.Context(), databaseExistsSQL, database).Scan(&exists))
		require.False(t, exists)
	})

	t.Run("CleanupRemovesCluster", func(t *testing.T) {
		cleanupLocal()
		require.NoDirExists(t, dataDir)
	})
}

func TestSweepLeakedClusters(t *testing.T) {
	t.Parallel()

	// A PID that is certainly dead: a process we started and reaped.
	exited := exec.Command("true")
	require.NoError(t, exited.Run())
	deadPID := exited.Process.Pid

	tmp := t.TempDir()
	leaked := filepath.Join(tmp, fmt.Sprintf("%s%d-1", testDirPrefix, deadPID))
	owned := filepath.Join(tmp, fmt.Sprintf("%s%d-2", testDirPrefix, os.Getpid()))
	other := filepath.Join(tmp, testDirPrefix+"notapid")
	for _, dir := range []string{leaked, owned, other} {
		require.NoError(t, os.Mkdir(dir, 0o700))
	}

	sweepLeakedClusters(t.Context(), tmp, slog.New(slog.NewTextHandler(t.Output(), nil)))
	require.NoDirExists(t, leaked)
	require.DirExists(t, owned)
	require.DirExists(t, other)
}

func TestTestDatabaseName(t *testing.T) {
	t.Parallel()

	a, b := testDatabaseName("Tenancy/Jobs"), testDatabaseName("Tenancy/Jobs")
	require.NotEqual(t, a, b)
	require.Regexp(t, `^test_tenancy_jobs_[0-9a-f]{12}$`, a)
	require.NoError(t, validateDatabaseName(a))
	require.NoError(t, validateDatabaseName(testDatabaseName(string(make([]byte, 200)))))
}

func TestWithDatabase(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name, in, want string
	}{
		{
			name: "URL",
			in:   "postgres://u:p@db.example:5432/postgres?sslmode=disable",
			want: "postgres://u:p@db.example:5432/test_x?sslmode=disable",
		},
		{
			name: "URLWithoutPath",
			in:   "postgresql://u@db.example",
			want: "postgresql://u@db.example/test_x",
		},
		{
			name: "KeywordValue",
			in:   "host=db.example user=u dbname=postgres",
			want: "host=db.example user=u dbname=postgres dbname=test_x",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			got, err := withDatabase(tt.in, "test_x")
			require.NoError(t, err)
			require.Equal(t, tt.want, got)

			cfg, err := pgx.ParseConfig(got)
			require.NoError(t, err)
			require.Equal(t, "test_x", cfg.Database)
		})
	}

	_, err := withDatabase("postgres://[bad", "test_x")
	require.ErrorContains(t, err, TestDatabaseURLEnv)
}

func TestForTestsWithoutServer(t *testing.T) {
	t.Parallel()

	// Nothing listens on a socket directory that does not exist.
	_, cleanup, err := forTestsOnServer(t.Context(), "host=/nonexistent user=postgres", "test_x", slog.New(slog.DiscardHandler))
	require.Error(t, err)
	cleanup()
}
