// Package postgres holds all of XAT's SQL: accounts, memberships, tokens,
// sessions, the audit trail and reference data in the shared public
// schema, and each partner's own tables in its schema. Nothing outside
// this package writes SQL.
//
// Shared tables are reached through tenancy's control-plane path
// (tenancy.DB.Control). Partner tables are reached through tenancy's
// scoped path, so every such call takes its partner from the context
// (tenancy.WithTenant) and fails with tenancy.ErrNoTenant without one.
// Calls on owned rows also take an Actor, which both filters the query
// and is handed to PostgreSQL, whose row-level security policies apply
// the same rule (migrations/tenant/0002_owner_policies.sql).
//
// The partner registry (public.tenants and public.domains) belongs to
// tenancy; the serving role may only read it.
package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/xatlabs/xat/tenancy"
)

// Store runs XAT's queries over a tenancy.DB. It holds no state of its own
// and is safe for concurrent use.
type Store struct {
	db *tenancy.DB
}

// New returns a Store over db.
func New(db *tenancy.DB) *Store {
	return &Store{db: db}
}

var (
	// ErrNotFound is returned when a row does not exist or is not visible
	// to the caller; the two are deliberately the same answer.
	ErrNotFound = errors.New("not found")

	// ErrEmailTaken is returned when a user's email address is already in
	// use.
	ErrEmailTaken = errors.New("email address already in use")

	// ErrConflict is returned when a row with the same unique value
	// already exists.
	ErrConflict = errors.New("already exists")

	// ErrNoActor is returned by owner-scoped calls given an Actor without
	// a user.
	ErrNoActor = errors.New("no acting user")

	// ErrInvalidInput is matched (with errors.Is) by every InputError.
	ErrInvalidInput = errors.New("invalid input")
)

// InputError reports a value refused before it reached the database. Its
// message names the field and is fit to show to the user. Every
// InputError matches ErrInvalidInput.
type InputError struct {
	Field  string
	Reason string
}

// Error returns "field: reason".
func (e *InputError) Error() string { return e.Field + ": " + e.Reason }

// Is makes every InputError match ErrInvalidInput.
func (e *InputError) Is(target error) bool { return target == ErrInvalidInput }

// Input errors that callers may want to tell apart.
var (
	// ErrInvalidEmail is returned for an email address that is not of the
	// form local@domain, or longer than 254 bytes.
	ErrInvalidEmail = &InputError{Field: "email", Reason: "not a valid email address"}

	// ErrInvalidRole is returned for a membership role other than
	// RoleAdmin and RoleMember.
	ErrInvalidRole = &InputError{Field: "role", Reason: `must be "admin" or "member"`}

	// ErrInvalidPlatform is returned when a collector names a platform
	// that does not exist.
	ErrInvalidPlatform = &InputError{Field: "platform_id", Reason: "no such platform"}
)

// pgError returns the PostgreSQL error in err's chain, or nil.
func pgError(err error) *pgconn.PgError {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pg
	}
	return nil
}

const (
	uniqueViolation     = "23505"
	foreignKeyViolation = "23503"
)

// isViolation reports whether err is a violation of the given class of
// the named constraint.
func isViolation(err error, code, constraint string) bool {
	pg := pgError(err)
	return pg != nil && pg.Code == code && pg.ConstraintName == constraint
}

// notFound turns pgx.ErrNoRows into ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

// controlRow returns the single row of a statement on shared tables, or
// ErrNotFound. Like controlRows and controlExec, it costs one round trip
// (see tenancy.DB.ControlQuery); work of several statements runs in
// s.db.Control.
func controlRow[T any](ctx context.Context, s *Store, fn pgx.RowToFunc[T], sql string, args ...any) (T, error) {
	var out T
	err := s.db.ControlQuery(ctx, func(rows pgx.Rows) error {
		var err error
		out, err = pgx.CollectExactlyOneRow(rows, fn)
		return err
	}, sql, args...)
	return out, notFound(err)
}

// controlRows returns every row of a statement on shared tables.
func controlRows[T any](ctx context.Context, s *Store, fn pgx.RowToFunc[T], sql string, args ...any) ([]T, error) {
	var out []T
	err := s.db.ControlQuery(ctx, func(rows pgx.Rows) error {
		var err error
		out, err = pgx.CollectRows(rows, fn)
		return err
	}, sql, args...)
	return out, err
}

// controlExec runs one statement on shared tables and returns how many
// rows it affected.
func controlExec(ctx context.Context, s *Store, sql string, args ...any) (int64, error) {
	var n int64
	err := s.db.ControlQuery(ctx, func(rows pgx.Rows) error {
		rows.Close()
		n = rows.CommandTag().RowsAffected()
		return rows.Err()
	}, sql, args...)
	return n, err
}
