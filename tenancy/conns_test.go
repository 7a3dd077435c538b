package tenancy_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/xatlabs/xat/tenancy"
	"github.com/xatlabs/xat/tenancy/tenancytest"
)

// preparedOnConn lists the tenant queries prepared on the connection that
// serves the read, as the tenant of ctx sees them.
func preparedOnConn(t *testing.T, ctx context.Context, db *tenancy.DB) []string {
	return preparedLike(t, ctx, db, "/* tenant %")
}

// preparedLike lists the statements prepared on the connection that serves
// the read whose text is LIKE pattern.
func preparedLike(t *testing.T, ctx context.Context, db *tenancy.DB, pattern string) []string {
	t.Helper()
	var out []string
	err := db.InTenant(ctx, func(ctx context.Context, tx pgx.Tx) error {
		rows, err := tx.Query(ctx, "SELECT statement FROM pg_prepared_statements WHERE statement LIKE $1 ORDER BY prepare_time", pattern)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	require.NoError(t, err)
	return out
}

func backendPID(t *testing.T, ctx context.Context, db *tenancy.DB) int {
	t.Helper()
	pid, err := tenancy.Row(ctx, db, pgx.RowTo[int], "SELECT pg_backend_pid()")
	require.NoError(t, err)
	return pid
}

// TestPreparedStatementPerSchema: on one connection, the same SQL text read
// alternately in two tenants, one of them a migration ahead with another
// column, gets each tenant its own rows and its own columns: a statement is
// prepared per schema.
func TestPreparedStatementPerSchema(t *testing.T) {
	forGuards(t, func(t *testing.T, db *tenancy.DB) {
		one := tenancytest.Reconfigured(t, db, 1, nil)
		a, b := tenancytest.NewTenant(t, db), tenancytest.NewTenant(t, db)
		actx := tenancy.WithTenant(context.Background(), a)
		bctx := tenancy.WithTenant(context.Background(), b)
		insertItem(t, one, actx, "from a")
		insertItem(t, one, bctx, "from b")
		admin := tenancytest.AdminConn(t, db)
		_, err := admin.Exec(context.Background(), "ALTER TABLE "+pgx.Identifier{b.Schema, "items"}.Sanitize()+" ADD COLUMN extra int DEFAULT 7")
		require.NoError(t, err)

		const q = "SELECT * FROM items"
		for range 8 {
			for _, c := range []struct {
				ctx   context.Context
				label string
				cols  int
			}{{actx, "from a", 3}, {bctx, "from b", 4}} {
				err := one.Read(c.ctx, func(rows pgx.Rows) error {
					require.Len(t, rows.FieldDescriptions(), c.cols)
					for rows.Next() {
						v, err := rows.Values()
						require.NoError(t, err)
						require.Equal(t, c.label, v[2])
					}
					return rows.Err()
				}, q)
				require.NoError(t, err)
			}
		}
		stmts := preparedOnConn(t, actx, one)
		require.Contains(t, stmts, "/* tenant "+a.Schema+" */ "+q)
		require.Contains(t, stmts, "/* tenant "+b.Schema+" */ "+q)

		// The scoping statements are prepared too: under the role guard
		// one for both tenants, its text naming no tenant; under the
		// policy guard SET LOCAL statements of each tenant.
		if db.Config().Guard == tenancy.GuardRole {
			scoping := preparedLike(t, actx, one, "%set_config%")
			require.Len(t, scoping, 1, "%q", scoping)
			require.NotContains(t, scoping[0], a.Schema)
			require.Empty(t, preparedLike(t, actx, one, "SET LOCAL%"))
		} else {
			scoping := preparedLike(t, actx, one, "SET LOCAL search_path%")
			require.Contains(t, scoping, `SET LOCAL search_path = "`+a.Schema+`", public`)
			require.Contains(t, scoping, `SET LOCAL search_path = "`+b.Schema+`", public`)
			require.Empty(t, preparedLike(t, actx, one, "%set_config%"))
		}
	})
}

// TestPreparedStatementOfOtherTenant: B, holding the connection on which
// A's statement is prepared, runs it by name with raw SQL. PostgreSQL
// analyses it again under B's search path and role, so B gets B's rows,
// never A's.
func TestPreparedStatementOfOtherTenant(t *testing.T) {
	forGuards(t, func(t *testing.T, db *tenancy.DB) {
		one := tenancytest.Reconfigured(t, db, 1, nil)
		a, b := tenancytest.NewTenant(t, db), tenancytest.NewTenant(t, db)
		actx := tenancy.WithTenant(context.Background(), a)
		bctx := tenancy.WithTenant(context.Background(), b)
		insertItem(t, one, actx, "secret of a")
		insertItem(t, one, bctx, "of b")
		for range 2 { // prepared on the second read
			_, err := tenancy.Rows(actx, one, pgx.RowTo[string], "SELECT label FROM items")
			require.NoError(t, err)
		}

		var name string
		err := one.InTenant(bctx, func(ctx context.Context, tx pgx.Tx) error {
			return tx.QueryRow(ctx, "SELECT name FROM pg_prepared_statements WHERE statement LIKE $1",
				"/* tenant "+a.Schema+" */%").Scan(&name)
		})
		require.NoError(t, err)
		var labels []string
		err = one.InTenant(bctx, func(ctx context.Context, tx pgx.Tx) error {
			rows, err := tx.Query(ctx, "EXECUTE "+pgx.Identifier{name}.Sanitize())
			if err != nil {
				return err
			}
			labels, err = pgx.CollectRows(rows, pgx.RowTo[string])
			return err
		})
		if err == nil {
			require.Equal(t, []string{"of b"}, labels)
		} else {
			require.NotContains(t, err.Error(), "secret")
		}
	})
}

// TestPreparedStatementsBounded: a connection keeps at most
// StatementsPerConn tenant statements, dropping the least recently used,
// and statements that would only evict each other run unprepared.
func TestPreparedStatementsBounded(t *testing.T) {
	db := openDB(t, tenancy.GuardRole)
	one := tenancytest.Reconfigured(t, db, 1, func(c *tenancy.Config) { c.StatementsPerConn = 2 })
	var tenants []*tenancy.Tenant
	for range 4 {
		tn := tenancytest.NewTenant(t, db)
		insertItem(t, one, tenancy.WithTenant(context.Background(), tn), tn.Schema)
		tenants = append(tenants, tn)
	}
	read := func(tn *tenancy.Tenant) {
		got, err := tenancy.Rows(tenancy.WithTenant(context.Background(), tn), one, pgx.RowTo[string], "SELECT label FROM items")
		require.NoError(t, err)
		require.Equal(t, []string{tn.Schema}, got)
	}
	prepared := func() []string {
		return preparedOnConn(t, tenancy.WithTenant(context.Background(), tenants[0]), one)
	}

	// Four statements in turn on a connection that keeps two: none is
	// read twice while remembered, so none is prepared.
	for range 3 {
		for _, tn := range tenants {
			read(tn)
		}
	}
	require.Empty(t, prepared())

	// Each read twice in a row: each is prepared, the oldest dropped.
	for _, tn := range tenants {
		read(tn)
		read(tn)
	}
	got := prepared()
	require.Len(t, got, 2)
	require.Contains(t, got, "/* tenant "+tenants[3].Schema+" */ SELECT label FROM items")
	require.Contains(t, got, "/* tenant "+tenants[2].Schema+" */ SELECT label FROM items")
}

// TestPreparationOff: with StatementsPerConn negative, reads leave nothing
// prepared, as a pooler in transaction mode needs.
func TestPreparationOff(t *testing.T) {
	db := openDB(t, tenancy.GuardRole)
	one := tenancytest.Reconfigured(t, db, 1, func(c *tenancy.Config) { c.StatementsPerConn = -1 })
	ctx := tenancy.WithTenant(context.Background(), tenancytest.NewTenant(t, db))
	insertItem(t, one, ctx, "x")
	for range 3 {
		_, err := tenancy.Rows(ctx, one, pgx.RowTo[string], "SELECT label FROM items")
		require.NoError(t, err)
	}
	require.Empty(t, preparedLike(t, ctx, one, "%"))
}

// TestStalePreparedStatement: a statement whose result type a migration
// changed, or that the server no longer holds (as behind a pooler that
// switched server connections), is prepared again and the read succeeds.
func TestStalePreparedStatement(t *testing.T) {
	db := openDB(t, tenancy.GuardRole)
	one := tenancytest.Reconfigured(t, db, 1, nil)
	tn := tenancytest.NewTenant(t, db)
	ctx := tenancy.WithTenant(context.Background(), tn)
	insertItem(t, one, ctx, "before")

	read := func() []any {
		var out []any
		err := one.Read(ctx, func(rows pgx.Rows) error {
			for rows.Next() {
				v, err := rows.Values()
				if err != nil {
					return err
				}
				out = append(out, v...)
			}
			return rows.Err()
		}, "SELECT label FROM items")
		require.NoError(t, err)
		return out
	}
	require.Equal(t, []any{"before"}, read())
	require.Equal(t, []any{"before"}, read()) // prepared now

	admin := tenancytest.AdminConn(t, db)
	_, err := admin.Exec(context.Background(), "ALTER TABLE "+pgx.Identifier{tn.Schema, "items"}.Sanitize()+
		" ALTER COLUMN label TYPE int USING length(label)")
	require.NoError(t, err)
	require.Equal(t, []any{int32(6)}, read())

	// The server forgets every statement behind the client's back.
	require.NoError(t, one.InTenant(ctx, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "DEALLOCATE ALL")
		return err
	}))
	require.Equal(t, []any{int32(6)}, read())
}

// TestConnectionServesBoundedSchemas: a pooled connection that has served
// more than SchemasPerConn tenant schemas is closed and replaced, so a
// backend's catalog caches stay bounded.
func TestConnectionServesBoundedSchemas(t *testing.T) {
	db := openDB(t, tenancy.GuardRole)
	one := tenancytest.Reconfigured(t, db, 1, func(c *tenancy.Config) { c.SchemasPerConn = 2 })
	var pids []int
	for range 3 {
		ctx := tenancy.WithTenant(context.Background(), tenancytest.NewTenant(t, db))
		pids = append(pids, backendPID(t, ctx, one))
	}
	require.Equal(t, pids[0], pids[1], "two schemas fit on one connection")
	require.Equal(t, pids[0], pids[2], "the third is served, then the connection retires")
	ctx := tenancy.WithTenant(context.Background(), tenancytest.NewTenant(t, db))
	require.NotEqual(t, pids[0], backendPID(t, ctx, one))
}
