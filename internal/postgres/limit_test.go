package postgres_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/xatlabs/xat/internal/postgres"
)

func TestLimit(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	l := postgres.Limit{Burst: 3, Window: time.Hour}
	key := "email:" + uniqueEmail("limited")

	for range 3 {
		ok, _, err := f.store.Allow(ctx, l, key)
		require.NoError(t, err)
		require.True(t, ok)
	}
	ok, retry, err := f.store.Allow(ctx, l, key)
	require.NoError(t, err)
	require.False(t, ok)
	require.InDelta(t, 20*time.Minute, retry, float64(time.Minute), "one attempt back every window/burst")

	// Another key is not affected; a reset gives the key its allowance back.
	ok, _, err = f.store.Allow(ctx, l, key+"x")
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, f.store.ResetLimit(ctx, key))
	ok, _, err = f.store.Allow(ctx, l, key)
	require.NoError(t, err)
	require.True(t, ok)

	// Time restores the allowance: once the key's time has passed it is
	// whole again, and maintenance deletes it.
	adminExec(t, f.db, `UPDATE public.login_limits SET restored_at = now() - interval '1 second'
		WHERE key_hash IN (sha256(convert_to($1, 'UTF8')), sha256(convert_to($2, 'UTF8')))`, key, key+"x")
	n, err := f.store.DeleteRestoredLimits(ctx)
	require.NoError(t, err)
	require.GreaterOrEqual(t, n, int64(2))
	for range 3 {
		ok, _, err := f.store.Allow(ctx, l, key)
		require.NoError(t, err)
		require.True(t, ok)
	}

	_, _, err = f.store.Allow(ctx, postgres.Limit{}, key)
	require.Error(t, err)
}

// TestLimitConcurrent: attempts made at once, as from many instances,
// are each counted exactly once.
func TestLimitConcurrent(t *testing.T) {
	t.Parallel()
	f := setup(t)
	l := postgres.Limit{Burst: 10, Window: time.Hour}
	key := "addr:" + uniqueEmail("concurrent")
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for range 40 {
		wg.Go(func() {
			ok, _, err := f.store.Allow(context.Background(), l, key)
			require.NoError(t, err)
			if ok {
				allowed.Add(1)
			}
		})
	}
	wg.Wait()
	require.Equal(t, int64(10), allowed.Load())
}
