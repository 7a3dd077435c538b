package cache

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/xatlabs/xat/tenancy"
)

// lastID hands out tenant ids. It starts at random so that runs against a
// long-lived XAT_TEST_REDIS_URL server never meet each other's entries.
var lastID atomic.Int64

func init() { lastID.Store(rand.Int64N(1 << 40)) }

// newTenant returns a tenant no other test uses.
func newTenant() *tenancy.Tenant {
	id := lastID.Add(1)
	return &tenancy.Tenant{ID: id, Schema: "tenant_" + strconv.FormatInt(id, 10)}
}

func as(t *testing.T, tn *tenancy.Tenant) context.Context {
	return tenancy.WithTenant(t.Context(), tn)
}

func setupMemory(t *testing.T) *Cache {
	return NewMemory(MemoryConfig{})
}

func setupRedis(t *testing.T) *Cache {
	t.Helper()
	needRedis(t)
	c, err := Open(redisURL)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	require.NoError(t, c.Ping(t.Context()))
	return c
}

// forBackends runs test against a fresh memory cache and against Redis.
func forBackends(t *testing.T, test func(t *testing.T, c *Cache)) {
	for _, b := range []struct {
		name  string
		setup func(t *testing.T) *Cache
	}{{"memory", setupMemory}, {"redis", setupRedis}} {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			test(t, b.setup(t))
		})
	}
}

func requireValue(t *testing.T, want string, value []byte, ok bool, err error) {
	t.Helper()
	require.NoError(t, err)
	require.True(t, ok, "want %q, got a miss", want)
	require.Equal(t, want, string(value))
}

func requireMiss(t *testing.T, value []byte, ok bool, err error) {
	t.Helper()
	require.NoError(t, err)
	require.False(t, ok, "want a miss, got %q", value)
}

func TestTenantsNeverShareKeys(t *testing.T) {
	t.Parallel()
	forBackends(t, func(t *testing.T, c *Cache) {
		base := newTenant()
		tests := []struct {
			name string
			a, b *tenancy.Tenant
		}{
			{"different tenants", newTenant(), newTenant()},
			{"schema reused by a new tenant", base, &tenancy.Tenant{ID: lastID.Add(1), Schema: base.Schema}},
			{
				"same id, other schema",
				&tenancy.Tenant{ID: base.ID, Schema: base.Schema + "x"},
				&tenancy.Tenant{ID: base.ID, Schema: base.Schema + "y"},
			},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ctxA, ctxB := as(t, tt.a), as(t, tt.b)
				for _, key := range []string{"k", "", "collectors:count", "t:1:x:y", "s:k", "\x00"} {
					require.NoError(t, c.Set(ctxA, key, []byte("a's"), time.Minute))
					v, ok, err := c.Get(ctxB, key)
					requireMiss(t, v, ok, err)

					require.NoError(t, c.Set(ctxB, key, []byte("b's"), time.Minute))
					v, ok, err = c.Get(ctxA, key)
					requireValue(t, "a's", v, ok, err)
					v, ok, err = c.Get(ctxB, key)
					requireValue(t, "b's", v, ok, err)

					require.NoError(t, c.Delete(ctxB, key))
					v, ok, err = c.Get(ctxA, key)
					requireValue(t, "a's", v, ok, err)
					v, ok, err = c.Get(ctxB, key)
					requireMiss(t, v, ok, err)
				}
			})
		}
	})
}

func TestNoTenant(t *testing.T) {
	t.Parallel()
	forBackends(t, func(t *testing.T, c *Cache) {
		for _, ctx := range []context.Context{t.Context(), tenancy.WithTenant(t.Context(), nil)} {
			_, _, err := c.Get(ctx, "k")
			require.ErrorIs(t, err, tenancy.ErrNoTenant)
			require.ErrorIs(t, c.Set(ctx, "k", []byte("v"), time.Minute), tenancy.ErrNoTenant)
			require.ErrorIs(t, c.Delete(ctx, "k"), tenancy.ErrNoTenant)
			require.ErrorIs(t, c.InvalidateTenant(ctx), tenancy.ErrNoTenant)
		}

		// A schema holding separators could forge another scope.
		bad := as(t, &tenancy.Tenant{ID: 1, Schema: "a:2:b"})
		require.ErrorIs(t, c.Set(bad, "k", []byte("v"), time.Minute), tenancy.ErrInvalidSchema)
		_, _, err := c.Get(bad, "k")
		require.ErrorIs(t, err, tenancy.ErrInvalidSchema)
	})
}

