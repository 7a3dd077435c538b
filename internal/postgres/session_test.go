package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/xatlabs/xat/internal/auth"
	"github.com/xatlabs/xat/internal/postgres"
	"github.com/xatlabs/xat/tenancy/tenancytest"
)

func TestSessions(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	u := newUser(t, f.store)
	expires := time.Now().Add(time.Hour).Truncate(time.Microsecond)

	// Bound to a partner.
	plain, hash := auth.NewToken(auth.KindSession)
	require.NoError(t, f.store.CreateSession(ctx, hash, u.ID, &f.tenant.ID, expires, "192.0.2.7"))
	s, err := f.store.SessionByHash(ctx, auth.HashToken(plain))
	require.NoError(t, err)
	require.Equal(t, u.ID, s.UserID)
	require.Equal(t, f.tenant.ID, *s.TenantID)
	require.True(t, expires.Equal(s.ExpiresAt))
	require.Equal(t, "192.0.2.7", s.ClientAddr)

	// On a public host.
	_, pubHash := auth.NewToken(auth.KindSession)
	require.NoError(t, f.store.CreateSession(ctx, pubHash, u.ID, nil, expires, ""))
	s, err = f.store.SessionByHash(ctx, pubHash)
	require.NoError(t, err)
	require.Nil(t, s.TenantID)

	require.ErrorIs(t, f.store.CreateSession(ctx, hash, u.ID, nil, expires, ""), postgres.ErrConflict)
	_, fresh := auth.NewToken(auth.KindSession)
	require.ErrorIs(t, f.store.CreateSession(ctx, fresh, -1, nil, expires, ""), postgres.ErrNotFound)
	require.ErrorIs(t, f.store.CreateSession(ctx, fresh, u.ID, ptr(int64(-1)), expires, ""), postgres.ErrNotFound)
	require.ErrorIs(t, f.store.CreateSession(ctx, fresh[:8], u.ID, nil, expires, ""), postgres.ErrInvalidInput)

	_, unknown := auth.NewToken(auth.KindSession)
	_, err = f.store.SessionByHash(ctx, unknown)
	require.ErrorIs(t, err, postgres.ErrNotFound)

	// Logout, twice.
	require.NoError(t, f.store.DeleteSession(ctx, hash))
	_, err = f.store.SessionByHash(ctx, hash)
	require.ErrorIs(t, err, postgres.ErrNotFound)
	require.NoError(t, f.store.DeleteSession(ctx, hash))
}

func TestExpiredSession(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	u := newUser(t, f.store)

	_, expired := auth.NewToken(auth.KindSession)
	require.NoError(t, f.store.CreateSession(ctx, expired, u.ID, nil, time.Now().Add(-time.Second), ""))
	_, live := auth.NewToken(auth.KindSession)
	require.NoError(t, f.store.CreateSession(ctx, live, u.ID, nil, time.Now().Add(time.Hour), ""))

	_, err := f.store.SessionByHash(ctx, expired)
	require.ErrorIs(t, err, postgres.ErrNotFound)

	// A touch does not revive it.
	adminExec(t, f.db, "UPDATE public.sessions SET last_seen_at = now() - interval '1 hour' WHERE id_hash = $1", expired)
	require.NoError(t, f.store.TouchSession(ctx, expired, time.Hour, week))
	_, err = f.store.SessionByHash(ctx, expired)
	require.ErrorIs(t, err, postgres.ErrNotFound)

	// Housekeeping removes it and keeps the live one. Other tests' expired
	// sessions may go in the same sweep.
	n, err := f.store.DeleteExpiredSessions(ctx)
	require.NoError(t, err)
	require.GreaterOrEqual(t, n, int64(1))
	_, err = f.store.SessionByHash(ctx, live)
	require.NoError(t, err)
	var left int
	err = tenancytest.AdminConn(t, f.db).
		QueryRow(ctx, "SELECT count(*) FROM public.sessions WHERE id_hash = $1", expired).
		Scan(&left)
	require.NoError(t, err)
	require.Zero(t, left)
}

// newSession stores a session of a new user on the public hosts, expiring
// after ttl, and returns the fixture and the session's id hash.
func newSession(t *testing.T, ttl time.Duration) (*fixture, []byte) {
	t.Helper()
	f := setup(t)
	_, hash := auth.NewToken(auth.KindSession)
	u := newUser(t, f.store)
	require.NoError(t, f.store.CreateSession(context.Background(), hash, u.ID, nil, time.Now().Add(ttl), ""))
	return f, hash
}

func TestTouchSession(t *testing.T) {
	t.Parallel()
	f, hash := newSession(t, time.Minute)
	ctx := context.Background()
	before, err := f.store.SessionByHash(ctx, hash)
	require.NoError(t, err)

	// Within a minute of the last activity, nothing is written.
	require.NoError(t, f.store.TouchSession(ctx, hash, 12*time.Hour, week))
	s, err := f.store.SessionByHash(ctx, hash)
	require.NoError(t, err)
	require.Equal(t, before, s)

	// Later, the expiry slides to idle from now.
	adminExec(t, f.db, "UPDATE public.sessions SET last_seen_at = now() - interval '5 minutes' WHERE id_hash = $1", hash)
	require.NoError(t, f.store.TouchSession(ctx, hash, 12*time.Hour, week))
	s, err = f.store.SessionByHash(ctx, hash)
	require.NoError(t, err)
	require.WithinDuration(t, time.Now().Add(12*time.Hour), s.ExpiresAt, time.Minute)
	require.WithinDuration(t, time.Now(), s.LastSeenAt, time.Minute)

	// A shorter idle period never pulls the expiry back.
	adminExec(t, f.db, "UPDATE public.sessions SET last_seen_at = now() - interval '5 minutes' WHERE id_hash = $1", hash)
	require.NoError(t, f.store.TouchSession(ctx, hash, time.Minute, week))
	s2, err := f.store.SessionByHash(ctx, hash)
	require.NoError(t, err)
	require.Equal(t, s.ExpiresAt, s2.ExpiresAt)
}

