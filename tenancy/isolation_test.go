package tenancy_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/xatlabs/xat/tenancy"
	"github.com/xatlabs/xat/tenancy/tenancytest"
)

func requirePgCode(t *testing.T, err error, code string) {
	t.Helper()
	var pg *pgconn.PgError
	require.True(t, errors.As(err, &pg), "want PostgreSQL error %s, got %v", code, err)
	require.Equal(t, code, pg.Code, pg.Message)
}

// TestCrossSchemaSQL runs raw SQL under tenant B's scope that names tenant
// A's schema: it must read nothing and change nothing.
func TestCrossSchemaSQL(t *testing.T) {
	t.Parallel()
	forGuards(t, func(t *testing.T, db *tenancy.DB) {
		ctx := context.Background()
		a := tenancytest.NewTenant(t, db)
		b := tenancytest.NewTenant(t, db)
		actx := tenancy.WithTenant(ctx, a)
		bctx := tenancy.WithTenant(ctx, b)
		aID := insertItem(t, db, actx, "secret of a")
		insertItem(t, db, bctx, "b's own")

		qualified := pgx.Identifier{a.Schema, "items"}.Sanitize()
		statements := []string{
			"SELECT count(*) FROM " + qualified,
			fmt.Sprintf("UPDATE %s SET label = 'pwned' WHERE id = %d", qualified, aID),
			fmt.Sprintf("DELETE FROM %s WHERE id = %d", qualified, aID),
			"INSERT INTO " + qualified + " (kind_id, label) VALUES (1, 'planted')",
		}
		for _, sql := range statements {
			err := db.InTenant(bctx, func(ctx context.Context, tx pgx.Tx) error {
				tag, err := tx.Exec(ctx, sql)
				if err == nil && tag.RowsAffected() > 0 && tag.Insert() {
					return fmt.Errorf("insert succeeded")
				}
				if err == nil && (tag.Update() || tag.Delete()) && tag.RowsAffected() > 0 {
					return fmt.Errorf("%s changed %d rows", sql, tag.RowsAffected())
				}
				if err == nil && tag.Select() {
					var n int
					if err := tx.QueryRow(ctx, sql).Scan(&n); err != nil {
						return err
					}
					if n != 0 {
						return fmt.Errorf("saw %d rows", n)
					}
				}
				return err
			})
			switch db.Config().Guard {
			case tenancy.GuardRole:
				requirePgCode(t, err, "42501") // permission denied
			case tenancy.GuardPolicy:
				if err != nil {
					requirePgCode(t, err, "42501") // row-level security WITH CHECK
				}
			}
		}

		// A's row is untouched, and under A's scope the unqualified table
		// is A's.
		labels, err := tenancy.Rows(actx, db, pgx.RowTo[string], "SELECT label FROM items ORDER BY id")
		require.NoError(t, err)
		require.Equal(t, []string{"secret of a"}, labels)
		labels, err = tenancy.Rows(bctx, db, pgx.RowTo[string], "SELECT label FROM items ORDER BY id")
		require.NoError(t, err)
		require.Equal(t, []string{"b's own"}, labels)
	})
}

// TestGuessedIDs reads A's ids through B's scope with the unqualified table:
// B's schema answers, so A's ids are simply absent.
func TestGuessedIDs(t *testing.T) {
	t.Parallel()
	forGuards(t, func(t *testing.T, db *tenancy.DB) {
		ctx := context.Background()
		a := tenancytest.NewTenant(t, db)
		b := tenancytest.NewTenant(t, db)
		aID := insertItem(t, db, tenancy.WithTenant(ctx, a), "a")

		_, err := tenancy.Row(tenancy.WithTenant(ctx, b), db, pgx.RowTo[string],
			"SELECT label FROM items WHERE id = $1", aID)
		require.ErrorIs(t, err, pgx.ErrNoRows)
	})
}