func TestSharedNeverCollides(t *testing.T) {
	t.Parallel()
	forBackends(t, func(t *testing.T, c *Cache) {
		tn := newTenant()
		ctx := as(t, tn)
		shared := c.Shared()
		uniq := "k" + strconv.FormatInt(tn.ID, 10)

		require.NoError(t, c.Set(ctx, uniq, []byte("tenant"), time.Minute))
		require.NoError(t, shared.Set(ctx, uniq, []byte("shared"), time.Minute))

		v, ok, err := c.Get(ctx, uniq)
		requireValue(t, "tenant", v, ok, err)
		v, ok, err = shared.Get(ctx, uniq)
		requireValue(t, "shared", v, ok, err)

		// Shared keys spelled like stored tenant keys reach nothing of the
		// tenant's, and the reverse.
		scopeName := fmt.Sprintf("t:%d:%s", tn.ID, tn.Schema)
		for _, key := range []string{scopeName + ":" + uniq, scopeName + uniq, "s:" + uniq, ":" + uniq} {
			v, ok, err := shared.Get(ctx, key)
			requireMiss(t, v, ok, err)
			require.NoError(t, shared.Set(ctx, key, []byte("forged"), time.Minute))
		}
		v, ok, err = c.Get(ctx, uniq)
		requireValue(t, "tenant", v, ok, err)
		v, ok, err = c.Get(ctx, "s:"+uniq)
		requireMiss(t, v, ok, err)

		// Invalidating a tenant leaves shared entries alone.
		require.NoError(t, c.InvalidateTenant(ctx))
		v, ok, err = shared.Get(ctx, uniq)
		requireValue(t, "shared", v, ok, err)

		require.NoError(t, shared.Delete(ctx, uniq))
		v, ok, err = shared.Get(ctx, uniq)
		requireMiss(t, v, ok, err)
	})
}

func TestInvalidateTenant(t *testing.T) {
	t.Parallel()
	forBackends(t, func(t *testing.T, c *Cache) {
		a, b := newTenant(), newTenant()
		ctxA, ctxB := as(t, a), as(t, b)
		sharedKey := "shared" + strconv.FormatInt(a.ID, 10)
		for _, ctx := range []context.Context{ctxA, ctxB} {
			for _, key := range []string{"k1", "k2"} {
				require.NoError(t, c.Set(ctx, key, []byte("old"), time.Minute))
			}
		}
		require.NoError(t, c.Shared().Set(ctxA, sharedKey, []byte("kept"), time.Minute))

		require.NoError(t, c.InvalidateTenant(ctxA))
		for _, key := range []string{"k1", "k2"} {
			v, ok, err := c.Get(ctxA, key)
			requireMiss(t, v, ok, err)
			v, ok, err = c.Get(ctxB, key)
			requireValue(t, "old", v, ok, err)
		}
		v, ok, err := c.Shared().Get(ctxA, sharedKey)
		requireValue(t, "kept", v, ok, err)

		// The tenant goes on caching after an invalidation.
		require.NoError(t, c.Set(ctxA, "k1", []byte("new"), time.Minute))
		v, ok, err = c.Get(ctxA, "k1")
		requireValue(t, "new", v, ok, err)

		// Invalidating a tenant that never cached anything is fine.
		require.NoError(t, c.InvalidateTenant(as(t, newTenant())))
	})
}

func TestSetRefusesBadTTL(t *testing.T) {
	t.Parallel()
	forBackends(t, func(t *testing.T, c *Cache) {
		ctx := as(t, newTenant())
		for _, ttl := range []time.Duration{0, -time.Second} {
			require.Error(t, c.Set(ctx, "k", []byte("v"), ttl))
			require.Error(t, c.Shared().Set(ctx, "k", []byte("v"), ttl))
		}
	})
}

