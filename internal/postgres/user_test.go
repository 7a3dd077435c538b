package postgres_test

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/xatlabs/xat/internal/auth"
	"github.com/xatlabs/xat/internal/postgres"
)

func TestCreateUser(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	email := uniqueEmail("Create")

	u, err := f.store.CreateUser(ctx, "  "+strings.ToUpper(email)+" ", testHash, true)
	require.NoError(t, err)
	require.Equal(t, strings.ToLower(email), u.Email)
	require.True(t, u.IsPlatformAdmin)
	require.NotZero(t, u.ID)
	require.False(t, u.CreatedAt.IsZero())
	require.Nil(t, u.DisabledAt)

	// The same address in another case is the same account.
	_, err = f.store.CreateUser(ctx, email, testHash, false)
	require.ErrorIs(t, err, postgres.ErrEmailTaken)

	_, err = f.store.CreateUser(ctx, uniqueEmail("nohash"), "", false)
	require.ErrorIs(t, err, postgres.ErrInvalidInput)
}

func TestValidateEmail(t *testing.T) {
	t.Parallel()
	tests := []struct {
		email string
		ok    bool
	}{
		{"a@b.example", true},
		{"first.last+tag@sub.example.com", true},
		{"root@localhost", true},
		{"", false},
		{"a@", false},
		{"@b.example", false},
		{"no-at-sign", false},
		{"two@@b.example", false},
		{"Name <a@b.example>", false},
		{"<a@b.example>", false},
		{"a b@c.example", false},
		{"Upper@b.example", false}, // not normalised
		{" a@b.example", false},
		{"a@[127.0.0.1]", false},
		{strings.Repeat("l", 65) + "@b.example", false},
		{"a@" + strings.Repeat("d", 250) + ".example", false},
	}
	for _, tt := range tests {
		err := postgres.ValidateEmail(tt.email)
		if tt.ok {
			require.NoError(t, err, tt.email)
			continue
		}
		require.ErrorIs(t, err, postgres.ErrInvalidEmail, tt.email)
		require.ErrorIs(t, err, postgres.ErrInvalidInput, tt.email)
	}

	// CreateUser normalises before validating, and refuses the rest.
	s := postgres.New(openDB(t, guards[0]))
	_, err := s.CreateUser(context.Background(), "Name <x@y.example>", testHash, false)
	require.ErrorIs(t, err, postgres.ErrInvalidEmail)
	var ie *postgres.InputError
	require.ErrorAs(t, err, &ie)
	require.Equal(t, "email", ie.Field)
}

func TestUserByEmail(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	hash, err := auth.TestHasher.Hash("the right password")
	require.NoError(t, err)
	created, err := f.store.CreateUser(ctx, uniqueEmail("login"), hash, false)
	require.NoError(t, err)

	u, gotHash, err := f.store.UserByEmail(ctx, " "+strings.ToUpper(created.Email))
	require.NoError(t, err)
	require.Equal(t, created, u)
	require.Equal(t, hash, gotHash)
	ok, err := auth.TestHasher.Verify(gotHash, "the right password")
	require.NoError(t, err)
	require.True(t, ok)

	_, _, err = f.store.UserByEmail(ctx, uniqueEmail("nobody"))
	require.ErrorIs(t, err, postgres.ErrNotFound)
}

func TestUserByID(t *testing.T) {
	t.Parallel()
	f := setup(t)
	created := newUser(t, f.store)

	u, err := f.store.UserByID(context.Background(), created.ID)
	require.NoError(t, err)
	require.Equal(t, created, u)

	_, err = f.store.UserByID(context.Background(), -1)
	require.ErrorIs(t, err, postgres.ErrNotFound)
}

