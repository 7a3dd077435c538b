package pglocal

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// requireBinDir returns the directory of the server programs. Without them
// the test is skipped on a developer machine and fails under CI=true.
func requireBinDir(t *testing.T) string {
	t.Helper()

	dir, err := FindBinDir()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("postgresql is required under CI=true: %v", err)
		}
		t.Skipf("no postgresql: %v", err)
	}
	return dir
}

// newDataDir returns an empty directory for a cluster. Unlike t.TempDir's,
// whose parent is mode 0700, the server account can reach it when the tests
// run as root.
func newDataDir(t *testing.T) string {
	t.Helper()

	dir, err := os.MkdirTemp("", "pglocal-unit-")
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, os.RemoveAll(dir)) })
	return dir
}

// startCluster starts a cluster in dataDir tuned for speed and stops it when
// the test ends.
func startCluster(t *testing.T, dataDir string) *Cluster {
	t.Helper()

	c := startClusterUnmanaged(t, dataDir)
	t.Cleanup(func() { stopCluster(t, c) })
	return c
}

// startClusterUnmanaged is startCluster without the cleanup, for a subtest
// whose cluster must outlive it.
func startClusterUnmanaged(t *testing.T, dataDir string) *Cluster {
	t.Helper()

	c, err := Start(t.Context(), Config{
		DataDir:  dataDir,
		Settings: testSettings,
		Logger:   slog.New(slog.NewTextHandler(t.Output(), nil)),
	})
	require.NoError(t, err)
	return c
}

func stopCluster(t *testing.T, c *Cluster) {
	t.Helper()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, c.Stop(ctx))
}

// connect opens a connection closed when the test ends.
func connect(t *testing.T, connString string) *pgx.Conn {
	t.Helper()

	conn, err := pgx.Connect(t.Context(), connString)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}
