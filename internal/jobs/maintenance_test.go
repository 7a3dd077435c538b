package jobs_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/xatlabs/xat/internal/auth"
	"github.com/xatlabs/xat/internal/jobs"
	"github.com/xatlabs/xat/internal/postgres"
	"github.com/xatlabs/xat/tenancy"
	"github.com/xatlabs/xat/tenancy/storage"
	"github.com/xatlabs/xat/tenancy/tenancytest"
)

// TestMaintenance starts a working client alone on its database: it
// becomes River's leader, which runs maintenance at once, deleting expired
// sessions, spent login limits and the temp files that crashed uploads
// left, and nothing else.
func TestMaintenance(t *testing.T) {
	t.Parallel()
	q := openNamedQueueDB(t, tenancy.GuardRole, "maintenance")
	store := postgres.New(q.db)
	ctx := context.Background()
	dir := t.TempDir()
	files, err := storage.Open(ctx, "file://"+filepath.ToSlash(dir))
	require.NoError(t, err)
	t.Cleanup(func() { files.Close() })

	u, err := store.CreateUser(ctx, "user-"+randomHex(6)+"@example.test", testHash, false)
	require.NoError(t, err)
	_, expired := auth.NewToken(auth.KindSession)
	_, live := auth.NewToken(auth.KindSession)
	require.NoError(t, store.CreateSession(ctx, expired, u.ID, nil, time.Now().Add(time.Hour), ""))
	require.NoError(t, store.CreateSession(ctx, live, u.ID, nil, time.Now().Add(time.Hour), ""))
	_, err = tenancytest.AdminConn(t, q.db).Exec(ctx,
		"UPDATE public.sessions SET expires_at = now() - interval '1 second' WHERE id_hash = $1", expired)
	require.NoError(t, err)

	limitKey := "addr:" + randomHex(8)
	ok, _, err := store.Allow(ctx, postgres.Limit{Burst: 1, Window: time.Hour}, limitKey)
	require.NoError(t, err)
	require.True(t, ok)
	_, err = tenancytest.AdminConn(t, q.db).Exec(ctx,
		"UPDATE public.login_limits SET restored_at = now() - interval '1 second'")
	require.NoError(t, err)

	tn := tenancytest.NewTenant(t, q.db)
	obj, err := files.Put(tenancy.WithTenant(ctx, tn), "1", strings.NewReader("kept"), 10)
	require.NoError(t, err)
	crashed := filepath.Join(dir, tn.Schema, "1", ".upload-crashed")
	require.NoError(t, os.WriteFile(crashed, []byte("partial"), 0o600))
	old := time.Now().Add(-2 * jobs.DefaultTempFileAge)
	require.NoError(t, os.Chtimes(crashed, old, old))

	w, err := jobs.New(q.owner, jobs.Config{
		DB: q.db, Store: store, Files: files, Workers: 1, Queue: "t_" + randomHex(6),
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	require.NoError(t, err)
	require.NoError(t, w.Start(ctx))
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, w.Stop(sctx))
	})

	require.Eventually(t, func() bool {
		_, err := os.Stat(crashed)
		return os.IsNotExist(err)
	}, 30*time.Second, 50*time.Millisecond, "the crashed upload's temp file stays")
	_, err = store.SessionAccessByHash(ctx, expired)
	require.ErrorIs(t, err, postgres.ErrNotFound)
	var n int
	require.NoError(t, tenancytest.AdminConn(t, q.db).QueryRow(ctx,
		"SELECT count(*) FROM public.sessions WHERE id_hash = ANY($1)", [][]byte{expired, live}).Scan(&n))
	require.Equal(t, 1, n, "the expired session is deleted, the live one kept")
	require.NoError(t, tenancytest.AdminConn(t, q.db).QueryRow(ctx, "SELECT count(*) FROM public.login_limits").Scan(&n))
	require.Zero(t, n, "a login limit whose allowance is whole again is deleted")
	rc, _, err := files.Get(tenancy.WithTenant(ctx, tn), obj.Key)
	require.NoError(t, err, "objects are kept")
	rc.Close()
}