func TestNoTenantFailsClosed(t *testing.T) {
	t.Parallel()
	db := openDB(t, tenancy.GuardRole)
	ctx := context.Background()

	err := db.InTenant(ctx, func(context.Context, pgx.Tx) error { return nil })
	require.ErrorIs(t, err, tenancy.ErrNoTenant)
	_, err = tenancy.Rows(ctx, db, pgx.RowTo[int], "SELECT 1")
	require.ErrorIs(t, err, tenancy.ErrNoTenant)

	// A tenant whose schema is not a valid name never reaches SQL.
	bad := tenancy.WithTenant(ctx, &tenancy.Tenant{ID: 1, Schema: `x"; DROP SCHEMA public; --`})
	require.ErrorIs(t, db.InTenant(bad, func(context.Context, pgx.Tx) error { return nil }), tenancy.ErrInvalidSchema)

	// The control plane cannot see tenant tables.
	tenancytest.NewTenant(t, db)
	err = db.Control(ctx, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "SELECT count(*) FROM items")
		return err
	})
	requirePgCode(t, err, "42P01") // undefined table
}

// TestTenantCannotReadRegistry checks that a tenant's scope does not reach
// the partner registry, while the shared table granted to tenants is
// readable.
// TestControlQuery checks the one-round-trip control-plane statement: it
// runs as the serving role on public alone, names the control plane in
// pg_stat_activity, reaches no tenant table, and leaves its connection
// clean whether it succeeds or fails.
func TestControlQuery(t *testing.T) {
	t.Parallel()
	shared := openDB(t, tenancy.GuardRole)
	tenancytest.NewTenant(t, shared)
	db := tenancytest.Reconfigured(t, shared, 1, nil)
	ctx := context.Background()

	// On its one connection, the first use runs unprepared, the second
	// prepares the statement in an explicit transaction, the third runs it
	// prepared in an implicit one: each sees the same scope.
	const probe = `SELECT current_setting('search_path'), current_user, a.application_name, k.name,
			EXISTS (SELECT FROM pg_prepared_statements p WHERE p.statement LIKE '%kinds k WHERE a.pid%')
		FROM pg_stat_activity a, kinds k WHERE a.pid = pg_backend_pid() AND k.id = $1`
	for use := 1; use <= 3; use++ {
		var path, role, app, kind string
		var prepared bool
		err := db.ControlQuery(ctx, func(rows pgx.Rows) error {
			_, err := pgx.CollectExactlyOneRow(rows, func(r pgx.CollectableRow) (struct{}, error) {
				return struct{}{}, r.Scan(&path, &role, &app, &kind, &prepared)
			})
			return err
		}, probe, 2)
		require.NoError(t, err)
		require.Equal(t, "public", path)
		require.Equal(t, db.Config().ServingRole, role)
		require.Equal(t, db.Config().AppName+":control", app)
		require.Equal(t, "fancy", kind)
		require.Equal(t, use > 1, prepared, "use %d", use)
	}

	err := db.ControlQuery(ctx, func(pgx.Rows) error { return nil }, "SELECT count(*) FROM items")
	requirePgCode(t, err, "42P01") // tenant tables are not on the path
	err = db.ControlQuery(ctx, func(rows pgx.Rows) error {
		rows.Close()
		return rows.Err()
	}, "INSERT INTO kinds VALUES (3, 'odd')")
	requirePgCode(t, err, "42501") // the serving role only reads kinds
	for range 5 {
		err = db.ControlQuery(ctx, func(rows pgx.Rows) error {
			_, err := pgx.CollectRows(rows, pgx.RowTo[int])
			return err
		}, "SELECT 1/0")
		requirePgCode(t, err, "22012")
	}
	requireCleanPool(t, db)
}

