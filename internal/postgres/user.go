package postgres

import (
	"context"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// User is an account. Users are shared by all partners; what a user may
// do on a partner comes from its Membership. The password hash is not
// part of User: only UserByEmail returns it, beside the user.
type User struct {
	ID              int64      `json:"id"`
	Email           string     `json:"email"`
	IsPlatformAdmin bool       `json:"is_platform_admin"`
	CreatedAt       time.Time  `json:"created_at"`
	DisabledAt      *time.Time `json:"disabled_at,omitempty"`
}

const userColumns = `id, email, is_platform_admin, created_at, disabled_at`

func scanUser(row pgx.CollectableRow) (*User, error) {
	var u User
	err := row.Scan(&u.ID, &u.Email, &u.IsPlatformAdmin, &u.CreatedAt, &u.DisabledAt)
	return &u, err
}

// NormalizeEmail returns an email address as accounts store it: trimmed
// and lowercased. Lookups by email apply it too.
func NormalizeEmail(email string) string {
	return strings.ToLower(strings.TrimSpace(email))
}

// ValidateEmail accepts a normalised, bare address (local@domain, no
// display name or angle brackets) of at most 254 bytes, and returns
// ErrInvalidEmail otherwise.
func ValidateEmail(email string) error {
	if len(email) < 3 || len(email) > 254 || email != NormalizeEmail(email) {
		return ErrInvalidEmail
	}
	a, err := mail.ParseAddress(email)
	if err != nil || a.Name != "" || a.Address != email {
		return ErrInvalidEmail
	}
	local, domain, _ := strings.Cut(email, "@")
	if len(local) > 64 || strings.HasPrefix(domain, "[") {
		return ErrInvalidEmail
	}
	return nil
}

// CreateUser creates an account. email is normalised (NormalizeEmail)
// and then must pass ValidateEmail; passwordHash is stored as given (see
// auth.Hasher) and must not be empty. It returns ErrInvalidEmail, an
// InputError for an empty hash, or ErrEmailTaken.
func (s *Store) CreateUser(ctx context.Context, email, passwordHash string, platformAdmin bool) (*User, error) {
	email = NormalizeEmail(email)
	if err := ValidateEmail(email); err != nil {
		return nil, fmt.Errorf("create user: %w", err)
	}
	if passwordHash == "" {
		return nil, fmt.Errorf("create user %s: %w", email, &InputError{Field: "password", Reason: "is required"})
	}

	u, err := controlRow(ctx, s, scanUser, `
		INSERT INTO public.users (email, password_hash, is_platform_admin)
		VALUES ($1, $2, $3)
		RETURNING `+userColumns,
		email, passwordHash, platformAdmin)
	if isViolation(err, uniqueViolation, "users_email") {
		err = ErrEmailTaken
	}
	if err != nil {
		return nil, fmt.Errorf("create user %s: %w", email, err)
	}
	return u, nil
}

// UserByEmail returns the user with the given email address (normalised
// first) and its password hash, for a login. Disabled users are returned
// too: the caller checks DisabledAt. It returns ErrNotFound when there is
// no such user.
func (s *Store) UserByEmail(ctx context.Context, email string) (*User, string, error) {
	type row struct {
		user *User
		hash string
	}
	r, err := controlRow(ctx, s, func(cr pgx.CollectableRow) (row, error) {
		var r row
		var u User
		err := cr.Scan(&u.ID, &u.Email, &u.IsPlatformAdmin, &u.CreatedAt, &u.DisabledAt, &r.hash)
		r.user = &u
		return r, err
	}, `SELECT `+userColumns+`, password_hash FROM public.users WHERE email = $1`, NormalizeEmail(email))
	if err != nil {
		return nil, "", fmt.Errorf("find user by email: %w", err)
	}
	return r.user, r.hash, nil
}

// UserByID returns the user with the given id, or ErrNotFound.
func (s *Store) UserByID(ctx context.Context, id int64) (*User, error) {
	u, err := controlRow(ctx, s, scanUser, `SELECT `+userColumns+` FROM public.users WHERE id = $1`, id)
	if err != nil {
		return nil, fmt.Errorf("get user %d: %w", id, err)
	}
	return u, nil
}

// Users lists every account, by id, one page at a time. It returns the
// next page's cursor, "" after the last page, and ErrBadCursor or
// ErrBadLimit for a bad page.
func (s *Store) Users(ctx context.Context, page Page) ([]*User, string, error) {
	limit, err := page.limit()
	if err != nil {
		return nil, "", fmt.Errorf("list users: %w", err)
	}
	after, err := parseIDCursor(page.After)
	if err != nil {
		return nil, "", fmt.Errorf("list users: %w", err)
	}

	users, err := controlRows(ctx, s, scanUser, `
		SELECT `+userColumns+`
		FROM public.users
		WHERE id > $1
		ORDER BY id
		LIMIT $2`, after, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("list users: %w", err)
	}
	users, next := cut(users, limit, func(u *User) string { return idCursor(u.ID) })
	return users, next, nil
}

// SetPlatformAdmin grants or withdraws platform administration. It returns
// ErrNotFound when there is no such user.
func (s *Store) SetPlatformAdmin(ctx context.Context, userID int64, admin bool) error {
	n, err := controlExec(ctx, s, `UPDATE public.users SET is_platform_admin = $2 WHERE id = $1`, userID, admin)
	if err == nil && n == 0 {
		err = ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("set platform admin of user %d: %w", userID, err)
	}
	return nil
}

// SetPassword replaces a user's password hash. It returns ErrNotFound when
// there is no such user. Existing sessions and tokens stay valid; callers
// that change a password after a compromise revoke them too.
func (s *Store) SetPassword(ctx context.Context, userID int64, passwordHash string) error {
	if passwordHash == "" {
		return fmt.Errorf("set password of user %d: %w", userID, &InputError{Field: "password", Reason: "is required"})
	}
	n, err := controlExec(ctx, s, `UPDATE public.users SET password_hash = $2 WHERE id = $1`, userID, passwordHash)
	if err == nil && n == 0 {
		err = ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("set password of user %d: %w", userID, err)
	}
	return nil
}
