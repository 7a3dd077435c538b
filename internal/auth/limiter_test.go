package auth

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// clock is a settable time source for a Limiter.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newTestLimiter(limit int, window time.Duration, maxKeys int) (*Limiter, *clock) {
	c := &clock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	l := NewLimiter(limit, window, maxKeys)
	l.now = c.now
	return l, c
}

func TestLimiterWindow(t *testing.T) {
	t.Parallel()
	l, c := newTestLimiter(5, 10*time.Minute, 100)

	// A burst of limit, then refusal with the time until the next slot.
	for i := range 5 {
		ok, _ := l.Allow("alice")
		require.True(t, ok, "attempt %d", i+1)
	}
	ok, retry := l.Allow("alice")
	require.False(t, ok)
	require.Equal(t, 2*time.Minute, retry)

	// Other keys are unaffected.
	ok, _ = l.Allow("bob")
	require.True(t, ok)

	// Refusals are not recorded: the wait does not grow.
	c.advance(time.Minute)
	ok, retry = l.Allow("alice")
	require.False(t, ok)
	require.Equal(t, time.Minute, retry)

	// One slot frees every window/limit.
	c.advance(time.Minute)
	ok, _ = l.Allow("alice")
	require.True(t, ok)
	ok, retry = l.Allow("alice")
	require.False(t, ok)
	require.Equal(t, 2*time.Minute, retry)

	// A quiet window restores the whole allowance, and no more.
	c.advance(10 * time.Minute)
	for i := range 5 {
		ok, _ := l.Allow("alice")
		require.True(t, ok, "attempt %d after a quiet window", i+1)
	}
	ok, _ = l.Allow("alice")
	require.False(t, ok)
}

func TestLimiterSteadyRate(t *testing.T) {
	t.Parallel()
	l, c := newTestLimiter(10, time.Minute, 10)

	// One attempt a second for an hour: the burst, then limit per window.
	allowed := 0
	for range 3600 {
		if ok, _ := l.Allow("k"); ok {
			allowed++
		}
		c.advance(time.Second)
	}
	require.InDelta(t, 10+60*10, allowed, 1)
}

func TestLimiterReset(t *testing.T) {
	t.Parallel()
	l, _ := newTestLimiter(1, time.Hour, 10)
	ok, _ := l.Allow("k")
	require.True(t, ok)
	ok, _ = l.Allow("k")
	require.False(t, ok)

	l.Reset("k")
	l.Reset("never seen")
	ok, _ = l.Allow("k")
	require.True(t, ok)
}

func TestLimiterEviction(t *testing.T) {
	t.Parallel()
	l, _ := newTestLimiter(1, time.Hour, 3)
	for _, k := range []string{"a", "b", "c"} {
		ok, _ := l.Allow(k)
		require.True(t, ok)
	}
	require.Equal(t, 3, l.Len())

	// Seeing a again makes b the least recent; d evicts it.
	ok, _ := l.Allow("a")
	require.False(t, ok)
	ok, _ = l.Allow("d")
	require.True(t, ok)
	require.Equal(t, 3, l.Len())

	ok, _ = l.Allow("b") // forgotten: allowed again, and evicts c
	require.True(t, ok)
	ok, _ = l.Allow("a") // still tracked: still limited
	require.False(t, ok)

	// Memory stays bounded however many keys pass through.
	for i := range 10_000 {
		l.Allow(fmt.Sprint("flood-", i))
	}
	require.Equal(t, 3, l.Len())
}

func TestLimiterConcurrent(t *testing.T) {
	t.Parallel()
	l, c := newTestLimiter(100, time.Hour, 50)

	var allowed [4]atomic.Int64
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 500 {
				key := g % 4
				if ok, _ := l.Allow(fmt.Sprint("key-", key)); ok {
					allowed[key].Add(1)
				}
				if i%100 == 0 {
					l.Len()
				}
			}
		})
	}
	wg.Wait()

	// The clock did not move: each key got exactly its burst.
	for k := range allowed {
		require.Equal(t, int64(100), allowed[k].Load(), "key %d", k)
	}
	c.advance(time.Hour)
	ok, _ := l.Allow("key-0")
	require.True(t, ok)
}

func TestNewLimiterInvalid(t *testing.T) {
	t.Parallel()
	require.Panics(t, func() { NewLimiter(0, time.Minute, 1) })
	require.Panics(t, func() { NewLimiter(1, 0, 1) })
	require.Panics(t, func() { NewLimiter(1, time.Minute, 0) })
	require.Panics(t, func() { NewLimiter(10, 5*time.Nanosecond, 1) })
}
