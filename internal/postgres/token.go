package postgres

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
)

// APIToken is a personal API token: it acts for one user on one partner.
// Only the SHA-256 of the token is stored, and it is never read back out.
type APIToken struct {
	ID         int64      `json:"id"`
	UserID     int64      `json:"user_id"`
	TenantID   int64      `json:"tenant_id"`
	Name       string     `json:"name"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
}

// Revoked reports whether the token was revoked.
func (t *APIToken) Revoked() bool { return t.RevokedAt != nil }

// Expired reports whether the token had expired at now. A token without
// an expiry never expires.
func (t *APIToken) Expired(now time.Time) bool {
	return t.ExpiresAt != nil && !now.Before(*t.ExpiresAt)
}

// maxTokenName is the longest token name, in characters.
const maxTokenName = 100

const tokenColumns = `id, user_id, tenant_id, name, created_at, last_used_at, expires_at, revoked_at`

func scanToken(row pgx.CollectableRow) (*APIToken, error) {
	var t APIToken
	err := row.Scan(&t.ID, &t.UserID, &t.TenantID, &t.Name,
		&t.CreatedAt, &t.LastUsedAt, &t.ExpiresAt, &t.RevokedAt)
	return &t, err
}

// CreateToken stores a new personal token of a user for one partner. hash
// is the token's SHA-256 (auth.HashToken); name is trimmed and may be
// empty, up to 100 characters; expiresAt, when set, must be in the future.
// The user must be a member of the partner at each use, which the caller
// checks; the store only records the binding. It returns an InputError for
// a bad argument, ErrNotFound when the user or partner does not exist and
// ErrConflict when the hash is already stored.
func (s *Store) CreateToken(
	ctx context.Context,
	userID, tenantID int64,
	name string,
	hash []byte,
	expiresAt *time.Time,
) (*APIToken, error) {
	name = strings.TrimSpace(name)
	var bad *InputError
	switch {
	case utf8.RuneCountInString(name) > maxTokenName || !utf8.ValidString(name):
		reason := fmt.Sprintf("must be valid text of at most %d characters", maxTokenName)
		bad = &InputError{Field: "name", Reason: reason}
	case len(hash) != sha256.Size:
		bad = &InputError{Field: "hash", Reason: "must be a SHA-256"}
	case expiresAt != nil && !expiresAt.After(time.Now()):
		bad = &InputError{Field: "expires_at", Reason: "must be in the future"}
	}
	if bad != nil {
		return nil, fmt.Errorf("create token for user %d: %w", userID, bad)
	}

	t, err := controlRow(ctx, s, scanToken, `
		INSERT INTO public.api_tokens (user_id, tenant_id, name, token_hash, expires_at)
		VALUES ($1, $2, $3, $4, $5)
		RETURNING `+tokenColumns,
		userID, tenantID, name, hash, expiresAt)
	if pg := pgError(err); pg != nil {
		switch pg.Code {
		case foreignKeyViolation:
			err = ErrNotFound
		case uniqueViolation:
			err = ErrConflict
		}
	}
	if err != nil {
		return nil, fmt.Errorf("create token for user %d in tenant %d: %w", userID, tenantID, err)
	}
	return t, nil
}

// TokenAccess is what a personal token proves in one lookup: the token,
// its user, and the user's role on the token's partner.
type TokenAccess struct {
	Token *APIToken
	User  *User
	Role  string // "" when the user is no longer a member of the partner
}

// TokenAccessByHash returns the token whose SHA-256 is hash, with its user
// and the user's role on the token's partner, in one statement, or
// ErrNotFound. Revoked and expired tokens and disabled users are returned
// too, so that the caller can say why a token is refused: it must check
// Revoked, Expired and DisabledAt, and that the request's partner is the
// token's TenantID.
func (s *Store) TokenAccessByHash(ctx context.Context, hash []byte) (*TokenAccess, error) {
	acc, err := controlRow(ctx, s, func(row pgx.CollectableRow) (*TokenAccess, error) {
		var t APIToken
		var u User
		a := &TokenAccess{Token: &t, User: &u}
		err := row.Scan(&t.ID, &t.UserID, &t.TenantID, &t.Name, &t.CreatedAt, &t.LastUsedAt, &t.ExpiresAt, &t.RevokedAt,
			&u.ID, &u.Email, &u.IsPlatformAdmin, &u.CreatedAt, &u.DisabledAt, &a.Role)
		return a, err
	}, `
		SELECT t.id, t.user_id, t.tenant_id, t.name, t.created_at, t.last_used_at, t.expires_at, t.revoked_at,
		       u.id, u.email, u.is_platform_admin, u.created_at, u.disabled_at,
		       coalesce(m.role, '')
		FROM public.api_tokens t
		JOIN public.users u ON u.id = t.user_id
		LEFT JOIN public.memberships m ON m.user_id = t.user_id AND m.tenant_id = t.tenant_id
		WHERE t.token_hash = $1`, hash)
	if err != nil {
		return nil, fmt.Errorf("find token by hash: %w", err)
	}
	return acc, nil
}

// TouchToken records that a token was just used. It writes at most once a
// minute per token (a conditional update that matches nothing otherwise),
// so calling it on every request is cheap.
func (s *Store) TouchToken(ctx context.Context, id int64) error {
	_, err := controlExec(ctx, s, `
		UPDATE public.api_tokens SET last_used_at = now()
		WHERE id = $1
		  AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')`, id)
	if err != nil {
		return fmt.Errorf("touch token %d: %w", id, err)
	}
	return nil
}

// Tokens lists a user's tokens for one partner, newest first, revoked and
// expired ones included.
func (s *Store) Tokens(ctx context.Context, userID, tenantID int64) ([]*APIToken, error) {
	ts, err := controlRows(ctx, s, scanToken, `
		SELECT `+tokenColumns+`
		FROM public.api_tokens
		WHERE user_id = $1 AND tenant_id = $2
		ORDER BY id DESC`, userID, tenantID)
	if err != nil {
		return nil, fmt.Errorf("list tokens of user %d in tenant %d: %w", userID, tenantID, err)
	}
	return ts, nil
}

// RevokeToken revokes one of a user's tokens for a partner. Revoking a
// revoked token again succeeds and keeps the first revocation time. It
// returns ErrNotFound when the token does not exist or belongs to another
// user or partner.
func (s *Store) RevokeToken(ctx context.Context, userID, tenantID, id int64) error {
	n, err := controlExec(ctx, s, `
		UPDATE public.api_tokens SET revoked_at = coalesce(revoked_at, now())
		WHERE id = $1 AND user_id = $2 AND tenant_id = $3`, id, userID, tenantID)
	if err == nil && n == 0 {
		err = ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("revoke token %d: %w", id, err)
	}
	return nil
}