func TestRedisTTL(t *testing.T) {
	t.Parallel()
	c := setupRedis(t)
	tn := newTenant()
	ctx := as(t, tn)
	sharedKey := "ttl" + strconv.FormatInt(tn.ID, 10)

	require.NoError(t, c.Set(ctx, "short", []byte("v"), 500*time.Millisecond))
	require.NoError(t, c.Set(ctx, "long", []byte("v"), time.Minute))
	require.NoError(t, c.Shared().Set(ctx, sharedKey, []byte("v"), 500*time.Millisecond))
	v, ok, err := c.Get(ctx, "short")
	requireValue(t, "v", v, ok, err)

	require.Eventually(t, func() bool {
		_, ok1, err1 := c.Get(ctx, "short")
		_, ok2, err2 := c.Shared().Get(ctx, sharedKey)
		return err1 == nil && err2 == nil && !ok1 && !ok2
	}, 5*time.Second, 20*time.Millisecond)
	v, ok, err = c.Get(ctx, "long")
	requireValue(t, "v", v, ok, err)

	// A TTL under Redis's millisecond is rounded up, not refused.
	require.NoError(t, c.Set(ctx, "tiny", []byte("v"), time.Microsecond))
	require.NoError(t, c.Shared().Set(ctx, sharedKey, []byte("v"), time.Microsecond))
}

func TestRedisLostGeneration(t *testing.T) {
	t.Parallel()
	c := setupRedis(t)
	tn := newTenant()
	ctx := as(t, tn)
	sc, err := tenantScope(ctx)
	require.NoError(t, err)

	require.NoError(t, c.Set(ctx, "k", []byte("old"), time.Minute))

	// What maxmemory eviction of the generation key would do.
	rdb := c.b.(*redisBackend).rdb
	require.NoError(t, rdb.Del(ctx, genKey(sc)).Err())
	v, ok, err := c.Get(ctx, "k")
	requireMiss(t, v, ok, err)

	// A new write starts a new generation; the old entry stays unreachable.
	require.NoError(t, c.Set(ctx, "other", []byte("new"), time.Minute))
	v, ok, err = c.Get(ctx, "k")
	requireMiss(t, v, ok, err)
	v, ok, err = c.Get(ctx, "other")
	requireValue(t, "new", v, ok, err)
}

func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	forBackends(t, func(t *testing.T, c *Cache) {
		tenants := []*tenancy.Tenant{newTenant(), newTenant(), newTenant(), newTenant()}
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				tn := tenants[g%len(tenants)]
				ctx := as(t, tn)
				for i := range 200 {
					key := "k" + strconv.Itoa(i%10)
					want := tn.Schema + "/" + key
					if err := c.Set(ctx, key, []byte(want), time.Minute); err != nil {
						t.Error(err)
						return
					}
					v, ok, err := c.Get(ctx, key)
					if err != nil || (ok && string(v) != want) {
						t.Errorf("tenant %s key %s: got %q, %v", tn.Schema, key, v, err)
						return
					}
					if i%50 == 0 {
						if err := c.InvalidateTenant(ctx); err != nil {
							t.Error(err)
							return
						}
					}
				}
			})
		}
		wg.Wait()
	})
}

func TestOpen(t *testing.T) {
	t.Parallel()

	for _, u := range []string{
		"memory://",
		"memory://?max_entries=5",
		"memory://?max_entries=5&max_bytes=1048576",
		"memory:",
		"redis://127.0.0.1:1/0",
		"rediss://user:secret@127.0.0.1:1/2",
	} {
		c, err := Open(u)
		require.NoError(t, err, u)
		require.NoError(t, c.Close())
	}

	for _, u := range []string{
		"",
		"mem://",
		"memcached://127.0.0.1:11211",
		"memory://host",
		"memory:///path",
		"memory://?max_entries=0",
		"memory://?max_entries=-1",
		"memory://?max_entries=many",
		"memory://?size=10",
		"redis://127.0.0.1:1/notadb",
	} {
		_, err := Open(u)
		require.Error(t, err, "url %q", u)
	}

	// Errors never repeat a password.
	_, err := Open("redis://user:secret@127.0.0.1:1/notadb?%zz")
	require.Error(t, err)
	require.NotContains(t, err.Error(), "secret")
	_, err = Open("redis://user:secret@127.0.0.1:1/notadb")
	require.Error(t, err)
	require.NotContains(t, err.Error(), "secret")

	c, err := Open("memory://?max_entries=5&max_bytes=4096")
	require.NoError(t, err)
	require.Equal(t, 5, c.b.(*memory).cfg.MaxEntries)
	require.Equal(t, int64(4096), c.b.(*memory).cfg.MaxBytes)
}
