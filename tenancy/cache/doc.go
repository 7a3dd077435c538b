// Package cache is a tenant-aware cache: the tenant is part of every key by
// construction, so one tenant's entry can never be served to another.
//
// Callers pass a context and a key; the cache derives the stored key from
// the tenant in the context, its id and schema, and a call without a
// tenant fails with tenancy.ErrNoTenant. Because the id is included, a
// tenant dropped and created again under the same schema starts empty.
// Platform-wide entries go through the separately named Shared view, whose
// keys live apart from every tenant's.
//
//	c, err := cache.Open("memory://?max_entries=10000")
//	...
//	ctx = tenancy.WithTenant(ctx, acme)
//	b, ok, err := c.Get(ctx, "collectors:count")
//	if err != nil || !ok {
//		b = countCollectors(ctx) // from the database
//		_ = c.Set(ctx, "collectors:count", b, time.Minute)
//	}
//	err = c.InvalidateTenant(ctx) // after a change that touches many entries
//
//	platforms, ok, err := c.Shared().Get(ctx, "platforms")
//
// Values are byte slices, marshalled by the caller, and every entry has a
// TTL. Errors from the backend (Redis unreachable, say) are returned as
// they are; a caller that treats the cache as optional falls back to its
// source on any error.
//
// # Backends
//
// The memory backend (memory://, NewMemory) is bounded by a number of
// entries and a number of bytes and drops the least recently used entry
// first; expired entries are never returned. It indexes keys by tenant, so
// InvalidateTenant frees a tenant's entries at once. It lives in one
// process: with several instances, each has its own copy and
// InvalidateTenant reaches only the local one.
//
// The Redis backend (redis://host:port/db) is shared by every instance. It
// invalidates with a per-tenant generation instead of finding keys: the
// generation is a random token stored beside the tenant's entries and
// baked into each of their keys, so InvalidateTenant is one write of a new
// token, the old entries can no longer be named, and they expire on their
// own TTL. Reads, writes and deletes run as short server-side scripts that
// read the generation and use it in one round trip. The backend needs one
// Redis server (replicas are fine); Redis Cluster is not supported,
// because the scripts touch keys they cannot declare in advance.
package cache
