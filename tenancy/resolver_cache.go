package tenancy

import (
	"container/list"
	"time"
)

// cacheKey names a cached registry answer: a host, or a schema for the
// path-prefix mode. The two never share an entry.
type cacheKey struct {
	bySchema bool
	name     string
}

// cacheEntry is one answer of the registry. A nil tenant is a negative
// answer: the registry had no such host or schema.
type cacheEntry struct {
	key     cacheKey
	tenant  *Tenant
	expires time.Time
}

// lru is a bounded map that forgets its least recently used entry when
// full. It is not safe for concurrent use; the resolver locks around it.
type lru struct {
	max   int
	order list.List // of *cacheEntry, most recently used first
	items map[cacheKey]*list.Element
}

func newLRU(max int) *lru {
	return &lru{max: max, items: make(map[cacheKey]*list.Element)}
}

func (l *lru) get(k cacheKey) (*cacheEntry, bool) {
	el, ok := l.items[k]
	if !ok {
		return nil, false
	}
	l.order.MoveToFront(el)
	return el.Value.(*cacheEntry), true
}

func (l *lru) put(e *cacheEntry) {
	if l.max <= 0 {
		return
	}
	if el, ok := l.items[e.key]; ok {
		el.Value = e
		l.order.MoveToFront(el)
		return
	}
	l.items[e.key] = l.order.PushFront(e)
	if l.order.Len() > l.max {
		l.remove(l.order.Back().Value.(*cacheEntry).key)
	}
}

func (l *lru) remove(k cacheKey) {
	if el, ok := l.items[k]; ok {
		l.order.Remove(el)
		delete(l.items, k)
	}
}

func (l *lru) clear() {
	l.order.Init()
	clear(l.items)
}

func (l *lru) len() int { return l.order.Len() }

// hostCache holds the resolver's answers in two bounded parts, so that a
// flood of unknown hosts, each a negative answer, cannot push the known
// tenants out: negative answers get a quarter of the room.
type hostCache struct {
	found   *lru
	missing *lru
	ttl     time.Duration
	now     func() time.Time
}

func newHostCache(size int, ttl time.Duration) *hostCache {
	neg := size / 4
	return &hostCache{
		found:   newLRU(size - neg),
		missing: newLRU(neg),
		ttl:     ttl,
		now:     time.Now,
	}
}

// get returns the cached answer for k, if there is one that has not
// expired.
func (c *hostCache) get(k cacheKey) (*cacheEntry, bool) {
	e, ok := c.found.get(k)
	if !ok {
		e, ok = c.missing.get(k)
	}
	if !ok {
		return nil, false
	}
	if !c.now().Before(e.expires) {
		c.found.remove(k)
		c.missing.remove(k)
		return nil, false
	}
	return e, true
}

// put stores an answer; t is nil for a negative one.
func (c *hostCache) put(k cacheKey, t *Tenant) {
	e := &cacheEntry{key: k, tenant: t, expires: c.now().Add(c.ttl)}
	if t == nil {
		c.found.remove(k)
		c.missing.put(e)
		return
	}
	c.missing.remove(k)
	c.found.put(e)
}

func (c *hostCache) clear() {
	c.found.clear()
	c.missing.clear()
}

func (c *hostCache) len() int { return c.found.len() + c.missing.len() }
