package auth

import (
	"container/list"
	"fmt"
	"sync"
	"time"
)

// Limiter limits how often something happens per key, such as login
// attempts per account and per client address. Each key may act limit
// times at once, then once every window/limit: over any long run that is
// limit actions per window, and a key that stays quiet for a whole window
// has its full allowance back. (This is the generic cell rate algorithm, a
// token bucket that keeps one timestamp per key.)
//
// Memory is bounded: at most maxKeys keys are tracked, and when a new key
// arrives at the limit the least recently seen one is forgotten, which
// forgives whatever it had used. Size maxKeys well above the number of
// keys expected to be active within one window. A Limiter is safe for
// concurrent use.
type Limiter struct {
	interval time.Duration // time one action costs: window / limit
	burst    time.Duration // how far ahead of now a key may run: window - interval
	maxKeys  int
	now      func() time.Time // replaced in tests

	mu    sync.Mutex
	keys  map[string]*list.Element
	order *list.List // of *limiterEntry, most recently seen first
}

type limiterEntry struct {
	key string
	// tat is when the key's allowance is fully restored, the theoretical
	// arrival time of the algorithm.
	tat time.Time
}

// NewLimiter returns a Limiter allowing limit actions per window for each
// of up to maxKeys keys. Non-positive arguments are a programming error
// and panic.
func NewLimiter(limit int, window time.Duration, maxKeys int) *Limiter {
	if limit <= 0 || window <= 0 || maxKeys <= 0 || window/time.Duration(limit) <= 0 {
		panic(fmt.Sprintf("auth: invalid limiter (limit %d, window %s, maxKeys %d)", limit, window, maxKeys))
	}
	interval := window / time.Duration(limit)
	return &Limiter{
		interval: interval,
		burst:    window - interval,
		maxKeys:  maxKeys,
		now:      time.Now,
		keys:     make(map[string]*list.Element),
		order:    list.New(),
	}
}

// Allow records one action for key and reports whether it is within the
// limit. When it is not, nothing is recorded and retryAfter says how long
// until the key may act again.
func (l *Limiter) Allow(key string) (ok bool, retryAfter time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()

	e := l.entry(key, now)
	tat := e.tat
	if tat.Before(now) {
		tat = now
	}
	if ahead := tat.Sub(now); ahead > l.burst {
		return false, ahead - l.burst
	}
	e.tat = tat.Add(l.interval)
	return true, 0
}

// entry returns key's entry, created when missing and moved to the front
// of the recency list. Creating one may evict the least recently seen key.
func (l *Limiter) entry(key string, now time.Time) *limiterEntry {
	if el, ok := l.keys[key]; ok {
		l.order.MoveToFront(el)
		return el.Value.(*limiterEntry)
	}
	if l.order.Len() >= l.maxKeys {
		oldest := l.order.Back()
		l.order.Remove(oldest)
		delete(l.keys, oldest.Value.(*limiterEntry).key)
	}
	e := &limiterEntry{key: key, tat: now}
	l.keys[key] = l.order.PushFront(e)
	return e
}

// Reset forgets key, restoring its full allowance, for example after a
// successful login.
func (l *Limiter) Reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if el, ok := l.keys[key]; ok {
		l.order.Remove(el)
		delete(l.keys, key)
	}
}

// Len returns the number of keys tracked, at most maxKeys.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.order.Len()
}
