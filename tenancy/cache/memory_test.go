package cache

import (
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// stats returns the entries and bytes the memory backend holds.
func (m *memory) stats() (entries int, bytes int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.order.Len(), m.bytes
}

// fakeClock is a clock that moves only when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func setupMemoryWith(cfg MemoryConfig) (*Cache, *memory) {
	c := NewMemory(cfg)
	return c, c.b.(*memory)
}

func TestMemoryTTL(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	c, m := setupMemoryWith(MemoryConfig{Now: clock.Now})
	ctx := as(t, newTenant())

	require.NoError(t, c.Set(ctx, "k", []byte("v"), time.Minute))
	require.NoError(t, c.Shared().Set(ctx, "k", []byte("v"), 2*time.Minute))

	clock.Advance(time.Minute - time.Nanosecond)
	v, ok, err := c.Get(ctx, "k")
	requireValue(t, "v", v, ok, err)

	clock.Advance(time.Nanosecond)
	v, ok, err = c.Get(ctx, "k")
	requireMiss(t, v, ok, err)
	v, ok, err = c.Shared().Get(ctx, "k")
	requireValue(t, "v", v, ok, err)

	clock.Advance(time.Minute)
	v, ok, err = c.Shared().Get(ctx, "k")
	requireMiss(t, v, ok, err)
	entries, bytes := m.stats()
	require.Zero(t, entries, "expired entries found by Get are dropped")
	require.Zero(t, bytes)

	// Setting again restarts the TTL.
	require.NoError(t, c.Set(ctx, "k", []byte("v1"), time.Minute))
	clock.Advance(30 * time.Second)
	require.NoError(t, c.Set(ctx, "k", []byte("v2"), time.Minute))
	clock.Advance(45 * time.Second)
	v, ok, err = c.Get(ctx, "k")
	requireValue(t, "v2", v, ok, err)
}

func TestMemoryMaxEntries(t *testing.T) {
	t.Parallel()
	c, m := setupMemoryWith(MemoryConfig{MaxEntries: 10})
	ctxA, ctxB := as(t, newTenant()), as(t, newTenant())

	for i := range 10 {
		require.NoError(t, c.Set(ctxA, "k"+strconv.Itoa(i), []byte("v"), time.Minute))
	}
	// k0 is used, so k1 is now the least recently used.
	_, ok, err := c.Get(ctxA, "k0")
	require.NoError(t, err)
	require.True(t, ok)

	for i := range 25 {
		require.NoError(t, c.Set(ctxB, "k"+strconv.Itoa(i), []byte("v"), time.Minute))
		entries, _ := m.stats()
		require.LessOrEqual(t, entries, 10)
		if i == 0 {
			v, ok, err := c.Get(ctxA, "k1")
			requireMiss(t, v, ok, err)
			v, ok, err = c.Get(ctxA, "k0")
			requireValue(t, "v", v, ok, err)
		}
	}
	for i := 15; i < 25; i++ {
		v, ok, err := c.Get(ctxB, "k"+strconv.Itoa(i))
		requireValue(t, "v", v, ok, err)
	}
	require.Len(t, m.scopes, 1, "the scope index forgets evicted tenants")
}

func TestMemoryMaxBytes(t *testing.T) {
	t.Parallel()
	const max = 16 << 10
	c, m := setupMemoryWith(MemoryConfig{MaxBytes: max})
	ctx := as(t, newTenant())

	value := make([]byte, 1000)
	for i := range 100 {
		require.NoError(t, c.Set(ctx, "k"+strconv.Itoa(i), value, time.Minute))
		_, bytes := m.stats()
		require.LessOrEqual(t, bytes, int64(max))
	}
	entries, _ := m.stats()
	require.Greater(t, entries, 10)
	require.Less(t, entries, 17)

	v, ok, err := c.Get(ctx, "k99")
	requireValue(t, string(value), v, ok, err)

	// A value that could never fit is not stored, and the value it was
	// to replace is gone too, so a stale one is never served.
	require.NoError(t, c.Set(ctx, "k99", make([]byte, max), time.Minute))
	v, ok, err = c.Get(ctx, "k99")
	requireMiss(t, v, ok, err)
}

func TestMemoryInvalidateFrees(t *testing.T) {
	t.Parallel()
	c, m := setupMemoryWith(MemoryConfig{})
	ctxA, ctxB := as(t, newTenant()), as(t, newTenant())
	for i := range 50 {
		require.NoError(t, c.Set(ctxA, "k"+strconv.Itoa(i), []byte("v"), time.Minute))
	}
	require.NoError(t, c.Set(ctxB, "k", []byte("v"), time.Minute))

	require.NoError(t, c.InvalidateTenant(ctxA))
	entries, _ := m.stats()
	require.Equal(t, 1, entries)
	require.Len(t, m.scopes, 1)
}

func TestMemoryCopiesValues(t *testing.T) {
	t.Parallel()
	c := NewMemory(MemoryConfig{})
	ctx := as(t, newTenant())

	in := []byte("value")
	require.NoError(t, c.Set(ctx, "k", in, time.Minute))
	in[0] = 'X'
	out, _, err := c.Get(ctx, "k")
	require.NoError(t, err)
	out[1] = 'Y'

	v, ok, err := c.Get(ctx, "k")
	requireValue(t, "value", v, ok, err)
}
