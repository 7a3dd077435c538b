package tenancy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// ErrMalformedHost is returned by Resolve when a host fails normalisation
// or validation (see NormalizeHost and ValidateDomain). The error also
// unwraps to the *NameError that says why.
var ErrMalformedHost = errors.New("malformed host")

// ResolverConfig configures a Resolver. The zero value is usable.
type ResolverConfig struct {
	// PublicHosts are the hosts that serve the platform (public) routes
	// rather than a tenant. They are normalised like request hosts and
	// compared exactly, before any validation, so "localhost", an IPv4
	// address or an IPv6 address (with or without brackets) may be listed.
	// A public host wins over a tenant domain of the same name. Default:
	// none.
	PublicHosts []string

	// CacheSize bounds how many answers the cache keeps. A quarter of the
	// room is for negative answers (unknown hosts and schemas), so that
	// requests for many unknown hosts cannot push known tenants out.
	// Default 10000.
	CacheSize int

	// TTL is how long an answer stays cached. Invalidation through Listen
	// or Invalidate is what keeps the cache current; the TTL is a safety
	// net for missed notifications. Default 5 minutes.
	TTL time.Duration

	// Logger receives the listener's lifecycle and warnings and the
	// middleware's rejections. Default: discarded.
	Logger *slog.Logger
}

// Resolution is what a host resolves to: the platform itself (Public) or
// one tenant.
type Resolution struct {
	// Host is the normalised host.
	Host string

	// Public is set when Host is one of the configured public hosts.
	Public bool

	// Tenant is the tenant the host routes to; nil when Public. It is the
	// caller's own copy.
	Tenant *Tenant
}

// ResolverStats counts cache use, for metrics.
type ResolverStats struct {
	Hits    uint64 // answers served from the cache, negative ones included
	Misses  uint64 // answers that needed (or waited for) a registry query
	Entries int    // answers held now
}

// Resolver maps request hosts to tenants through an in-process cache, so
// that a request does not pay a registry query. Answers, negative ones
// included, are cached until invalidated or until the TTL ends; concurrent
// misses for the same host share one query. Run Listen to keep the cache
// current when the registry changes, from this process or any other.
// A Resolver is safe for concurrent use.
//
// Negative answers spare the registry only repeated unknown hosts: a
// client sending many distinct valid-looking hosts costs one registry query
// per host, so rate limits belong in front of the middleware.
type Resolver struct {
	db     *DB
	public map[string]bool
	log    *slog.Logger

	mu      sync.Mutex
	cache   *hostCache
	gen     uint64 // bumped by every invalidation
	flights map[cacheKey]*flight

	hits      atomic.Uint64
	misses    atomic.Uint64
	listening atomic.Bool

	subMu sync.Mutex
	subs  map[string]func() // extra channels, see Subscribe
}

// flight is one registry query that concurrent misses wait for.
type flight struct {
	done   chan struct{}
	tenant *Tenant
	err    error
}

// fetchFunc asks the registry for one answer.
type fetchFunc func(context.Context) (*Tenant, error)

// lookupTimeout bounds a registry query. The query runs detached from the
// request that started it, so that one caller giving up does not fail the
// others waiting for the same answer.
const lookupTimeout = 10 * time.Second

// NewResolver returns a Resolver that looks hosts up in db's registry
// through its serving pool.
func NewResolver(db *DB, cfg ResolverConfig) *Resolver {
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = 10000
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 5 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	public := make(map[string]bool, len(cfg.PublicHosts))
	for _, h := range cfg.PublicHosts {
		if h = requestHost(h); h != "" {
			public[h] = true
		}
	}
	return &Resolver{
		db:      db,
		public:  public,
		log:     cfg.Logger,
		cache:   newHostCache(cfg.CacheSize, cfg.TTL),
		flights: make(map[cacheKey]*flight),
	}
}

// requestHost normalises a Host header for matching: NormalizeHost, and
// the brackets of an IPv6 literal given without a port removed.
func requestHost(host string) string {
	h := NormalizeHost(host)
	if len(h) > 1 && h[0] == '[' && h[len(h)-1] == ']' {
		h = h[1 : len(h)-1]
	}
	return h
}

