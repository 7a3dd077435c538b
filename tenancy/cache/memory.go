package cache

import (
	"container/list"
	"context"
	"sync"
	"time"
)

// MemoryConfig configures the in-process backend.
type MemoryConfig struct {
	// MaxEntries bounds the number of entries. Zero means 10,000.
	MaxEntries int

	// MaxBytes bounds the memory held, counted as the bytes of keys and
	// values plus a fixed overhead per entry. Zero means 64 MiB. A value
	// too large to fit alone is not stored.
	MaxBytes int64

	// Now is the clock used for expiry. Nil means time.Now.
	Now func() time.Time
}

const (
	defaultMaxEntries = 10_000
	defaultMaxBytes   = 64 << 20

	// entryOverhead approximates what an entry costs beyond its key and
	// value: list element, map slots, scope index.
	entryOverhead = 128
)

// NewMemory returns a Cache kept in this process: bounded, least recently
// used entries leave first, and expired entries are never returned. Each
// process has its own, so invalidation does not reach other instances;
// use Redis when several instances must agree.
func NewMemory(cfg MemoryConfig) *Cache {
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = defaultMaxEntries
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = defaultMaxBytes
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Cache{b: &memory{
		cfg:    cfg,
		items:  make(map[memKey]*list.Element),
		scopes: make(map[string]map[string]struct{}),
	}}
}

type memKey struct {
	scope string
	key   string
}

type memEntry struct {
	k       memKey
	value   []byte
	expires time.Time
}

func (e *memEntry) cost() int64 {
	return int64(len(e.k.scope)+len(e.k.key)+len(e.value)) + entryOverhead
}

// memory keeps entries in one LRU list and indexes their keys by scope, so
// that dropping a tenant frees its entries at once.
type memory struct {
	cfg MemoryConfig

	mu     sync.Mutex
	order  list.List // of *memEntry, most recently used first
	items  map[memKey]*list.Element
	scopes map[string]map[string]struct{} // scope name → keys
	bytes  int64
}

func (m *memory) get(_ context.Context, sc scope, key string) ([]byte, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()

	el, ok := m.items[memKey{sc.name, key}]
	if !ok {
		return nil, false, nil
	}
	e := el.Value.(*memEntry)
	if !m.cfg.Now().Before(e.expires) {
		m.remove(el)
		return nil, false, nil
	}
	m.order.MoveToFront(el)
	return append([]byte(nil), e.value...), true, nil
}

func (m *memory) set(
	_ context.Context,
	sc scope,
	key string,
	value []byte,
	ttl time.Duration,
) error {
	e := &memEntry{
		k:       memKey{sc.name, key},
		value:   append([]byte(nil), value...),
		expires: m.cfg.Now().Add(ttl),
	}

	m.mu.Lock()
	defer m.mu.Unlock()

	if el, ok := m.items[e.k]; ok {
		m.remove(el)
	}
	if e.cost() > m.cfg.MaxBytes {
		return nil
	}
	m.items[e.k] = m.order.PushFront(e)
	keys := m.scopes[e.k.scope]
	if keys == nil {
		keys = make(map[string]struct{})
		m.scopes[e.k.scope] = keys
	}
	keys[e.k.key] = struct{}{}
	m.bytes += e.cost()

	for m.order.Len() > m.cfg.MaxEntries || m.bytes > m.cfg.MaxBytes {
		m.remove(m.order.Back())
	}
	return nil
}

func (m *memory) del(_ context.Context, sc scope, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()

	if el, ok := m.items[memKey{sc.name, key}]; ok {
		m.remove(el)
	}
	return nil
}

func (m *memory) dropScope(_ context.Context, sc scope) error {
	m.mu.Lock()
	defer m.mu.Unlock()

	for key := range m.scopes[sc.name] {
		m.remove(m.items[memKey{sc.name, key}])
	}
	return nil
}

// remove unlinks an entry everywhere; the caller holds mu.
func (m *memory) remove(el *list.Element) {
	e := el.Value.(*memEntry)
	m.order.Remove(el)
	delete(m.items, e.k)
	m.bytes -= e.cost()

	keys := m.scopes[e.k.scope]
	delete(keys, e.k.key)
	if len(keys) == 0 {
		delete(m.scopes, e.k.scope)
	}
}

func (m *memory) ping(context.Context) error { return nil }

func (m *memory) close() error { return nil }
