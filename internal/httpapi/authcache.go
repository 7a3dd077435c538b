package httpapi

import (
	"sync"
	"time"

	"github.com/xatlabs/xat/internal/postgres"
)

// tokenGrant is what one personal token proves, as loaded from the
// database: the token, its user and the user's role on the token's
// partner ("" when no longer a member).
type tokenGrant struct {
	tok     *postgres.APIToken
	user    *postgres.User
	role    string
	loaded  time.Time
	touched time.Time // last time this process recorded the token's use
}

// grantCache keeps token grants for a short time, so that a request does
// not pay a registry query to authenticate. Entries live for ttl;
// revocations and membership changes made through this process clear the
// cache at once, and those made anywhere else clear it when their
// notification on AuthChannel arrives (the server subscribes through the
// tenant resolver's listener). Without a running listener, a change made
// elsewhere takes effect within ttl.
type grantCache struct {
	ttl time.Duration
	max int

	mu      sync.Mutex
	entries map[string]*tokenGrant
}

func newGrantCache(ttl time.Duration, max int) *grantCache {
	return &grantCache{ttl: ttl, max: max, entries: make(map[string]*tokenGrant)}
}

// get returns the live grant of a token hash.
func (c *grantCache) get(hash []byte, now time.Time) (*tokenGrant, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, ok := c.entries[string(hash)]
	if !ok || now.Sub(g.loaded) > c.ttl {
		return nil, false
	}
	return g, true
}

// put stores a grant; when the cache is full, expired entries go first,
// and if none has expired, everything does: the cache refills in one ttl.
func (c *grantCache) put(hash []byte, g *tokenGrant) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		for k, e := range c.entries {
			if g.loaded.Sub(e.loaded) > c.ttl {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= c.max {
			clear(c.entries)
		}
	}
	c.entries[string(hash)] = g
}

// markTouched reports whether the token's use should be recorded now (at
// most once a minute per process) and notes that it is.
func (c *grantCache) markTouched(g *tokenGrant, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now.Sub(g.touched) < time.Minute {
		return false
	}
	g.touched = now
	return true
}

// clear forgets every grant, after a change that may revoke one.
func (c *grantCache) clear() {
	c.mu.Lock()
	clear(c.entries)
	c.mu.Unlock()
}

// AuthChannel is the notification channel on which the database announces
// changes to tokens, memberships and users (see the shared migrations).
const AuthChannel = "xat_auth"
