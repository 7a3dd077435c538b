package pglocal

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestDatabaseURLEnv names the environment variable that points ForTests at
// an existing server instead of a throwaway cluster.
const TestDatabaseURLEnv = "XAT_TEST_DATABASE_URL"

// testSettings trade durability for speed; a throwaway cluster loses
// nothing it needs when the machine crashes.
var testSettings = map[string]string{
	"fsync":              "off",
	"synchronous_commit": "off",
	"full_page_writes":   "off",
	"max_connections":    "300",
}

// ForTests returns a connection string for a throwaway database for this
// test binary, meant for TestMain. If XAT_TEST_DATABASE_URL is set, it
// creates a fresh, uniquely named database on that server (the URL's user
// needs CREATEDB) and returns the URL pointed at it. Otherwise it starts a
// throwaway cluster in a new temporary directory, tuned for speed (fsync,
// synchronous_commit and full_page_writes off, max_connections 300), and
// creates the database there. name, typically the package name, becomes
// part of the database name.
//
// cleanup drops the database or stops and removes the cluster; it logs its
// own failures to stderr and may be called more than once. A test binary
// killed before its cleanup runs leaves its cluster behind; the next
// ForTests on the machine stops and removes it.
//
// When PostgreSQL cannot be had, ForTests returns an error (wrapping
// ErrNoBinaries when the server programs are missing) and a no-op cleanup;
// callers fail, never skip, when CI=true.
func ForTests(ctx context.Context, name string) (connString string, cleanup func(), err error) {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	database := testDatabaseName(name)

	if serverURL := os.Getenv(TestDatabaseURLEnv); serverURL != "" {
		return forTestsOnServer(ctx, serverURL, database, logger)
	}
	return forTestsLocal(ctx, database, logger)
}

func forTestsOnServer(ctx context.Context, serverURL, database string, logger *slog.Logger) (string, func(), error) {
	connString, err := withDatabase(serverURL, database)
	if err != nil {
		return "", func() {}, err
	}
	if err := createDatabase(ctx, serverURL, database); err != nil {
		return "", func() {}, err
	}

	cleanup := onceWithTimeout(func(ctx context.Context) {
		if err := dropDatabase(ctx, serverURL, database); err != nil {
			logger.ErrorContext(ctx, "Could not drop test database",
				slog.String("database", database),
				slog.String("error", err.Error()),
			)
		}
	})
	return connString, cleanup, nil
}

func forTestsLocal(ctx context.Context, database string, logger *slog.Logger) (string, func(), error) {
	sweepLeakedClusters(ctx, os.TempDir(), logger)

	// MkdirTemp's directory is the data directory itself: as root it is
	// handed to the server account, and its parent is the world-searchable
	// temporary directory. The name carries our PID for the sweep above.
	dir, err := os.MkdirTemp("", fmt.Sprintf("%s%d-", testDirPrefix, os.Getpid()))
	if err != nil {
		return "", func() {}, fmt.Errorf("create test cluster directory: %w", err)
	}

	c, err := Start(ctx, Config{DataDir: dir, Settings: testSettings, Logger: logger})
	if err == nil {
		err = c.CreateDatabase(ctx, database)
	}

	cleanup := onceWithTimeout(func(ctx context.Context) {
		if c != nil {
			if err := c.Stop(ctx); err != nil {
				logger.ErrorContext(ctx, "Could not stop test cluster",
					slog.String("data_dir", dir),
					slog.String("error", err.Error()),
				)
			}
		}
		if err := os.RemoveAll(dir); err != nil {
			logger.ErrorContext(ctx, "Could not remove test cluster",
				slog.String("data_dir", dir),
				slog.String("error", err.Error()),
			)
		}
	})
	if err != nil {
		cleanup()
		return "", func() {}, err
	}
	return c.ConnString(database), cleanup, nil
}

// testDirPrefix starts the name of each throwaway cluster's directory,
// followed by the PID of the test binary that owns it.
const testDirPrefix = "pglocal-tests-"

// sweepLeakedClusters stops and removes throwaway clusters in tmp whose test
// binary has died without cleaning up, as when go test's -timeout kills it.
// A directory whose owner still runs, or was recycled into another live
// process, is left alone.
func sweepLeakedClusters(ctx context.Context, tmp string, logger *slog.Logger) {
	dirs, _ := filepath.Glob(filepath.Join(tmp, testDirPrefix+"*"))
	for _, dir := range dirs {
		owner, _, _ := strings.Cut(strings.TrimPrefix(filepath.Base(dir), testDirPrefix), "-")
		pid, err := strconv.Atoi(owner)
		if err != nil || pid <= 0 || processAlive(pid) {
			continue
		}

		c, err := newCluster(Config{DataDir: dir, Logger: logger})
		if err == nil {
			err = c.Stop(ctx)
		}
		if err == nil {
			err = os.RemoveAll(dir)
		}
		if err != nil {
			logger.WarnContext(ctx, "Could not remove leaked test cluster",
				slog.String("data_dir", dir),
				slog.String("error", err.Error()),
			)
			continue
		}
		logger.WarnContext(ctx, "Removed leaked test cluster", slog.String("data_dir", dir))
	}
}

// onceWithTimeout wraps a cleanup so it runs once, with its own deadline,
// since the context of the test run may be gone by then.
func onceWithTimeout(f func(ctx context.Context)) func() {
	return sync.OnceFunc(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		f(ctx)
	})
}

// testDatabaseName makes a database name from name that no other test run
// uses, such as test_tenancy_1a2b3c4d5e6f.
func testDatabaseName(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	clean := b.String()
	if len(clean) > 40 {
		clean = clean[:40]
	}

	suffix := make([]byte, 6)
	_, _ = rand.Read(suffix) // crypto/rand.Read never fails
	return "test_" + clean + "_" + hex.EncodeToString(suffix)
}

// withDatabase returns connString, a URL or keyword/value string, pointed at
// database.
func withDatabase(connString, database string) (string, error) {
	if _, err := pgx.ParseConfig(connString); err != nil {
		return "", fmt.Errorf("parse %s: %w", TestDatabaseURLEnv, err)
	}

	if !strings.HasPrefix(connString, "postgres://") && !strings.HasPrefix(connString, "postgresql://") {
		// A later keyword wins over an earlier one.
		return connString + " dbname=" + quoteConnValue(database), nil
	}

	u, err := url.Parse(connString)
	if err != nil {
		return "", fmt.Errorf("parse %s: %w", TestDatabaseURLEnv, err)
	}
	u.Path, u.RawPath = "/"+database, ""
	return u.String(), nil
}
