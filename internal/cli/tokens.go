package cli

import (
	"context"
	"fmt"

	"github.com/xatlabs/xat/internal/auth"
	"github.com/xatlabs/xat/internal/postgres"
	"github.com/xatlabs/xat/tenancy"
)

// issueToken creates a personal token for the member email of the partner
// with this schema and returns the token, which is stored only hashed.
func issueToken(ctx context.Context, db *tenancy.DB, store *postgres.Store, email, schema, name string) (string, error) {
	t, u, err := memberOf(ctx, db, store, schema, email)
	if err != nil {
		return "", err
	}
	if _, err := store.Membership(ctx, u.ID, t.ID); err != nil {
		return "", fmt.Errorf("%s is not a member of %s: %w", u.Email, t.Schema, err)
	}
	plain, hash := auth.NewToken(auth.KindPersonal)
	tok, err := store.CreateToken(ctx, u.ID, t.ID, name, hash, nil)
	if err != nil {
		return "", err
	}
	store.Audit(ctx, postgres.AuditEvent{Kind: postgres.AuditTokenCreated, TenantID: &t.ID, UserID: &u.ID,
		Actor: "cli", Detail: map[string]any{"token_id": tok.ID}})
	return plain, nil
}
