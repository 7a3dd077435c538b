package postgres

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/xatlabs/xat/tenancy"
)

// Audit event kinds of collector tokens.
const (
	AuditCollectorTokenCreated = "collector_token.created"
	AuditCollectorTokenRevoked = "collector_token.revoked"
)

// CollectorToken is an upload-only credential of one collector. Only the
// SHA-256 of the token is stored, and it is never read back out. A token
// has no owner of its own: whoever may see its collector may see and
// revoke it.
type CollectorToken struct {
	ID          int64      `json:"id"`
	CollectorID int64      `json:"collector_id"`
	Name        string     `json:"name"`
	CreatedAt   time.Time  `json:"created_at"`
	LastUsedAt  *time.Time `json:"last_used_at,omitempty"`
	RevokedAt   *time.Time `json:"revoked_at,omitempty"`
}

// CollectorAccess is what a live collector token grants: uploads for one
// collector of the partner, made in the name of the collector's owner.
type CollectorAccess struct {
	TokenID     int64
	CollectorID int64
	OwnerID     int64
}

const collectorTokenColumns = `id, collector_id, name, created_at, last_used_at, revoked_at`

func scanCollectorToken(row pgx.CollectableRow) (*CollectorToken, error) {
	var t CollectorToken
	err := row.Scan(&t.ID, &t.CollectorID, &t.Name, &t.CreatedAt, &t.LastUsedAt, &t.RevokedAt)
	return &t, err
}

// tokenName trims a token name and checks it is valid text of at most
// 100 characters; it may be empty.
func tokenName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if utf8.RuneCountInString(name) > maxTokenName || !utf8.ValidString(name) {
		reason := fmt.Sprintf("must be valid text of at most %d characters", maxTokenName)
		return "", &InputError{Field: "name", Reason: reason}
	}
	return name, nil
}

// CreateCollectorToken stores a new token for a collector of the partner
// in ctx that the actor may see. hash is the token's SHA-256
// (auth.HashToken). It returns an InputError for a bad name or hash,
// ErrNotFound like Collector and ErrConflict when the hash is already
// stored.
func (s *Store) CreateCollectorToken(
	ctx context.Context,
	a Actor,
	collectorID int64,
	name string,
	hash []byte,
) (*CollectorToken, error) {
	name, err := tokenName(name)
	if err == nil && len(hash) != sha256.Size {
		err = &InputError{Field: "hash", Reason: "must be a SHA-256"}
	}
	if err != nil {
		return nil, fmt.Errorf("create token for collector %d: %w", collectorID, err)
	}
	ctx, err = a.scope(ctx)
	if err != nil {
		return nil, fmt.Errorf("create token for collector %d: %w", collectorID, err)
	}

	var t *CollectorToken
	err = s.db.InTenant(ctx, func(ctx context.Context, tx pgx.Tx) error {
		// The SELECT finds nothing for a collector the actor may not see,
		// so the insert adds no row and the collection finds none.
		rows, _ := tx.Query(ctx, `
			INSERT INTO collector_tokens (collector_id, name, token_hash)
			SELECT id, $4, $5
			FROM collectors
			WHERE id = $1 AND ($2 OR owner_id = $3)
			RETURNING `+collectorTokenColumns,
			collectorID, a.Admin, a.UserID, name, hash)
		var err error
		t, err = pgx.CollectExactlyOneRow(rows, scanCollectorToken)
		return err
	})
	if isViolation(err, uniqueViolation, "collector_tokens_token_hash_key") {
		err = ErrConflict
	}
	if err != nil {
		return nil, fmt.Errorf("create token for collector %d: %w", collectorID, notFound(err))
	}
	return t, nil
}

// CollectorTokens lists the tokens of a collector the actor may see, by
// id, one page at a time, revoked ones included. It returns ErrNotFound
// like Collector, and the next page's cursor, "" after the last page.
func (s *Store) CollectorTokens(
	ctx context.Context,
	a Actor,
	collectorID int64,
	page Page,
) ([]*CollectorToken, string, error) {
	limit, err := page.limit()
	if err != nil {
		return nil, "", fmt.Errorf("list tokens of collector %d: %w", collectorID, err)
	}
	after, err := parseIDCursor(page.After)
	if err != nil {
		return nil, "", fmt.Errorf("list tokens of collector %d: %w", collectorID, err)
	}
	if _, err := s.Collector(ctx, a, collectorID); err != nil {
		return nil, "", fmt.Errorf("list tokens: %w", err)
	}
	ctx, err = a.scope(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("list tokens of collector %d: %w", collectorID, err)
	}

	ts, err := tenancy.Rows(ctx, s.db, scanCollectorToken, `
		SELECT `+collectorTokenColumns+`
		FROM collector_tokens
		WHERE collector_id = $1 AND id > $2
		ORDER BY id
		LIMIT $3`, collectorID, after, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("list tokens of collector %d: %w", collectorID, err)
	}
	ts, next := cut(ts, limit, func(t *CollectorToken) string { return idCursor(t.ID) })
	return ts, next, nil
}

// RevokeCollectorToken revokes a token of a collector the actor may see.
// Revoking a revoked token again succeeds and keeps the first revocation
// time. It returns ErrNotFound when the token does not exist, belongs to
// another collector, or its collector is not visible to the actor.
func (s *Store) RevokeCollectorToken(ctx context.Context, a Actor, collectorID, tokenID int64) error {
	ctx, err := a.scope(ctx)
	if err != nil {
		return fmt.Errorf("revoke collector token %d: %w", tokenID, err)
	}
	err = s.db.InTenant(ctx, func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `
			UPDATE collector_tokens t SET revoked_at = coalesce(t.revoked_at, now())
			FROM collectors c
			WHERE t.id = $1 AND t.collector_id = $2
			  AND c.id = t.collector_id AND ($3 OR c.owner_id = $4)`,
			tokenID, collectorID, a.Admin, a.UserID)
		if err == nil && tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("revoke collector token %d: %w", tokenID, err)
	}
	return nil
}

// UseCollectorToken looks up the live (unrevoked) collector token whose
// SHA-256 is hash among the tokens of the partner in ctx, records that it
// was used and that its collector made contact, and returns what it
// grants. It returns ErrNotFound when the partner holds no live token with
// this hash: tokens of other partners live in other schemas and are never
// seen. The lookup is the system's, not a member's: no one is acting yet.
func (s *Store) UseCollectorToken(ctx context.Context, hash []byte) (*CollectorAccess, error) {
	var acc CollectorAccess
	err := s.db.InTenant(systemScope(ctx), func(ctx context.Context, tx pgx.Tx) error {
		return tx.QueryRow(ctx, `
			WITH t AS (
			    UPDATE collector_tokens SET last_used_at = now()
			    WHERE token_hash = $1 AND revoked_at IS NULL
			    RETURNING id, collector_id)
			UPDATE collectors c SET last_seen_at = now()
			FROM t
			WHERE c.id = t.collector_id
			RETURNING t.id, c.id, c.owner_id`, hash).Scan(&acc.TokenID, &acc.CollectorID, &acc.OwnerID)
	})
	if err != nil {
		return nil, fmt.Errorf("use collector token: %w", notFound(err))
	}
	return &acc, nil
}