// TestControlStatementStale: a prepared control-plane statement whose
// result changes under a migration is prepared again, and the call
// succeeds.
func TestControlStatementStale(t *testing.T) {
	t.Parallel()
	shared := openDB(t, tenancy.GuardRole)
	db := tenancytest.Reconfigured(t, shared, 1, nil)
	ctx := context.Background()
	admin := tenancytest.AdminConn(t, shared)
	table := "probe_" + strings.ReplaceAll(t.Name(), "/", "_")
	_, err := admin.Exec(ctx, "CREATE TABLE public."+table+" (a int); INSERT INTO public."+table+" VALUES (1);"+
		"GRANT SELECT ON public."+table+" TO "+db.Config().ServingRole)
	require.NoError(t, err)
	t.Cleanup(func() { admin.Exec(context.Background(), "DROP TABLE public."+table) })

	columns := func() int {
		var n int
		err := db.ControlQuery(ctx, func(rows pgx.Rows) error {
			for rows.Next() {
				n = len(rows.RawValues())
			}
			return rows.Err()
		}, "SELECT * FROM "+table)
		require.NoError(t, err)
		return n
	}
	require.Equal(t, 1, columns())
	require.Equal(t, 1, columns()) // prepared now
	_, err = admin.Exec(ctx, "ALTER TABLE public."+table+" ADD COLUMN b int")
	require.NoError(t, err)
	require.Equal(t, 2, columns())
	require.Equal(t, 2, columns())
	requireCleanPool(t, db)
}

func TestTenantCannotReadRegistry(t *testing.T) {
	t.Parallel()
	db := openDB(t, tenancy.GuardRole)
	ctx := tenancy.WithTenant(context.Background(), tenancytest.NewTenant(t, db))

	_, err := tenancy.Rows(ctx, db, pgx.RowTo[string], "SELECT schema_name FROM public.tenants")
	requirePgCode(t, err, "42501")
	_, err = tenancy.Rows(ctx, db, pgx.RowTo[string], "SELECT schema_name FROM public.tenancy_schema_state")
	requirePgCode(t, err, "42501")
	kinds, err := tenancy.Rows(ctx, db, pgx.RowTo[string], "SELECT name FROM kinds ORDER BY id")
	require.NoError(t, err)
	require.Equal(t, []string{"plain", "fancy"}, kinds)
}

func TestTenantVisibleInPgStatActivity(t *testing.T) {
	t.Parallel()
	forGuards(t, func(t *testing.T, db *tenancy.DB) {
		a := tenancytest.NewTenant(t, db)
		ctx := tenancy.WithTenant(context.Background(), a)
		var app, setting string
		err := db.InTenant(ctx, func(ctx context.Context, tx pgx.Tx) error {
			return tx.QueryRow(ctx, `
				SELECT application_name, current_setting('tenancy.tenant')
				FROM pg_stat_activity WHERE pid = pg_backend_pid()`).Scan(&app, &setting)
		})
		require.NoError(t, err)
		require.Equal(t, "tenancy:"+a.Schema, app)
		require.Equal(t, a.Schema, setting)
	})
}

// TestReadErrorLeavesConnectionClean makes the one-round-trip read fail in
// the middle of its pipeline and checks the connection comes back usable
// and unscoped.
func TestReadErrorLeavesConnectionClean(t *testing.T) {
	t.Parallel()
	db := openDB(t, tenancy.GuardRole)
	ctx := tenancy.WithTenant(context.Background(), tenancytest.NewTenant(t, db))
	for range 20 {
		_, err := tenancy.Rows(ctx, db, pgx.RowTo[int], "SELECT 1/0")
		requirePgCode(t, err, "22012")
	}
	n, err := tenancy.Row(ctx, db, pgx.RowTo[int], "SELECT 41 + 1")
	require.NoError(t, err)
	require.Equal(t, 42, n)
	requireCleanPool(t, db)
}

// requireCleanPool checks every idle connection of the serving pool: no
// tenant search path, role, setting or application name may remain.
func requireCleanPool(t *testing.T, db *tenancy.DB) {
	t.Helper()
	ctx := context.Background()
	conns := make([]interface{ Release() }, 0)
	defer func() {
		for _, c := range conns {
			c.Release()
		}
	}()
	for _, pool := range db.Pools() {
		checkIdleConns(t, ctx, db, pool, &conns)
	}
}

