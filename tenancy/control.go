package tenancy

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Control runs fn in a transaction on the control plane: the public schema
// only, as the serving role, with no tenant scope. It is the one path to
// shared tables (users, tokens, reference data), named so that reviews can
// see every use. Tenant tables are not reachable from it.
func (db *DB) Control(ctx context.Context, fn func(ctx context.Context, tx pgx.Tx) error) error {
	begin := "BEGIN; " + setLocal(db.control)
	return pgx.BeginTxFunc(ctx, db.serve, pgx.TxOptions{BeginQuery: begin}, func(tx pgx.Tx) error {
		return fn(ctx, tx)
	})
}

// ControlQuery runs one statement on the control plane, like Control, and
// hands its rows to scan; a statement without rows hands scan none, and
// rows.CommandTag tells what it did once scan has closed the rows. The
// settings and the statement travel in one pipeline and run in one
// implicit transaction that commits at its end, so the call costs one
// round trip where Control costs three; it suits any single statement,
// reads and writes alike. scan must read the rows it needs and not keep
// them.
//
// From its second use on a connection, a statement runs prepared, so
// PostgreSQL parses and plans it once per connection instead of on every
// call; the statements of the control plane are few and name no tenant,
// and each connection keeps at most controlStatements of them.
func (db *DB) ControlQuery(ctx context.Context, scan func(pgx.Rows) error, sql string, args ...any) error {
	for attempt := 0; ; attempt++ {
		retry, err := db.controlOnce(ctx, scan, sql, args, attempt == 0)
		if !retry {
			return err
		}
	}
}

// controlStatements bounds the control-plane statements a connection keeps
// prepared.
const controlStatements = 100

// controlOnce runs a control-plane statement on one pooled connection and
// reports whether it should be tried again, after its prepared statement
// went stale or was lost (see DB.recoverStatements).
func (db *DB) controlOnce(ctx context.Context, scan func(pgx.Rows) error, sql string, args []any, mayRetry bool) (bool, error) {
	conn, err := db.serve.Acquire(ctx)
	if err != nil {
		return false, fmt.Errorf("acquire connection: %w", err)
	}
	defer conn.Release()
	c := conn.Conn()

	text, settings := setConfig(db.control)
	scoping := []*pgx.QueuedQuery{{SQL: text, Arguments: settings}}
	prepared, err := db.prepare(ctx, c, scoping, &stateOf(c).control, controlStatements,
		"BEGIN; "+setLocal(db.control), sql)
	if err == nil {
		err = runScoped(ctx, c, scoping, false, sql, args, scan)
	}
	if err == nil {
		return false, nil
	}
	db.rollback(ctx, c)
	return mayRetry && db.recoverStatements(ctx, c, &stateOf(c).control, controlStatements, prepared, sql, err,
		"plane", "control"), err
}

// controlScope is the settings of control-plane statements: the public
// schema only, and the control plane's name in pg_stat_activity.
func controlScope(appName string) []setting {
	return []setting{{"search_path", "public"}, {"application_name", appName + ":control"}}
}
