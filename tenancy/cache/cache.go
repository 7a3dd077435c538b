package cache

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/xatlabs/xat/tenancy"
)

// scope is the owner part of a stored key: one tenant, or the shared space.
// Backends keep scopes apart by construction, so no key chosen by a caller
// can reach into another scope.
type scope struct {
	name   string // "t:<tenant id>:<schema>", or "s" for shared entries
	tenant bool
}

var sharedScope = scope{name: "s"}

// backend stores entries by scope and key. Values handed to set and
// returned by get are owned by the callee and the caller respectively.
type backend interface {
	get(ctx context.Context, sc scope, key string) ([]byte, bool, error)
	set(ctx context.Context, sc scope, key string, value []byte, ttl time.Duration) error
	del(ctx context.Context, sc scope, key string) error
	dropScope(ctx context.Context, sc scope) error
	ping(ctx context.Context) error
	close() error
}

// Cache holds short-lived values for tenants. Every call takes its tenant
// from the context, and the tenant (its id and schema) is part of every
// stored key, so one tenant's entry can never be read, overwritten or
// deleted by another; a call without a tenant fails with
// tenancy.ErrNoTenant. Platform-wide entries go through Shared.
//
// Values are byte slices that callers marshal themselves; the cache keeps
// its own copy. A Cache is safe for concurrent use.
type Cache struct {
	b backend
}

// Open returns a Cache for a URL:
//
//	memory://?max_entries=10000&max_bytes=67108864   in-process (the default)
//	redis://[user:password@]host:port/db             a Redis server
//	rediss://...                                     the same over TLS
//
// Redis URLs take the query options of go-redis's ParseURL (dial_timeout,
// pool_size and so on). Open makes no connection; see Ping.
func Open(rawURL string) (*Cache, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Parse quotes the URL, which may hold a password.
		return nil, errors.New("cache url: malformed")
	}
	switch u.Scheme {
	case "memory":
		cfg, err := memoryConfig(u)
		if err != nil {
			return nil, fmt.Errorf("cache url: %w", err)
		}
		return NewMemory(cfg), nil
	case "redis", "rediss":
		opts, err := redis.ParseURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("cache url: %w", err)
		}
		return &Cache{b: newRedis(redis.NewClient(opts))}, nil
	default:
		return nil, fmt.Errorf("cache url: unsupported scheme %q, want memory, redis or rediss", u.Scheme)
	}
}

func memoryConfig(u *url.URL) (MemoryConfig, error) {
	var cfg MemoryConfig
	if u.Host != "" || (u.Path != "" && u.Path != "/") || u.Opaque != "" {
		return cfg, errors.New("memory URLs take only parameters, as in memory://?max_entries=10000")
	}
	for name, values := range u.Query() {
		n, err := strconv.ParseInt(values[len(values)-1], 10, 64)
		if err != nil || n <= 0 {
			return cfg, fmt.Errorf("%s must be a positive integer", name)
		}
		switch name {
		case "max_entries":
			cfg.MaxEntries = int(n)
		case "max_bytes":
			cfg.MaxBytes = n
		default:
			return cfg, fmt.Errorf("unknown parameter %q, want max_entries or max_bytes", name)
		}
	}
	return cfg, nil
}

// tenantScope derives the scope of the tenant in ctx. A tenant whose
// schema is not a valid schema name is refused, so a scope can never be
// forged from a string holding separators.
func tenantScope(ctx context.Context) (scope, error) {
	t, ok := tenancy.FromContext(ctx)
	if !ok {
		return scope{}, tenancy.ErrNoTenant
	}
	if err := tenancy.ValidateSchemaName(t.Schema, ""); err != nil {
		return scope{}, fmt.Errorf("cache tenant %d: %w", t.ID, err)
	}
	return scope{name: "t:" + strconv.FormatInt(t.ID, 10) + ":" + t.Schema, tenant: true}, nil
}

// Get returns the value stored at key for the tenant in ctx, and false if
// there is none or it expired.
func (c *Cache) Get(ctx context.Context, key string) ([]byte, bool, error) {
	sc, err := tenantScope(ctx)
	if err != nil {
		return nil, false, err
	}
	return c.b.get(ctx, sc, key)
}

// Set stores value at key for the tenant in ctx for ttl, which must be
// positive; Redis rounds it up to a whole millisecond.
func (c *Cache) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	sc, err := tenantScope(ctx)
	if err != nil {
		return err
	}
	return c.set(ctx, sc, key, value, ttl)
}

func (c *Cache) set(
	ctx context.Context,
	sc scope,
	key string,
	value []byte,
	ttl time.Duration,
) error {
	if ttl <= 0 {
		return fmt.Errorf("cache set: ttl %v must be positive", ttl)
	}
	return c.b.set(ctx, sc, key, value, ttl)
}

// Delete removes key for the tenant in ctx. A missing key is not an error.
func (c *Cache) Delete(ctx context.Context, key string) error {
	sc, err := tenantScope(ctx)
	if err != nil {
		return err
	}
	return c.b.del(ctx, sc, key)
}

// InvalidateTenant drops every entry of the tenant in ctx, and only those.
func (c *Cache) InvalidateTenant(ctx context.Context) error {
	sc, err := tenantScope(ctx)
	if err != nil {
		return err
	}
	return c.b.dropScope(ctx, sc)
}

// Ping checks that the backend answers, for readiness probes. The memory
// backend always does.
func (c *Cache) Ping(ctx context.Context) error {
	return c.b.ping(ctx)
}

// Close releases the backend's connections.
func (c *Cache) Close() error {
	return c.b.close()
}

// Shared returns the view of the cache for platform-wide entries, which
// belong to no tenant. Its keys live apart from every tenant's: a shared
// key and a tenant key never name the same entry, whatever their text.
func (c *Cache) Shared() *Shared {
	return &Shared{c: c}
}

// Shared holds platform-wide entries, such as reference data every tenant
// reads. It ignores any tenant in the context. Use it only for data that
// every tenant may see.
type Shared struct {
	c *Cache
}

// Get returns the shared value at key, and false if there is none or it
// expired.
func (s *Shared) Get(ctx context.Context, key string) ([]byte, bool, error) {
	return s.c.b.get(ctx, sharedScope, key)
}

// Set stores a shared value at key for ttl, which must be positive.
func (s *Shared) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	return s.c.set(ctx, sharedScope, key, value, ttl)
}

// Delete removes the shared value at key. A missing key is not an error.
func (s *Shared) Delete(ctx context.Context, key string) error {
	return s.c.b.del(ctx, sharedScope, key)
}