// checkIdleConns acquires every connection of pool, into conns, and
// checks that none keeps a tenant scope.
func checkIdleConns(t *testing.T, ctx context.Context, db *tenancy.DB, pool *pgxpool.Pool, conns *[]interface{ Release() }) {
	t.Helper()
	for range pool.Stat().TotalConns() {
		c, err := pool.Acquire(ctx)
		require.NoError(t, err)
		*conns = append(*conns, c)
		var path, role, setting, app, readOnly string
		err = c.QueryRow(ctx, `SELECT current_setting('search_path'), current_user,
			coalesce(current_setting('tenancy.tenant', true), ''), current_setting('application_name'),
			current_setting('transaction_read_only')`).
			Scan(&path, &role, &setting, &app, &readOnly)
		require.NoError(t, err)
		require.Equal(t, "off", readOnly)
		require.Equal(t, `"$user", public`, path)
		require.Equal(t, db.Config().ServingRole, role)
		require.Empty(t, setting)
		require.NotContains(t, app, "tenancy:")
	}
}

// TestLeakStress runs many goroutines over a small pool, each doing scoped
// writes and reads for random tenants, and checks that every result belongs
// to the tenant it was asked for and that no connection keeps a scope.
func TestLeakStress(t *testing.T) {
	t.Parallel()
	forGuards(t, func(t *testing.T, db *tenancy.DB) {
		const tenants, workers, rounds = 6, 24, 40
		ts := make([]*tenancy.Tenant, tenants)
		for i := range ts {
			ts[i] = tenancytest.NewTenant(t, db)
		}

		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for r := range rounds {
					tn := ts[rand.IntN(tenants)]
					ctx := tenancy.WithTenant(context.Background(), tn)
					label := fmt.Sprintf("%s/%d/%d", tn.Schema, w, r)
					if err := stressOnce(ctx, db, tn, label); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		requireCleanPool(t, db)
	})
}

func stressOnce(ctx context.Context, db *tenancy.DB, tn *tenancy.Tenant, label string) error {
	err := db.InTenant(ctx, func(ctx context.Context, tx pgx.Tx) error {
		var schema string
		err := tx.QueryRow(ctx,
			"INSERT INTO items (kind_id, label) VALUES (2, $1) RETURNING current_schema()", label).Scan(&schema)
		if err == nil && schema != tn.Schema {
			return fmt.Errorf("insert for %s ran in %s", tn.Schema, schema)
		}
		return err
	})
	if err != nil {
		return err
	}
	labels, err := tenancy.Rows(ctx, db, pgx.RowTo[string], "SELECT label FROM items")
	if err != nil {
		return err
	}
	mine := false
	for _, l := range labels {
		if len(l) < len(tn.Schema) || l[:len(tn.Schema)] != tn.Schema {
			return fmt.Errorf("tenant %s saw %q", tn.Schema, l)
		}
		mine = mine || l == label
	}
	if !mine {
		return fmt.Errorf("tenant %s did not see its own row %q", tn.Schema, label)
	}
	marks, err := tenancy.Rows(ctx, db, pgx.RowTo[string], "SELECT tenant FROM marks")
	if err != nil {
		return err
	}
	if len(marks) != 1 || marks[0] != tn.Schema {
		return fmt.Errorf("tenant %s saw marks %v", tn.Schema, marks)
	}
	return nil
}

// TestTenantShareOfPool holds all of one tenant's slots and checks that its
// next call waits and fails while another tenant is served at once.
func TestTenantShareOfPool(t *testing.T) {
	t.Parallel()
	db := tenancytest.Open(t, tenancytest.Options{Name: "share", Shared: sharedSet, Tenant: tenantSet})
	a := tenancytest.NewTenant(t, db)
	b := tenancytest.NewTenant(t, db)
	actx, cancel := context.WithCancel(tenancy.WithTenant(context.Background(), a))
	defer cancel()

	limit := db.Config().MaxConnsPerTenant
	held := make(chan error, limit)
	var wg sync.WaitGroup
	for range limit {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := db.InTenant(actx, func(ctx context.Context, tx pgx.Tx) error {
				held <- nil
				<-ctx.Done()
				return ctx.Err()
			})
			if !errors.Is(err, context.Canceled) {
				held <- err
			}
		}()
	}
	for range limit {
		require.NoError(t, <-held)
	}

	short, stop := context.WithTimeout(actx, 200*time.Millisecond)
	defer stop()
	_, err := tenancy.Rows(short, db, pgx.RowTo[int], "SELECT 1")
	require.ErrorIs(t, err, context.DeadlineExceeded)

	n, err := tenancy.Row(tenancy.WithTenant(context.Background(), b), db, pgx.RowTo[int], "SELECT 1")
	require.NoError(t, err)
	require.Equal(t, 1, n)
	cancel()
	wg.Wait()
}

