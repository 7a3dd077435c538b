package postgres

import (
	"context"
	"crypto/sha256"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Session is a server-side login session. The session id itself lives only
// in the client's cookie; the store keys sessions by its SHA-256.
type Session struct {
	UserID     int64     `json:"user_id"`
	TenantID   *int64    `json:"tenant_id,omitempty"` // nil for a session on a public host
	CreatedAt  time.Time `json:"created_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	ClientAddr string    `json:"client_addr"`
}

const sessionColumns = `user_id, tenant_id, created_at, last_seen_at, expires_at, client_addr`

func scanSession(row pgx.CollectableRow) (*Session, error) {
	var s Session
	err := row.Scan(&s.UserID, &s.TenantID, &s.CreatedAt, &s.LastSeenAt, &s.ExpiresAt, &s.ClientAddr)
	return &s, err
}

func checkIDHash(idHash []byte) error {
	if len(idHash) != sha256.Size {
		return &InputError{Field: "session", Reason: "id hash must be a SHA-256"}
	}
	return nil
}

// CreateSession stores a new session of a user, bound to one partner
// (tenantID) or to the public hosts (nil). idHash is the SHA-256 of the
// session id (auth.HashToken). It returns ErrNotFound when the user or
// partner does not exist and ErrConflict when the hash is already stored.
func (s *Store) CreateSession(
	ctx context.Context,
	idHash []byte,
	userID int64,
	tenantID *int64,
	expiresAt time.Time,
	clientAddr string,
) error {
	if err := checkIDHash(idHash); err != nil {
		return fmt.Errorf("create session for user %d: %w", userID, err)
	}
	_, err := controlExec(ctx, s, `
		INSERT INTO public.sessions (id_hash, user_id, tenant_id, expires_at, client_addr)
		VALUES ($1, $2, $3, $4, $5)`,
		idHash, userID, tenantID, expiresAt, clientAddr)
	if pg := pgError(err); pg != nil {
		switch pg.Code {
		case foreignKeyViolation:
			err = ErrNotFound
		case uniqueViolation:
			err = ErrConflict
		}
	}
	if err != nil {
		return fmt.Errorf("create session for user %d: %w", userID, err)
	}
	return nil
}

// SessionByHash returns the live session whose id hashes to idHash. An
// expired session is ErrNotFound, like one that never existed.
func (s *Store) SessionByHash(ctx context.Context, idHash []byte) (*Session, error) {
	sess, err := controlRow(ctx, s, scanSession, `
		SELECT `+sessionColumns+`
		FROM public.sessions
		WHERE id_hash = $1 AND expires_at > now()`, idHash)
	if err != nil {
		return nil, fmt.Errorf("find session: %w", err)
	}
	return sess, nil
}

// SessionAccess is what a live session proves in one lookup: the session,
// its user, and the user's role on the partner the session is bound to.
type SessionAccess struct {
	Session *Session
	User    *User
	Role    string // "" for a session on a public host, or a user no longer a member
}

// SessionAccessByHash returns the live session whose id hashes to idHash
// with its user and the user's role on the session's partner, in one
// statement. An expired session is ErrNotFound, like one that never
// existed; a disabled user is returned as such, for the caller to refuse.
func (s *Store) SessionAccessByHash(ctx context.Context, idHash []byte) (*SessionAccess, error) {
	acc, err := controlRow(ctx, s, func(row pgx.CollectableRow) (*SessionAccess, error) {
		var sess Session
		var u User
		a := &SessionAccess{Session: &sess, User: &u}
		err := row.Scan(&sess.UserID, &sess.TenantID, &sess.CreatedAt, &sess.LastSeenAt, &sess.ExpiresAt, &sess.ClientAddr,
			&u.ID, &u.Email, &u.IsPlatformAdmin, &u.CreatedAt, &u.DisabledAt, &a.Role)
		return a, err
	}, `
		SELECT s.user_id, s.tenant_id, s.created_at, s.last_seen_at, s.expires_at, s.client_addr,
		       u.id, u.email, u.is_platform_admin, u.created_at, u.disabled_at,
		       coalesce(m.role, '')
		FROM public.sessions s
		JOIN public.users u ON u.id = s.user_id
		LEFT JOIN public.memberships m ON m.user_id = s.user_id AND m.tenant_id = s.tenant_id
		WHERE s.id_hash = $1 AND s.expires_at > now()`, idHash)
	if err != nil {
		return nil, fmt.Errorf("find session: %w", err)
	}
	return acc, nil
}

// sessionTouchEvery is how often at most TouchSession writes a session's
// activity.
const sessionTouchEvery = time.Minute

// Idle reports whether the session's last recorded activity is old enough
// for TouchSession to record a new one; callers skip the call otherwise.
func (s *Session) Idle(now time.Time) bool {
	return now.Sub(s.LastSeenAt) >= sessionTouchEvery
}

// TouchSession records activity on a live session and slides its expiry
// to idle from now, but never past maxAge after the session was created;
// an expiry already later stays. It writes at most once a minute per
// session (a conditional update that matches nothing otherwise), so
// calling it on every request is cheap. An expired or unknown session is
// left alone, without an error.
func (s *Store) TouchSession(ctx context.Context, idHash []byte, idle, maxAge time.Duration) error {
	_, err := controlExec(ctx, s, `
		UPDATE public.sessions
		SET last_seen_at = now(),
		    expires_at = greatest(expires_at, least(
		        now() + $2 * interval '1 microsecond',
		        created_at + $3 * interval '1 microsecond'))
		WHERE id_hash = $1
		  AND expires_at > now()
		  AND last_seen_at < now() - $4 * interval '1 microsecond'`,
		idHash, idle.Microseconds(), maxAge.Microseconds(), sessionTouchEvery.Microseconds())
	if err != nil {
		return fmt.Errorf("touch session: %w", err)
	}
	return nil
}

// DeleteSession ends a session, as at logout. Deleting a session that no
// longer exists succeeds, so that logging out twice is harmless.
func (s *Store) DeleteSession(ctx context.Context, idHash []byte) error {
	if _, err := controlExec(ctx, s, `DELETE FROM public.sessions WHERE id_hash = $1`, idHash); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// DeleteUserSessions ends every session of a user, for example after a
// password change or when the account is disabled, and returns how many
// there were.
func (s *Store) DeleteUserSessions(ctx context.Context, userID int64) (int64, error) {
	n, err := controlExec(ctx, s, `DELETE FROM public.sessions WHERE user_id = $1`, userID)
	if err != nil {
		return 0, fmt.Errorf("delete sessions of user %d: %w", userID, err)
	}
	return n, nil
}

// DeleteExpiredSessions removes every expired session and returns how many
// there were. Expired sessions are already refused, so this is only
// housekeeping, meant for a periodic job.
func (s *Store) DeleteExpiredSessions(ctx context.Context) (int64, error) {
	n, err := controlExec(ctx, s, `DELETE FROM public.sessions WHERE expires_at <= now()`)
	if err != nil {
		return 0, fmt.Errorf("delete expired sessions: %w", err)
	}
	return n, nil
}