const week = 7 * 24 * time.Hour

// TestSessionMaxAge: however often a session is used, it ends its maximum
// age after it was created.
func TestSessionMaxAge(t *testing.T) {
	t.Parallel()
	f, hash := newSession(t, time.Hour)
	ctx := context.Background()

	// Created 6 days 23 hours ago and used: the expiry slides to the
	// seventh day, not 12 hours on.
	adminExec(t, f.db, `UPDATE public.sessions SET created_at = now() - interval '6 days 23 hours',
		last_seen_at = now() - interval '5 minutes' WHERE id_hash = $1`, hash)
	require.NoError(t, f.store.TouchSession(ctx, hash, 12*time.Hour, week))
	s, err := f.store.SessionByHash(ctx, hash)
	require.NoError(t, err)
	require.WithinDuration(t, s.CreatedAt.Add(week), s.ExpiresAt, time.Second)
	require.WithinDuration(t, time.Now().Add(time.Hour), s.ExpiresAt, time.Minute)

	// Past its maximum age, use no longer keeps it: once the expiry
	// passes, it is gone.
	adminExec(t, f.db, `UPDATE public.sessions SET created_at = now() - interval '8 days',
		expires_at = now() + interval '1 second', last_seen_at = now() - interval '5 minutes' WHERE id_hash = $1`, hash)
	require.NoError(t, f.store.TouchSession(ctx, hash, 12*time.Hour, week))
	s, err = f.store.SessionByHash(ctx, hash)
	require.NoError(t, err)
	require.WithinDuration(t, time.Now().Add(time.Second), s.ExpiresAt, 2*time.Second, "not extended")
}

func TestDeleteUserSessions(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	u := newUser(t, f.store)
	keep := newUser(t, f.store)
	var hashes [][]byte
	for _, owner := range []int64{u.ID, u.ID, keep.ID} {
		_, hash := auth.NewToken(auth.KindSession)
		require.NoError(t, f.store.CreateSession(ctx, hash, owner, nil, time.Now().Add(time.Hour), ""))
		hashes = append(hashes, hash)
	}

	n, err := f.store.DeleteUserSessions(ctx, u.ID)
	require.NoError(t, err)
	require.Equal(t, int64(2), n)
	_, err = f.store.SessionByHash(ctx, hashes[0])
	require.ErrorIs(t, err, postgres.ErrNotFound)
	_, err = f.store.SessionByHash(ctx, hashes[2])
	require.NoError(t, err)
}

// TestSessionAccess: one lookup returns the session with its user and the
// user's role on the session's partner, and follows changes to either at
// once.
func TestSessionAccess(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	u := memberOfTwo(t, f, postgres.RoleAdmin, postgres.RoleMember)
	expires := time.Now().Add(time.Hour)

	_, hash := auth.NewToken(auth.KindSession)
	require.NoError(t, f.store.CreateSession(ctx, hash, u.ID, &f.tenant.ID, expires, "192.0.2.9"))
	acc, err := f.store.SessionAccessByHash(ctx, hash)
	require.NoError(t, err)
	require.Equal(t, f.tenant.ID, *acc.Session.TenantID)
	require.Equal(t, "192.0.2.9", acc.Session.ClientAddr)
	require.Equal(t, u, acc.User)
	require.Equal(t, postgres.RoleAdmin, acc.Role, "the role on the session's partner, not another")
	require.False(t, acc.Session.Idle(time.Now()))
	require.True(t, acc.Session.Idle(time.Now().Add(2*time.Minute)))

	// A public-host session has no role.
	_, pub := auth.NewToken(auth.KindSession)
	require.NoError(t, f.store.CreateSession(ctx, pub, u.ID, nil, expires, ""))
	acc, err = f.store.SessionAccessByHash(ctx, pub)
	require.NoError(t, err)
	require.Nil(t, acc.Session.TenantID)
	require.Empty(t, acc.Role)

	// Membership removed, account disabled: the next lookup says so.
	expel(t, f, u)
	acc, err = f.store.SessionAccessByHash(ctx, hash)
	require.NoError(t, err)
	require.Empty(t, acc.Role)
	require.NotNil(t, acc.User.DisabledAt)

	// Expired or unknown: not found.
	adminExec(t, f.db, "UPDATE public.sessions SET expires_at = now() - interval '1 second' WHERE id_hash = $1", hash)
	_, err = f.store.SessionAccessByHash(ctx, hash)
	require.ErrorIs(t, err, postgres.ErrNotFound)
	_, unknown := auth.NewToken(auth.KindSession)
	_, err = f.store.SessionAccessByHash(ctx, unknown)
	require.ErrorIs(t, err, postgres.ErrNotFound)
}