func TestScopeSettings(t *testing.T) {
	t.Parallel()
	db := openDB(t, tenancy.GuardRole)
	ctx := tenancy.WithTenant(context.Background(), tenancytest.NewTenant(t, db))

	sctx := tenancy.WithSettings(ctx, tenancy.Setting{Name: "app.user_id", Value: "42"},
		tenancy.Setting{Name: "app.note", Value: "it's; fine"})
	got, err := tenancy.Rows(sctx, db, pgx.RowTo[string],
		"SELECT current_setting('app.user_id') UNION ALL SELECT current_setting('app.note')")
	require.NoError(t, err)
	require.Equal(t, []string{"42", "it's; fine"}, got)

	for _, name := range []string{"search_path", "role", "tenancy.tenant", "app.x; DROP TABLE items", "App.x", "app."} {
		bad := tenancy.WithSettings(ctx, tenancy.Setting{Name: name, Value: "x"})
		_, err := tenancy.Rows(bad, db, pgx.RowTo[int], "SELECT 1")
		require.ErrorIs(t, err, tenancy.ErrInvalidSetting, name)
		require.ErrorIs(t, db.InTenant(bad, func(context.Context, pgx.Tx) error { return nil }), tenancy.ErrInvalidSetting)
	}
}

// TestReadScope checks what a scoped read runs under, on its first reads
// (unprepared) and later ones (prepared): the tenant's search path, role
// under the role guard, tenant setting, read-only, with the context's extra
// settings, and a statement text (as pg_stat_activity shows it) that names
// the tenant; and that the connection comes back unscoped.
func TestReadScope(t *testing.T) {
	t.Parallel()
	forGuards(t, func(t *testing.T, db *tenancy.DB) {
		one := tenancytest.Reconfigured(t, db, 1, nil)
		a := tenancytest.NewTenant(t, one)
		ctx := tenancy.WithSettings(tenancy.WithTenant(context.Background(), a),
			tenancy.Setting{Name: "app.user_id", Value: "7"})
		role := one.Config().ServingRole
		if one.Config().Guard == tenancy.GuardRole {
			role = one.Config().TenantRole(a.Schema)
		}
		comment := "/* tenant " + a.Schema + " */"
		want := []string{a.Schema + ", public", role, a.Schema, comment, "on", "7"}
		for i := range 4 {
			got, err := tenancy.Row(ctx, one, pgx.RowTo[[]string], `SELECT ARRAY[
				current_setting('search_path'), current_user::text, current_setting('tenancy.tenant'),
				current_query(), -- what pg_stat_activity shows
				current_setting('transaction_read_only'), current_setting('app.user_id')]`)
			require.NoError(t, err)
			got[0] = strings.ReplaceAll(got[0], `"`, "") // quoted or not, as it was set
			got[3] = got[3][:min(len(got[3]), len(comment))]
			require.Equal(t, want, got, "read %d", i)
			_, err = tenancy.Rows(ctx, one, pgx.RowTo[int], "INSERT INTO items (label) VALUES ('x') RETURNING 1")
			requirePgCode(t, err, "25006") // read_only_sql_transaction
		}
		requireCleanPool(t, one)
	})
}
