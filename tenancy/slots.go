package tenancy

import (
	"context"
	"sync"
	"time"
)

// slots caps the connections one tenant may hold at once. Each tenant with
// calls in flight has a counting semaphore; it disappears when the tenant's
// last call returns, so memory follows the number of busy tenants, not the
// number of tenants.
type slots struct {
	limit int
	wait  time.Duration

	mu      sync.Mutex
	tenants map[string]*tenantSlots
}

type tenantSlots struct {
	sem   chan struct{}
	users int // calls holding or waiting for a slot
}

func newSlots(limit int, wait time.Duration) *slots {
	return &slots{limit: limit, wait: wait, tenants: make(map[string]*tenantSlots)}
}

// acquire takes one of schema's slots and returns the function that gives it
// back, and how many slots the tenant holds with this one. It fails with
// ErrTenantBusy after s.wait, or with ctx's error.
func (s *slots) acquire(ctx context.Context, schema string) (func(), int, error) {
	s.mu.Lock()
	ts := s.tenants[schema]
	if ts == nil {
		ts = &tenantSlots{sem: make(chan struct{}, s.limit)}
		s.tenants[schema] = ts
	}
	ts.users++
	s.mu.Unlock()

	select {
	case ts.sem <- struct{}{}:
		return func() { <-ts.sem; s.leave(schema, ts) }, len(ts.sem), nil
	default:
	}

	timer := time.NewTimer(s.wait)
	defer timer.Stop()
	select {
	case ts.sem <- struct{}{}:
		return func() { <-ts.sem; s.leave(schema, ts) }, len(ts.sem), nil
	case <-timer.C:
		s.leave(schema, ts)
		return nil, 0, ErrTenantBusy
	case <-ctx.Done():
		s.leave(schema, ts)
		return nil, 0, ctx.Err()
	}
}

func (s *slots) leave(schema string, ts *tenantSlots) {
	s.mu.Lock()
	ts.users--
	if ts.users == 0 {
		delete(s.tenants, schema)
	}
	s.mu.Unlock()
}
