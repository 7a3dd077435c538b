package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/xatlabs/xat/internal/postgres"
)

func TestAudit(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	tenantID := randomID()
	u := newUser(t, f.store)

	err := f.store.Audit(ctx, postgres.AuditEvent{
		Kind:       postgres.AuditLoginFailure,
		TenantID:   &tenantID,
		UserID:     &u.ID,
		Actor:      u.Email,
		Host:       "acme.example",
		ClientAddr: "192.0.2.1",
		Detail:     map[string]any{"reason": "wrong password", "attempt": 3},
	})
	require.NoError(t, err)

	events, next, err := f.store.AuditEvents(ctx, postgres.AuditFilter{TenantID: &tenantID}, postgres.Page{})
	require.NoError(t, err)
	require.Empty(t, next)
	require.Len(t, events, 1)
	e := events[0]
	require.NotZero(t, e.ID)
	require.WithinDuration(t, time.Now(), e.At, time.Minute)
	require.Equal(t, postgres.AuditLoginFailure, e.Kind)
	require.Equal(t, tenantID, *e.TenantID)
	require.Equal(t, u.ID, *e.UserID)
	require.Equal(t, u.Email, e.Actor)
	require.Equal(t, "acme.example", e.Host)
	require.Equal(t, "192.0.2.1", e.ClientAddr)
	require.Equal(t, map[string]any{"reason": "wrong password", "attempt": float64(3)}, e.Detail)

	// The minimum: a kind. No tenant, no user, no detail.
	require.NoError(t, f.store.Audit(ctx, postgres.AuditEvent{Kind: postgres.AuditLogout}))

	require.ErrorIs(t, f.store.Audit(ctx, postgres.AuditEvent{}), postgres.ErrInvalidInput)
	err = f.store.Audit(ctx, postgres.AuditEvent{Kind: "x", Detail: map[string]any{"bad": make(chan int)}})
	require.Error(t, err)
}

func TestAuditEventsFilters(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	tenantA, tenantB := randomID(), randomID()

	add := func(kind string, tenant int64) {
		t.Helper()
		require.NoError(t, f.store.Audit(ctx, postgres.AuditEvent{Kind: kind, TenantID: &tenant}))
	}
	add(postgres.AuditLoginSuccess, tenantA)
	add(postgres.AuditLoginFailure, tenantA)
	add(postgres.AuditLoginFailure, tenantB)
	add(postgres.AuditMemberAdded, tenantA)

	kinds := func(filter postgres.AuditFilter) []string {
		t.Helper()
		events, _, err := f.store.AuditEvents(ctx, filter, postgres.Page{Limit: postgres.MaxLimit})
		require.NoError(t, err)
		var out []string
		for _, e := range events {
			out = append(out, e.Kind)
		}
		return out
	}

	// Newest first.
	require.Equal(t, []string{postgres.AuditMemberAdded, postgres.AuditLoginFailure, postgres.AuditLoginSuccess},
		kinds(postgres.AuditFilter{TenantID: &tenantA}))
	require.Equal(t, []string{postgres.AuditLoginFailure},
		kinds(postgres.AuditFilter{TenantID: &tenantA, Kind: postgres.AuditLoginFailure}))
	require.Equal(t, []string{postgres.AuditLoginFailure},
		kinds(postgres.AuditFilter{TenantID: &tenantB}))
	require.Empty(t, kinds(postgres.AuditFilter{TenantID: &tenantB, Kind: postgres.AuditMemberAdded}))

	// The kind filter alone spans partners; ours are among the results.
	events, _, err := f.store.AuditEvents(ctx,
		postgres.AuditFilter{Kind: postgres.AuditLoginFailure},
		postgres.Page{Limit: postgres.MaxLimit})
	require.NoError(t, err)
	tenants := map[int64]bool{}
	for _, e := range events {
		require.Equal(t, postgres.AuditLoginFailure, e.Kind)
		if e.TenantID != nil {
			tenants[*e.TenantID] = true
		}
	}
	require.True(t, tenants[tenantA] && tenants[tenantB])

	// Time window: Since is inclusive, Until exclusive.
	all, _, err := f.store.AuditEvents(ctx, postgres.AuditFilter{TenantID: &tenantA}, postgres.Page{})
	require.NoError(t, err)
	newest, oldest := all[0].At, all[len(all)-1].At
	require.Len(t, kinds(postgres.AuditFilter{TenantID: &tenantA, Since: &oldest}), 3)
	require.Len(t, kinds(postgres.AuditFilter{TenantID: &tenantA, Until: &oldest}), 0)
	require.Len(t, kinds(postgres.AuditFilter{TenantID: &tenantA, Since: &newest}), 1)
	later := newest.Add(time.Microsecond)
	require.Len(t, kinds(postgres.AuditFilter{TenantID: &tenantA, Until: &later}), 3)
	require.Empty(t, kinds(postgres.AuditFilter{TenantID: &tenantA, Since: &later}))
}

func TestAuditEventsPagination(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	tenantID := randomID()
	var want []int64
	for range 7 {
		require.NoError(t, f.store.Audit(ctx, postgres.AuditEvent{Kind: postgres.AuditTokenCreated, TenantID: &tenantID}))
	}
	all, _, err := f.store.AuditEvents(ctx, postgres.AuditFilter{TenantID: &tenantID}, postgres.Page{})
	require.NoError(t, err)
	require.Len(t, all, 7)
	for _, e := range all {
		want = append(want, e.ID)
	}

	var got []int64
	page := postgres.Page{Limit: 3}
	for i := 0; ; i++ {
		events, next, err := f.store.AuditEvents(ctx, postgres.AuditFilter{TenantID: &tenantID}, page)
		require.NoError(t, err)
		for _, e := range events {
			got = append(got, e.ID)
		}
		if next == "" {
			require.Equal(t, 2, i)
			break
		}
		// Newer events do not disturb a walk in progress.
		require.NoError(t, f.store.Audit(ctx, postgres.AuditEvent{Kind: postgres.AuditTokenRevoked, TenantID: &tenantID}))
		page.After = next
	}
	require.Equal(t, want, got)

	_, _, err = f.store.AuditEvents(ctx, postgres.AuditFilter{}, postgres.Page{After: "%%%"})
	require.ErrorIs(t, err, postgres.ErrBadCursor)
	_, _, err = f.store.AuditEvents(ctx, postgres.AuditFilter{}, postgres.Page{Limit: 1000})
	require.ErrorIs(t, err, postgres.ErrBadLimit)
}
