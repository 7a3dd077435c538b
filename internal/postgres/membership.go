package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Membership roles on a partner.
const (
	RoleAdmin  = "admin"  // sees and manages every row of the partner
	RoleMember = "member" // sees and manages the rows they own
)

// Membership says that a user belongs to a partner, and in which role.
// Email is the member's address, for listing.
type Membership struct {
	UserID    int64     `json:"user_id"`
	TenantID  int64     `json:"tenant_id"`
	Role      string    `json:"role"`
	Email     string    `json:"email"`
	CreatedAt time.Time `json:"created_at"`
}

// membershipSelect reads memberships m with their users u; callers add
// the WHERE clause.
const membershipSelect = `
	SELECT m.user_id, m.tenant_id, m.role, u.email, m.created_at
	FROM public.memberships m
	JOIN public.users u ON u.id = m.user_id`

func scanMembership(row pgx.CollectableRow) (*Membership, error) {
	var m Membership
	err := row.Scan(&m.UserID, &m.TenantID, &m.Role, &m.Email, &m.CreatedAt)
	return &m, err
}

// AddMember makes a user a member of a partner with the given role, or
// changes the role of an existing member. It returns ErrInvalidRole, or
// ErrNotFound when the user or the partner does not exist.
func (s *Store) AddMember(ctx context.Context, tenantID, userID int64, role string) error {
	if role != RoleAdmin && role != RoleMember {
		return fmt.Errorf("add user %d to tenant %d: %w", userID, tenantID, ErrInvalidRole)
	}
	_, err := controlExec(ctx, s, `
		INSERT INTO public.memberships (user_id, tenant_id, role)
		VALUES ($1, $2, $3)
		ON CONFLICT (user_id, tenant_id) DO UPDATE SET role = excluded.role`,
		userID, tenantID, role)
	if pg := pgError(err); pg != nil && pg.Code == foreignKeyViolation {
		err = ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("add user %d to tenant %d: %w", userID, tenantID, err)
	}
	return nil
}

// RemoveMember ends a user's membership of a partner. It returns
// ErrNotFound when there was none. The user's tokens and sessions for the
// partner stay in place but stop working, since each use checks the
// membership.
func (s *Store) RemoveMember(ctx context.Context, tenantID, userID int64) error {
	n, err := controlExec(ctx, s,
		`DELETE FROM public.memberships WHERE tenant_id = $1 AND user_id = $2`, tenantID, userID)
	if err == nil && n == 0 {
		err = ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("remove user %d from tenant %d: %w", userID, tenantID, err)
	}
	return nil
}

// Members lists the members of a partner by user id, one page at a time.
// It returns the next page's cursor, "" after the last page.
func (s *Store) Members(ctx context.Context, tenantID int64, page Page) ([]*Membership, string, error) {
	limit, err := page.limit()
	if err != nil {
		return nil, "", fmt.Errorf("list members of tenant %d: %w", tenantID, err)
	}
	after, err := parseIDCursor(page.After)
	if err != nil {
		return nil, "", fmt.Errorf("list members of tenant %d: %w", tenantID, err)
	}

	ms, err := controlRows(ctx, s, scanMembership, membershipSelect+`
		WHERE m.tenant_id = $1 AND m.user_id > $2
		ORDER BY m.user_id
		LIMIT $3`, tenantID, after, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("list members of tenant %d: %w", tenantID, err)
	}
	ms, next := cut(ms, limit, func(m *Membership) string { return idCursor(m.UserID) })
	return ms, next, nil
}

// Membership returns a user's membership of a partner, or ErrNotFound.
func (s *Store) Membership(ctx context.Context, userID, tenantID int64) (*Membership, error) {
	m, err := controlRow(ctx, s, scanMembership, membershipSelect+`
		WHERE m.user_id = $1 AND m.tenant_id = $2`, userID, tenantID)
	if err != nil {
		return nil, fmt.Errorf("get membership of user %d in tenant %d: %w", userID, tenantID, err)
	}
	return m, nil
}

// MembershipsOfUser lists every partner a user belongs to, by partner id.
func (s *Store) MembershipsOfUser(ctx context.Context, userID int64) ([]*Membership, error) {
	ms, err := controlRows(ctx, s, scanMembership, membershipSelect+`
		WHERE m.user_id = $1
		ORDER BY m.tenant_id`, userID)
	if err != nil {
		return nil, fmt.Errorf("list memberships of user %d: %w", userID, err)
	}
	return ms, nil
}