// Resolve returns what host (a Host header: any case, optional port and
// trailing dot) routes to. A configured public host resolves to Public.
// Any other host must be a valid domain, or Resolve returns
// ErrMalformedHost; IP addresses are not tenant domains, so an IP that is
// not a public host is malformed. A host the registry does not know gives
// ErrTenantNotFound: there is never a fallback to another tenant or to
// public. A host of a deactivated tenant gives ErrTenantInactive together
// with the Resolution naming the tenant, so callers that check only the
// error fail closed and others can still say who was refused.
func (rs *Resolver) Resolve(ctx context.Context, host string) (Resolution, error) {
	h := requestHost(host)
	if rs.public[h] {
		return Resolution{Host: h, Public: true}, nil
	}
	if err := ValidateDomain(h); err != nil {
		return Resolution{}, fmt.Errorf("%w: %w", ErrMalformedHost, err)
	}

	k := cacheKey{name: h}
	t, err := rs.lookup(ctx, k, func(ctx context.Context) (*Tenant, error) {
		return rs.db.TenantByDomain(ctx, h)
	})
	if err != nil {
		return Resolution{}, fmt.Errorf("resolve host %q: %w", h, err)
	}
	res := Resolution{Host: h, Tenant: t}
	if !t.Active {
		return res, fmt.Errorf("resolve host %q: %w", h, ErrTenantInactive)
	}
	return res, nil
}

// ResolveSchema returns the tenant whose schema is schema, through the same
// cache as Resolve. A name that is not a valid tenant schema, or that the
// registry does not know, gives ErrTenantNotFound; a deactivated tenant is
// returned together with ErrTenantInactive.
func (rs *Resolver) ResolveSchema(ctx context.Context, schema string) (*Tenant, error) {
	if err := ValidateSchemaName(schema, rs.db.cfg.SchemaPrefix); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTenantNotFound, err)
	}
	k := cacheKey{bySchema: true, name: schema}
	t, err := rs.lookup(ctx, k, func(ctx context.Context) (*Tenant, error) {
		return rs.db.Tenant(ctx, schema)
	})
	if err != nil {
		return nil, fmt.Errorf("resolve schema %s: %w", schema, err)
	}
	if !t.Active {
		return t, fmt.Errorf("resolve schema %s: %w", schema, ErrTenantInactive)
	}
	return t, nil
}

// lookup answers k from the cache or, on a miss, from fetch, sharing one
// fetch among concurrent misses. It returns the caller's own copy of the
// tenant, or ErrTenantNotFound.
func (rs *Resolver) lookup(ctx context.Context, k cacheKey, fetch fetchFunc) (*Tenant, error) {
	rs.mu.Lock()
	if e, ok := rs.cache.get(k); ok {
		rs.mu.Unlock()
		rs.hits.Add(1)
		if e.tenant == nil {
			return nil, ErrTenantNotFound
		}
		return cloneTenant(e.tenant), nil
	}
	rs.misses.Add(1)
	f, ok := rs.flights[k]
	if !ok {
		f = &flight{done: make(chan struct{})}
		rs.flights[k] = f
		go rs.fly(context.WithoutCancel(ctx), k, f, rs.gen, fetch)
	}
	rs.mu.Unlock()

	select {
	case <-f.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if f.err != nil {
		return nil, f.err
	}
	return cloneTenant(f.tenant), nil
}

// fly runs one registry query and caches its answer, unless the cache was
// invalidated meanwhile: the answer may then predate the change.
func (rs *Resolver) fly(ctx context.Context, k cacheKey, f *flight, gen uint64, fetch fetchFunc) {
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	t, err := fetch(ctx)

	rs.mu.Lock()
	if rs.flights[k] == f {
		delete(rs.flights, k)
	}
	if gen == rs.gen {
		switch {
		case err == nil:
			rs.cache.put(k, t)
		case errors.Is(err, ErrTenantNotFound):
			rs.cache.put(k, nil)
		}
	}
	rs.mu.Unlock()

	f.tenant, f.err = t, err
	close(f.done)
}

func cloneTenant(t *Tenant) *Tenant {
	c := *t
	if t.PaidUntil != nil {
		p := *t.PaidUntil
		c.PaidUntil = &p
	}
	return &c
}

// Invalidate empties the cache. Queries already running are not cached
// when they finish; later lookups start fresh ones.
func (rs *Resolver) Invalidate() {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.gen++
	rs.cache.clear()
	clear(rs.flights)
}

// Stats returns the cache counters since the Resolver was made.
func (rs *Resolver) Stats() ResolverStats {
	rs.mu.Lock()
	n := rs.cache.len()
	rs.mu.Unlock()
	return ResolverStats{Hits: rs.hits.Load(), Misses: rs.misses.Load(), Entries: n}
}
