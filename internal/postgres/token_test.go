package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/xatlabs/xat/internal/auth"
	"github.com/xatlabs/xat/internal/postgres"
)

func TestCreateToken(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	u := newUser(t, f.store)
	_, hash := auth.NewToken(auth.KindPersonal)
	expires := time.Now().Add(time.Hour).Truncate(time.Microsecond)

	tok, err := f.store.CreateToken(ctx, u.ID, f.tenant.ID, "  laptop ", hash, &expires)
	require.NoError(t, err)
	require.Equal(t, "laptop", tok.Name)
	require.Equal(t, u.ID, tok.UserID)
	require.Equal(t, f.tenant.ID, tok.TenantID)
	require.True(t, expires.Equal(*tok.ExpiresAt))
	require.Nil(t, tok.LastUsedAt)
	require.False(t, tok.Revoked())
	require.False(t, tok.Expired(time.Now()))
	require.True(t, tok.Expired(expires))

	// Without expiry, it never expires.
	_, hash2 := auth.NewToken(auth.KindPersonal)
	tok2, err := f.store.CreateToken(ctx, u.ID, f.tenant.ID, "", hash2, nil)
	require.NoError(t, err)
	require.False(t, tok2.Expired(time.Now().AddDate(100, 0, 0)))

	_, err = f.store.CreateToken(ctx, u.ID, f.tenant.ID, "again", hash, nil)
	require.ErrorIs(t, err, postgres.ErrConflict)

	_, fresh := auth.NewToken(auth.KindPersonal)
	past := time.Now().Add(-time.Second)
	bad := []struct {
		name    string
		hash    []byte
		expires *time.Time
	}{
		{string(make([]byte, 101)), fresh, nil},
		{"\xff", fresh, nil},
		{"short hash", fresh[:16], nil},
		{"past", fresh, &past},
	}
	for _, b := range bad {
		_, err := f.store.CreateToken(ctx, u.ID, f.tenant.ID, b.name, b.hash, b.expires)
		require.ErrorIs(t, err, postgres.ErrInvalidInput, b.name)
	}
	_, err = f.store.CreateToken(ctx, -1, f.tenant.ID, "", fresh, nil)
	require.ErrorIs(t, err, postgres.ErrNotFound)
	_, err = f.store.CreateToken(ctx, u.ID, -1, "", fresh, nil)
	require.ErrorIs(t, err, postgres.ErrNotFound)
}

// tokenByHash returns the token that hash names, or the lookup's error.
func tokenByHash(ctx context.Context, s *postgres.Store, hash []byte) (*postgres.APIToken, error) {
	acc, err := s.TokenAccessByHash(ctx, hash)
	if err != nil {
		return nil, err
	}
	return acc.Token, nil
}

func TestTokenAccess(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	u := memberOfTwo(t, f, postgres.RoleMember, postgres.RoleAdmin)
	plain, hash := auth.NewToken(auth.KindPersonal)
	created, err := f.store.CreateToken(ctx, u.ID, f.tenant.ID, "ci", hash, nil)
	require.NoError(t, err)

	acc, err := f.store.TokenAccessByHash(ctx, auth.HashToken(plain))
	require.NoError(t, err)
	require.Equal(t, created, acc.Token)
	require.Equal(t, u, acc.User)
	require.Equal(t, postgres.RoleMember, acc.Role, "the role on the token's partner, not another")
	tok := acc.Token

	// A user no longer a member, or disabled, is returned as such.
	expel(t, f, u)
	acc, err = f.store.TokenAccessByHash(ctx, hash)
	require.NoError(t, err)
	require.Empty(t, acc.Role)
	require.NotNil(t, acc.User.DisabledAt)

	unknown, _ := auth.NewToken(auth.KindPersonal)
	_, err = tokenByHash(ctx, f.store, auth.HashToken(unknown))
	require.ErrorIs(t, err, postgres.ErrNotFound)

	// Revoked and expired tokens are found, and say so.
	require.NoError(t, f.store.RevokeToken(ctx, u.ID, f.tenant.ID, tok.ID))
	tok, err = tokenByHash(ctx, f.store, hash)
	require.NoError(t, err)
	require.True(t, tok.Revoked())

	_, hash2 := auth.NewToken(auth.KindPersonal)
	soon := time.Now().Add(time.Hour)
	tok2, err := f.store.CreateToken(ctx, u.ID, f.tenant.ID, "old", hash2, &soon)
	require.NoError(t, err)
	adminExec(t, f.db, "UPDATE public.api_tokens SET expires_at = now() - interval '1 second' WHERE id = $1", tok2.ID)
	tok2, err = tokenByHash(ctx, f.store, hash2)
	require.NoError(t, err)
	require.True(t, tok2.Expired(time.Now()))
	require.False(t, tok2.Revoked())
}

