package postgres_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/xatlabs/xat/internal/postgres"
)

func TestAddMember(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	u := newUser(t, f.store)

	require.NoError(t, f.store.AddMember(ctx, f.tenant.ID, u.ID, postgres.RoleMember))
	m, err := f.store.Membership(ctx, u.ID, f.tenant.ID)
	require.NoError(t, err)
	require.Equal(t, u.ID, m.UserID)
	require.Equal(t, f.tenant.ID, m.TenantID)
	require.Equal(t, postgres.RoleMember, m.Role)
	require.Equal(t, u.Email, m.Email)

	// Adding again changes the role.
	require.NoError(t, f.store.AddMember(ctx, f.tenant.ID, u.ID, postgres.RoleAdmin))
	m2, err := f.store.Membership(ctx, u.ID, f.tenant.ID)
	require.NoError(t, err)
	require.Equal(t, postgres.RoleAdmin, m2.Role)
	require.Equal(t, m.CreatedAt, m2.CreatedAt)

	require.ErrorIs(t, f.store.AddMember(ctx, f.tenant.ID, u.ID, "owner"), postgres.ErrInvalidRole)
	require.ErrorIs(t, f.store.AddMember(ctx, f.tenant.ID, -1, postgres.RoleMember), postgres.ErrNotFound)
	require.ErrorIs(t, f.store.AddMember(ctx, -1, u.ID, postgres.RoleMember), postgres.ErrNotFound)
}

func TestMembership(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	u := newUser(t, f.store)

	_, err := f.store.Membership(ctx, u.ID, f.tenant.ID)
	require.ErrorIs(t, err, postgres.ErrNotFound)

	err = f.store.AddMember(ctx, f.tenant.ID, u.ID, postgres.RoleMember)
	require.NoError(t, err)
	m, err := f.store.Membership(ctx, u.ID, f.tenant.ID)
	require.NoError(t, err)
	require.Equal(t, postgres.RoleMember, m.Role)

	// A membership of one partner says nothing about another.
	other := newTenant(t, f.db)
	_, err = f.store.Membership(ctx, u.ID, other.ID)
	require.ErrorIs(t, err, postgres.ErrNotFound)
}

func TestMembersPagination(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	var want []int64
	for i := range 5 {
		u := newUser(t, f.store)
		role := postgres.RoleMember
		if i == 0 {
			role = postgres.RoleAdmin
		}
		err := f.store.AddMember(ctx, f.tenant.ID, u.ID, role)
		require.NoError(t, err)
		want = append(want, u.ID)
	}
	// A member of another partner is not listed.
	other := newTenant(t, f.db)
	err := f.store.AddMember(ctx, other.ID, newUser(t, f.store).ID, postgres.RoleMember)
	require.NoError(t, err)

	var got []int64
	page := postgres.Page{Limit: 2}
	for i := 0; ; i++ {
		ms, next, err := f.store.Members(ctx, f.tenant.ID, page)
		require.NoError(t, err)
		for _, m := range ms {
			require.Equal(t, f.tenant.ID, m.TenantID)
			got = append(got, m.UserID)
		}
		if next == "" {
			require.Equal(t, 2, i, "five members in pages of two")
			break
		}
		page.After = next
	}
	require.Equal(t, want, got)

	_, _, err = f.store.Members(ctx, f.tenant.ID, postgres.Page{After: "nope"})
	require.ErrorIs(t, err, postgres.ErrBadCursor)
	_, _, err = f.store.Members(ctx, f.tenant.ID, postgres.Page{Limit: -3})
	require.ErrorIs(t, err, postgres.ErrBadLimit)
}

func TestRemoveMember(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	u := newUser(t, f.store)
	err := f.store.AddMember(ctx, f.tenant.ID, u.ID, postgres.RoleMember)
	require.NoError(t, err)

	require.NoError(t, f.store.RemoveMember(ctx, f.tenant.ID, u.ID))
	_, err = f.store.Membership(ctx, u.ID, f.tenant.ID)
	require.ErrorIs(t, err, postgres.ErrNotFound)
	require.ErrorIs(t, f.store.RemoveMember(ctx, f.tenant.ID, u.ID), postgres.ErrNotFound)
}

func TestMembershipsOfUser(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	u := newUser(t, f.store)
	other := newTenant(t, f.db)

	ms, err := f.store.MembershipsOfUser(ctx, u.ID)
	require.NoError(t, err)
	require.Empty(t, ms)

	err = f.store.AddMember(ctx, other.ID, u.ID, postgres.RoleAdmin)
	require.NoError(t, err)
	err = f.store.AddMember(ctx, f.tenant.ID, u.ID, postgres.RoleMember)
	require.NoError(t, err)

	ms, err = f.store.MembershipsOfUser(ctx, u.ID)
	require.NoError(t, err)
	require.Len(t, ms, 2)
	require.Less(t, ms[0].TenantID, ms[1].TenantID)
	roles := map[int64]string{ms[0].TenantID: ms[0].Role, ms[1].TenantID: ms[1].Role}
	require.Equal(t, map[int64]string{f.tenant.ID: postgres.RoleMember, other.ID: postgres.RoleAdmin}, roles)
}
