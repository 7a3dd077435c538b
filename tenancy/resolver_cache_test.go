package tenancy

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestLRUEvictsLeastRecentlyUsed(t *testing.T) {
	t.Parallel()
	l := newLRU(2)
	key := func(s string) cacheKey { return cacheKey{name: s} }
	l.put(&cacheEntry{key: key("a")})
	l.put(&cacheEntry{key: key("b")})
	_, ok := l.get(key("a"))
	require.True(t, ok)

	l.put(&cacheEntry{key: key("c")})
	require.Equal(t, 2, l.len())
	_, ok = l.get(key("b"))
	require.False(t, ok, "b was the least recently used")
	_, ok = l.get(key("a"))
	require.True(t, ok)

	// A host and a schema of the same name are different entries.
	l.put(&cacheEntry{key: cacheKey{bySchema: true, name: "a"}})
	_, ok = l.get(cacheKey{name: "a"})
	require.True(t, ok)
}

func TestHostCacheTTL(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	c := newHostCache(10, time.Minute)
	c.now = func() time.Time { return now }
	k := cacheKey{name: "acme.test"}
	c.put(k, &Tenant{ID: 1})

	_, ok := c.get(k)
	require.True(t, ok)
	now = now.Add(time.Minute)
	_, ok = c.get(k)
	require.False(t, ok)
	require.Zero(t, c.len(), "an expired entry is dropped")
}

// TestHostCacheNegativeShare floods the cache with unknown hosts: they are
// bounded to their share and the known tenants stay.
func TestHostCacheNegativeShare(t *testing.T) {
	t.Parallel()
	c := newHostCache(8, time.Minute)
	for i := range 6 {
		c.put(cacheKey{name: string(rune('a' + i))}, &Tenant{ID: int64(i)})
	}
	for i := range 1000 {
		c.put(cacheKey{name: fmt.Sprintf("unknown%d", i)}, nil)
	}
	require.Equal(t, 8, c.len())
	for i := range 6 {
		e, ok := c.get(cacheKey{name: string(rune('a' + i))})
		require.True(t, ok)
		require.Equal(t, int64(i), e.tenant.ID)
	}

	// A negative answer replaces a positive one for the same key.
	c.put(cacheKey{name: "a"}, nil)
	e, ok := c.get(cacheKey{name: "a"})
	require.True(t, ok)
	require.Nil(t, e.tenant)
	require.Equal(t, 7, c.len())
}

// blockingFetch returns a fetch that counts its calls, signals each start
// on started and waits for release.
func blockingFetch(calls *atomic.Int32, started chan<- struct{}, release <-chan struct{}) fetchFunc {
	return func(context.Context) (*Tenant, error) {
		n := calls.Add(1)
		started <- struct{}{}
		<-release
		return &Tenant{ID: int64(n), Active: true}, nil
	}
}

func TestResolverCoalescesMisses(t *testing.T) {
	t.Parallel()
	rs := NewResolver(&DB{}, ResolverConfig{})
	var calls atomic.Int32
	started, release := make(chan struct{}, 1), make(chan struct{})
	fetch := blockingFetch(&calls, started, release)
	k := cacheKey{name: "acme.test"}

	const n = 20
	ids := make([]int64, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if tn, err := rs.lookup(context.Background(), k, fetch); err == nil {
				ids[i] = tn.ID
			}
		})
	}
	<-started
	require.Eventually(t, func() bool { return rs.Stats().Misses == n }, 5*time.Second, time.Millisecond)
	close(release)
	wg.Wait()

	for _, id := range ids {
		require.Equal(t, int64(1), id)
	}
	require.Equal(t, int32(1), calls.Load())
	st := rs.Stats()
	require.Equal(t, ResolverStats{Hits: 0, Misses: n, Entries: 1}, st)
}

// TestResolverInvalidateDuringLookup checks that an answer fetched before
// an invalidation is not cached, and that lookups after it do not join the
// old query.
func TestResolverInvalidateDuringLookup(t *testing.T) {
	t.Parallel()
	rs := NewResolver(&DB{}, ResolverConfig{})
	var calls atomic.Int32
	started, release := make(chan struct{}, 2), make(chan struct{})
	fetch := blockingFetch(&calls, started, release)
	k := cacheKey{name: "acme.test"}

	var before, after *Tenant
	var wg sync.WaitGroup
	wg.Go(func() { before, _ = rs.lookup(context.Background(), k, fetch) })
	<-started
	rs.Invalidate()
	wg.Go(func() { after, _ = rs.lookup(context.Background(), k, fetch) })
	<-started
	close(release)
	wg.Wait()

	require.Equal(t, int64(1), before.ID)
	require.Equal(t, int64(2), after.ID, "a lookup after the invalidation runs its own query")

	require.Equal(t, int32(2), calls.Load())
	e, ok := rs.cache.get(k)
	require.True(t, ok)
	require.Equal(t, int64(2), e.tenant.ID, "only the answer fetched after the invalidation is cached")
}

func TestResolverWaiterGivesUp(t *testing.T) {
	t.Parallel()
	rs := NewResolver(&DB{}, ResolverConfig{})
	var calls atomic.Int32
	started, release := make(chan struct{}, 1), make(chan struct{})
	fetch := blockingFetch(&calls, started, release)
	k := cacheKey{name: "acme.test"}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := rs.lookup(ctx, k, fetch)
		done <- err
	}()
	<-started
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)

	// The query itself went on and its answer serves the next caller.
	close(release)
	require.Eventually(t, func() bool { return rs.Stats().Entries == 1 }, 5*time.Second, time.Millisecond)
	tn, err := rs.lookup(context.Background(), k, fetch)
	require.NoError(t, err)
	require.Equal(t, int64(1), tn.ID)
	require.Equal(t, uint64(1), rs.Stats().Hits)
}
