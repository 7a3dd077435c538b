package cli

import (
	"bytes"
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestMigrateJobQueue checks that xat migrate brings the job queue along
// with the shared set, once.
func TestMigrateJobQueue(t *testing.T) {
	needDB(t)
	t.Parallel()

	r := xat(t, "migrate", "--shared")
	requireOK(t, r)
	require.Contains(t, r.stdout, "job queue: nothing to apply\n", "TestMain's migrate applied it")

	r = xat(t, "migrate", "--tenant")
	requireOK(t, r)
	require.NotContains(t, r.stdout, "job queue:")
}

func TestWorkerArguments(t *testing.T) {
	t.Parallel()
	r := xat(t, "worker", "--workers", "0")
	requireFails(t, r, exitUsage, "--workers must be at least 1, got 0")
	r = xat(t, "worker", "extra")
	requireFails(t, r, exitUsage, `unexpected argument "extra"`)
	r = xat(t, "--storage-url", "ftp://files", "worker")
	requireFails(t, r, exitUsage, "XAT_STORAGE_URL (--storage-url)")
}

// TestWorkerRuns starts xat worker and xat serve --no-worker against the
// test database and stops them, as an operator would.
func TestWorkerRuns(t *testing.T) {
	needDB(t)
	t.Parallel()
	storage := "file://" + t.TempDir()

	for _, args := range [][]string{
		{"--storage-url", storage, "worker", "--workers", "1"},
		{"--storage-url", storage, "--addr", freeAddr(t), "serve", "--no-worker"},
	} {
		ctx, cancel := context.WithCancel(t.Context())
		var out, errs bytes.Buffer
		done := make(chan int, 1)
		go func() { done <- Run(ctx, args, testEnv(&out, &errs, nil)) }()

		// Let it start, then interrupt it: it must stop cleanly, as after
		// any graceful shutdown.
		time.Sleep(500 * time.Millisecond)
		cancel()
		select {
		case code := <-done:
			require.Equal(t, exitOK, code, "%v\nstdout:\n%s\nstderr:\n%s", args, &out, &errs)
		case <-time.After(45 * time.Second):
			t.Fatalf("%v did not stop", args)
		}
		require.NotContains(t, errs.String(), "level=ERROR", "%v", args)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}
