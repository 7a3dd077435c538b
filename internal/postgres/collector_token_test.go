package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/xatlabs/xat/internal/auth"
	"github.com/xatlabs/xat/internal/postgres"
	"github.com/xatlabs/xat/tenancy"
)

func TestCollectorTokens(t *testing.T) {
	t.Parallel()
	forGuards(t, func(t *testing.T, f *fixture) {
		owner := postgres.Actor{UserID: newUser(t, f.store).ID}
		other := postgres.Actor{UserID: newUser(t, f.store).ID}
		admin := postgres.Actor{UserID: other.UserID, Admin: true}
		c := newCollector(t, f, owner, "m")

		plain, hash := auth.NewToken(auth.KindCollector)
		tok, err := f.store.CreateCollectorToken(f.ctx, owner, c.ID, " agent ", hash)
		require.NoError(t, err)
		require.Equal(t, "agent", tok.Name)
		require.Equal(t, c.ID, tok.CollectorID)
		_, err = f.store.CreateCollectorToken(f.ctx, owner, c.ID, "", hash)
		require.ErrorIs(t, err, postgres.ErrConflict)

		// Tokens follow their collector's visibility.
		_, _, err = f.store.CollectorTokens(f.ctx, other, c.ID, postgres.Page{})
		require.ErrorIs(t, err, postgres.ErrNotFound)
		_, err = f.store.CreateCollectorToken(f.ctx, other, c.ID, "", randomBytes(32))
		require.ErrorIs(t, err, postgres.ErrNotFound)
		require.ErrorIs(t, f.store.RevokeCollectorToken(f.ctx, other, c.ID, tok.ID), postgres.ErrNotFound)
		ts, next, err := f.store.CollectorTokens(f.ctx, admin, c.ID, postgres.Page{})
		require.NoError(t, err)
		require.Equal(t, []*postgres.CollectorToken{tok}, ts)
		require.Empty(t, next)

		// Using the token records the use and the collector's contact.
		acc, err := f.store.UseCollectorToken(f.ctx, auth.HashToken(plain))
		require.NoError(t, err)
		require.Equal(t, &postgres.CollectorAccess{TokenID: tok.ID, CollectorID: c.ID, OwnerID: owner.UserID}, acc)
		seen, err := f.store.Collector(f.ctx, owner, c.ID)
		require.NoError(t, err)
		require.NotNil(t, seen.LastSeenAt)

		// Another partner holds no such token, whatever its ids.
		f2 := setupGuard(t, f.db.Config().Guard)
		_, err = f.store.UseCollectorToken(f2.ctx, auth.HashToken(plain))
		require.ErrorIs(t, err, postgres.ErrNotFound)

		// Revoked, it is unknown; revoking again keeps the first time.
		require.ErrorIs(t, f.store.RevokeCollectorToken(f.ctx, owner, c.ID+1, tok.ID), postgres.ErrNotFound)
		require.NoError(t, f.store.RevokeCollectorToken(f.ctx, owner, c.ID, tok.ID))
		_, err = f.store.UseCollectorToken(f.ctx, auth.HashToken(plain))
		require.ErrorIs(t, err, postgres.ErrNotFound)
		ts, _, err = f.store.CollectorTokens(f.ctx, owner, c.ID, postgres.Page{})
		require.NoError(t, err)
		first := ts[0].RevokedAt
		require.NotNil(t, first)
		require.NoError(t, f.store.RevokeCollectorToken(f.ctx, owner, c.ID, tok.ID))
		ts, _, err = f.store.CollectorTokens(f.ctx, owner, c.ID, postgres.Page{})
		require.NoError(t, err)
		require.Equal(t, first, ts[0].RevokedAt)

		// Bad input is refused before the database, and nothing runs
		// without a partner.
		for _, bad := range []struct {
			name string
			hash []byte
		}{{strings.Repeat("x", 101), randomBytes(32)}, {"\xff", randomBytes(32)}, {"", randomBytes(31)}} {
			_, err := f.store.CreateCollectorToken(f.ctx, owner, c.ID, bad.name, bad.hash)
			require.ErrorIs(t, err, postgres.ErrInvalidInput)
		}
		_, err = f.store.UseCollectorToken(context.Background(), auth.HashToken(plain))
		require.ErrorIs(t, err, tenancy.ErrNoTenant)
	})
}
