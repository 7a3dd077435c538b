package tenancy

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSlots(t *testing.T) {
	t.Parallel()
	s := newSlots(2, 20*time.Millisecond)
	ctx := context.Background()

	r1, held, err := s.acquire(ctx, "a")
	require.NoError(t, err)
	require.Equal(t, 1, held)
	r2, held, err := s.acquire(ctx, "a")
	require.NoError(t, err)
	require.Equal(t, 2, held)

	_, _, err = s.acquire(ctx, "a")
	require.ErrorIs(t, err, ErrTenantBusy)

	// Another tenant is not affected by a's share being used up.
	rb, held, err := s.acquire(ctx, "b")
	require.NoError(t, err)
	require.Equal(t, 1, held)
	rb()

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, _, err = s.acquire(cancelled, "a")
	require.ErrorIs(t, err, context.Canceled)

	r1()
	r3, _, err := s.acquire(ctx, "a")
	require.NoError(t, err)
	r2()
	r3()
	require.Empty(t, s.tenants, "idle tenants must not keep state")
}