func TestUsersPagination(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	mine := map[int64]bool{}
	for range 5 {
		mine[newUser(t, f.store).ID] = true
	}

	// Other tests add users concurrently: walk every page and check the
	// order, that nothing repeats and that all of ours appear.
	seen := map[int64]bool{}
	var last int64
	page := postgres.Page{Limit: 2}
	pages := 0
	for {
		users, next, err := f.store.Users(ctx, page)
		require.NoError(t, err)
		require.LessOrEqual(t, len(users), 2)
		for _, u := range users {
			require.Greater(t, u.ID, last)
			require.False(t, seen[u.ID])
			seen[u.ID], last = true, u.ID
		}
		pages++
		if next == "" {
			break
		}
		require.Len(t, users, 2, "only the last page may be short")
		page.After = next
	}
	for id := range mine {
		require.True(t, seen[id], "user %d missing", id)
	}
	require.GreaterOrEqual(t, pages, 3)

	// Default limit.
	users, _, err := f.store.Users(ctx, postgres.Page{})
	require.NoError(t, err)
	require.LessOrEqual(t, len(users), postgres.DefaultLimit)
}

func TestBadPage(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	enc := base64.RawURLEncoding.EncodeToString

	// A cursor of the audit list, whose key is of another kind.
	tenantID := randomID()
	for range 2 {
		require.NoError(t, f.store.Audit(ctx, postgres.AuditEvent{Kind: "test.page", TenantID: &tenantID}))
	}
	_, audit, err := f.store.AuditEvents(ctx, postgres.AuditFilter{TenantID: &tenantID}, postgres.Page{Limit: 1})
	require.NoError(t, err)
	require.NotEmpty(t, audit)

	for _, after := range []string{"garbage!", "!!", enc([]byte("i0")), enc([]byte("i-5")),
		enc([]byte("ix")), enc([]byte("i")), enc([]byte("7")), audit} {
		_, _, err := f.store.Users(ctx, postgres.Page{After: after})
		require.ErrorIs(t, err, postgres.ErrBadCursor, after)
		require.ErrorIs(t, err, postgres.ErrInvalidInput, after)
	}
	_, _, err = f.store.AuditEvents(ctx, postgres.AuditFilter{}, postgres.Page{After: enc([]byte("i5"))})
	require.ErrorIs(t, err, postgres.ErrBadCursor)

	for _, limit := range []int{-1, postgres.MaxLimit + 1} {
		_, _, err := f.store.Users(ctx, postgres.Page{Limit: limit})
		require.ErrorIs(t, err, postgres.ErrBadLimit)
		require.ErrorIs(t, err, postgres.ErrInvalidInput)
	}
	_, _, err = f.store.Users(ctx, postgres.Page{Limit: postgres.MaxLimit})
	require.NoError(t, err)
}

func TestSetPlatformAdmin(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	u := newUser(t, f.store)

	require.NoError(t, f.store.SetPlatformAdmin(ctx, u.ID, true))
	got, err := f.store.UserByID(ctx, u.ID)
	require.NoError(t, err)
	require.True(t, got.IsPlatformAdmin)

	require.NoError(t, f.store.SetPlatformAdmin(ctx, u.ID, false))
	got, err = f.store.UserByID(ctx, u.ID)
	require.NoError(t, err)
	require.False(t, got.IsPlatformAdmin)

	require.ErrorIs(t, f.store.SetPlatformAdmin(ctx, -1, true), postgres.ErrNotFound)
}

func TestSetPassword(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	u := newUser(t, f.store)
	hash, err := auth.TestHasher.Hash("a new password")
	require.NoError(t, err)

	require.NoError(t, f.store.SetPassword(ctx, u.ID, hash))
	_, got, err := f.store.UserByEmail(ctx, u.Email)
	require.NoError(t, err)
	require.Equal(t, hash, got)

	require.ErrorIs(t, f.store.SetPassword(ctx, u.ID, ""), postgres.ErrInvalidInput)
	require.ErrorIs(t, f.store.SetPassword(ctx, -1, hash), postgres.ErrNotFound)
}
