package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Audit event kinds.
const (
	AuditLoginSuccess      = "login.success"
	AuditLoginFailure      = "login.failure"
	AuditLogout            = "logout"
	AuditCrossTenantDenied = "cross_tenant.denied"
	AuditTenantCreated     = "tenant.created"
	AuditTenantUpdated     = "tenant.updated"
	AuditTenantDeleted     = "tenant.deleted"
	AuditDomainAdded       = "domain.added"
	AuditDomainRemoved     = "domain.removed"
	AuditMemberAdded       = "member.added"
	AuditMemberRemoved     = "member.removed"
	AuditTokenCreated      = "token.created"
	AuditTokenRevoked      = "token.revoked"
	AuditUserCreated       = "user.created"
)

// AuditEvent is one entry of the audit trail: who (UserID, Actor) did
// what (Kind, Detail) where (TenantID, Host, ClientAddr) and when (At).
// Events are kept after their partner or user is deleted. Detail must
// never hold secrets: tokens, passwords, session ids.
type AuditEvent struct {
	ID         int64          `json:"id"`
	At         time.Time      `json:"at"`
	Kind       string         `json:"kind"`
	TenantID   *int64         `json:"tenant_id,omitempty"`
	UserID     *int64         `json:"user_id,omitempty"`
	Actor      string         `json:"actor,omitempty"` // who acted, as they named themselves (an email at login)
	Host       string         `json:"host,omitempty"`
	ClientAddr string         `json:"client_addr,omitempty"`
	Detail     map[string]any `json:"detail,omitempty"`
}

// Audit appends an event to the audit trail. ID and At are set by the
// database. Kind is required (one of the Audit* constants, or another
// dotted name of at most 100 bytes); Detail, when set, must marshal to a
// JSON object.
func (s *Store) Audit(ctx context.Context, e AuditEvent) error {
	if e.Kind == "" || len(e.Kind) > 100 {
		return fmt.Errorf("audit: %w", &InputError{Field: "kind", Reason: "must be 1 to 100 bytes"})
	}
	detail := []byte("{}")
	if e.Detail != nil {
		var err error
		if detail, err = json.Marshal(e.Detail); err != nil {
			return fmt.Errorf("audit %s: encode detail: %w", e.Kind, err)
		}
	}
	_, err := controlExec(ctx, s, `
		INSERT INTO public.audit_events (kind, tenant_id, user_id, actor, host, client_addr, detail)
		VALUES ($1, $2, $3, $4, $5, $6, $7::text::jsonb)`,
		e.Kind, e.TenantID, e.UserID, e.Actor, e.Host, e.ClientAddr, string(detail))
	if err != nil {
		return fmt.Errorf("audit %s: %w", e.Kind, err)
	}
	return nil
}

// AuditFilter narrows AuditEvents. Zero fields do not filter.
type AuditFilter struct {
	TenantID *int64
	Kind     string
	Since    *time.Time // inclusive
	Until    *time.Time // exclusive
}

// AuditEvents lists audit events matching f, newest first, one page at a
// time. It returns the next page's cursor, "" after the last page.
func (s *Store) AuditEvents(ctx context.Context, f AuditFilter, page Page) ([]*AuditEvent, string, error) {
	limit, err := page.limit()
	if err != nil {
		return nil, "", fmt.Errorf("list audit events: %w", err)
	}
	at, id, resume, err := parseTimeCursor(page.After)
	if err != nil {
		return nil, "", fmt.Errorf("list audit events: %w", err)
	}

	var before *time.Time
	if resume {
		before = &at
	}
	events, err := controlRows(ctx, s, scanAuditEvent, auditEventsSQL,
		f.TenantID, f.Kind, f.Since, f.Until, before, id, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("list audit events: %w", err)
	}
	events, next := cut(events, limit, func(e *AuditEvent) string { return timeCursor(e.At, e.ID) })
	return events, next, nil
}

// auditEventsSQL leaves a filter out by a NULL or empty parameter. Every
// statement is planned with its parameter values (pgx's exec mode sends
// unnamed statements), so the unused conditions fold away and the index
// on (at DESC, id DESC) or (tenant_id, at DESC) serves.
const auditEventsSQL = `
	SELECT id, at, kind, tenant_id, user_id, actor, host, client_addr, detail
	FROM public.audit_events
	WHERE ($1::bigint IS NULL OR tenant_id = $1)
	  AND ($2::text = '' OR kind = $2)
	  AND ($3::timestamptz IS NULL OR at >= $3)
	  AND ($4::timestamptz IS NULL OR at < $4)
	  AND ($5::timestamptz IS NULL OR (at, id) < ($5, $6::bigint))
	ORDER BY at DESC, id DESC
	LIMIT $7`

func scanAuditEvent(row pgx.CollectableRow) (*AuditEvent, error) {
	var e AuditEvent
	err := row.Scan(&e.ID, &e.At, &e.Kind, &e.TenantID, &e.UserID, &e.Actor, &e.Host, &e.ClientAddr, &e.Detail)
	if len(e.Detail) == 0 {
		e.Detail = nil
	}
	return &e, err
}