func TestTouchToken(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	u := newUser(t, f.store)
	_, hash := auth.NewToken(auth.KindPersonal)
	tok, err := f.store.CreateToken(ctx, u.ID, f.tenant.ID, "", hash, nil)
	require.NoError(t, err)

	require.NoError(t, f.store.TouchToken(ctx, tok.ID))
	tok, err = tokenByHash(ctx, f.store, hash)
	require.NoError(t, err)
	require.NotNil(t, tok.LastUsedAt)
	first := *tok.LastUsedAt

	// Within the minute, a touch writes nothing.
	require.NoError(t, f.store.TouchToken(ctx, tok.ID))
	tok, err = tokenByHash(ctx, f.store, hash)
	require.NoError(t, err)
	require.Equal(t, first, *tok.LastUsedAt)

	// After it, the touch writes again.
	adminExec(t, f.db, "UPDATE public.api_tokens SET last_used_at = now() - interval '2 minutes' WHERE id = $1", tok.ID)
	require.NoError(t, f.store.TouchToken(ctx, tok.ID))
	tok, err = tokenByHash(ctx, f.store, hash)
	require.NoError(t, err)
	require.False(t, tok.LastUsedAt.Before(first))

	// An unknown token is no error: there is nothing to record.
	require.NoError(t, f.store.TouchToken(ctx, -1))
}

func TestTokens(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	u := newUser(t, f.store)
	someoneElse := newUser(t, f.store)
	other := newTenant(t, f.db)

	var ids []int64
	for _, name := range []string{"one", "two"} {
		_, hash := auth.NewToken(auth.KindPersonal)
		tok, err := f.store.CreateToken(ctx, u.ID, f.tenant.ID, name, hash, nil)
		require.NoError(t, err)
		ids = append(ids, tok.ID)
	}
	for _, owner := range []struct{ user, tenant int64 }{{someoneElse.ID, f.tenant.ID}, {u.ID, other.ID}} {
		_, hash := auth.NewToken(auth.KindPersonal)
		_, err := f.store.CreateToken(ctx, owner.user, owner.tenant, "not listed", hash, nil)
		require.NoError(t, err)
	}

	toks, err := f.store.Tokens(ctx, u.ID, f.tenant.ID)
	require.NoError(t, err)
	require.Len(t, toks, 2)
	require.Equal(t, []int64{ids[1], ids[0]}, []int64{toks[0].ID, toks[1].ID}, "newest first")
	require.Equal(t, "two", toks[0].Name)

	toks, err = f.store.Tokens(ctx, newUser(t, f.store).ID, f.tenant.ID)
	require.NoError(t, err)
	require.Empty(t, toks)
}

func TestRevokeToken(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	u := newUser(t, f.store)
	intruder := newUser(t, f.store)
	other := newTenant(t, f.db)
	_, hash := auth.NewToken(auth.KindPersonal)
	tok, err := f.store.CreateToken(ctx, u.ID, f.tenant.ID, "", hash, nil)
	require.NoError(t, err)

	// Another user, or the same user on another partner, cannot revoke
	// it, and cannot tell it exists.
	require.ErrorIs(t, f.store.RevokeToken(ctx, intruder.ID, f.tenant.ID, tok.ID), postgres.ErrNotFound)
	require.ErrorIs(t, f.store.RevokeToken(ctx, u.ID, other.ID, tok.ID), postgres.ErrNotFound)
	require.ErrorIs(t, f.store.RevokeToken(ctx, u.ID, f.tenant.ID, -1), postgres.ErrNotFound)
	got, err := tokenByHash(ctx, f.store, hash)
	require.NoError(t, err)
	require.False(t, got.Revoked())

	require.NoError(t, f.store.RevokeToken(ctx, u.ID, f.tenant.ID, tok.ID))
	got, err = tokenByHash(ctx, f.store, hash)
	require.NoError(t, err)
	require.True(t, got.Revoked())
	revokedAt := *got.RevokedAt

	// Again: no error, first time kept.
	require.NoError(t, f.store.RevokeToken(ctx, u.ID, f.tenant.ID, tok.ID))
	got, err = tokenByHash(ctx, f.store, hash)
	require.NoError(t, err)
	require.Equal(t, revokedAt, *got.RevokedAt)
}
