package tenancy_test

import (
	"context"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/xatlabs/xat/tenancy"
	"github.com/xatlabs/xat/tenancy/tenancytest"
)

// withTenantSet returns a DB over the same pools as db with another tenant
// migration set, as a newer release of the program would have.
func withTenantSet(db *tenancy.DB, set []tenancy.Migration) *tenancy.DB {
	return db.WithMigrations(db.Config().SharedMigrations, set)
}

// TestMigrateFailureIsolation: one tenant's failing migration is rolled back
// whole and recorded while the others finish; after the fix a rerun
// completes it.
func TestMigrateFailureIsolation(t *testing.T) {
	db := tenancytest.Open(t, tenancytest.Options{Name: "migrate", Shared: sharedSet, Tenant: tenantSet})
	ctx := context.Background()
	ts := make([]*tenancy.Tenant, 4)
	for i := range ts {
		ts[i] = tenancytest.NewTenant(t, db)
	}
	victim := ts[2]

	// The victim already holds a table the new migration wants to create.
	require.NoError(t, db.InTenant(tenancy.WithTenant(ctx, victim), func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "INSERT INTO notes (body) VALUES ('before')")
		return err
	}))
	admin := tenancytest.AdminConn(t, db)
	_, err := admin.Exec(ctx, "CREATE TABLE "+pgx.Identifier{victim.Schema, "tags"}.Sanitize()+" (x int)")
	require.NoError(t, err)

	v3 := append(append([]tenancy.Migration{}, tenantSet...), tenancy.Migration{Version: 3, Name: "tags", SQL: `
		ALTER TABLE notes ADD COLUMN pinned boolean NOT NULL DEFAULT false;
		CREATE TABLE tags (id bigserial PRIMARY KEY, note_id bigint REFERENCES notes (id), tag text);
		CREATE INDEX notes_pinned ON notes (pinned);`})
	next := withTenantSet(db, v3)

	var progress []int
	rep, err := next.Migrate(ctx, tenancy.MigrateOptions{Tenant: true, Parallel: 2, Progress: func(done, failed, total int) {
		progress = append(progress, done)
	}})
	require.ErrorIs(t, err, tenancy.ErrMigrationsFailed)
	require.Len(t, rep.Failed, 1)
	require.Equal(t, victim.Schema, rep.Failed[0].Schema)
	require.GreaterOrEqual(t, rep.Applied, 3)
	require.NotEmpty(t, progress)

	// The victim was rolled back whole: no new column, state at 2 with the
	// error recorded.
	var hasColumn bool
	require.NoError(t, admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM information_schema.columns
		WHERE table_schema = $1 AND table_name = 'notes' AND column_name = 'pinned')`, victim.Schema).Scan(&hasColumn))
	require.False(t, hasColumn)
	st := stateOf(t, next, victim.Schema)
	require.Equal(t, 2, st.Version)
	require.Contains(t, st.LastError, "0003_tags")
	require.True(t, st.Pending())
	for _, tn := range ts {
		if tn != victim {
			require.Equal(t, 3, stateOf(t, next, tn.Schema).Version)
		}
	}

	// Fix and rerun: only the victim is pending, and it completes.
	_, err = admin.Exec(ctx, "DROP TABLE "+pgx.Identifier{victim.Schema, "tags"}.Sanitize())
	require.NoError(t, err)
	rep, err = next.Migrate(ctx, tenancy.MigrateOptions{Tenant: true})
	require.NoError(t, err)
	require.Equal(t, 1, rep.Applied)
	st = stateOf(t, next, victim.Schema)
	require.Equal(t, 3, st.Version)
	require.Empty(t, st.LastError)

	// The new table is guarded like the others.
	rows, err := tenancy.Rows(tenancy.WithTenant(ctx, victim), next, pgx.RowTo[bool], "SELECT pinned FROM notes")
	require.NoError(t, err)
	require.Equal(t, []bool{false}, rows)

	// Nothing pending now: a run applies nothing.
	rep, err = next.Migrate(ctx, tenancy.MigrateOptions{})
	require.NoError(t, err)
	require.Empty(t, rep.Pending)
}

// TestConcurrentMigrators runs two migrators at once; each migration must
// be applied exactly once per schema.
func TestConcurrentMigrators(t *testing.T) {
	db := tenancytest.Open(t, tenancytest.Options{Name: "concurrent", Shared: sharedSet, Tenant: tenantSet})
	ctx := context.Background()
	ts := make([]*tenancy.Tenant, 6)
	for i := range ts {
		ts[i] = tenancytest.NewTenant(t, db)
	}
	v3 := append(append([]tenancy.Migration{}, tenantSet...), tenancy.Migration{Version: 3, Name: "again",
		SQL: "INSERT INTO marks (tenant) VALUES ('v3')"})
	next := withTenantSet(db, v3)

	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = next.Migrate(ctx, tenancy.MigrateOptions{Tenant: true, Parallel: 3})
		}()
	}
	wg.Wait()
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	for _, tn := range ts {
		n, err := tenancy.Row(tenancy.WithTenant(ctx, tn), next, pgx.RowTo[int],
			"SELECT count(*)::int FROM marks WHERE tenant = 'v3'")
		require.NoError(t, err)
		require.Equal(t, 1, n, tn.Schema)
	}
}

func TestMigrateDryRunAndSchemas(t *testing.T) {
	db := tenancytest.Open(t, tenancytest.Options{Name: "dryrun", Shared: sharedSet, Tenant: tenantSet})
	ctx := context.Background()
	a := tenancytest.NewTenant(t, db)
	b := tenancytest.NewTenant(t, db)
	v3 := append(append([]tenancy.Migration{}, tenantSet...), tenancy.Migration{Version: 3, Name: "noop", SQL: "SELECT 1"})
	next := withTenantSet(db, v3)

	rep, err := next.Migrate(ctx, tenancy.MigrateOptions{DryRun: true})
	require.NoError(t, err)
	require.Len(t, rep.Pending, 2)
	require.Zero(t, rep.Applied)
	require.Equal(t, 2, stateOf(t, next, a.Schema).Version)

	rep, err = next.Migrate(ctx, tenancy.MigrateOptions{Tenant: true, Schemas: []string{b.Schema}})
	require.NoError(t, err)
	require.Equal(t, 1, rep.Applied)
	require.Equal(t, 2, stateOf(t, next, a.Schema).Version)
	require.Equal(t, 3, stateOf(t, next, b.Schema).Version)

	_, err = next.Migrate(ctx, tenancy.MigrateOptions{Tenant: true, Schemas: []string{"no_such_schema"}})
	require.ErrorIs(t, err, tenancy.ErrTenantNotFound)
}

func stateOf(t *testing.T, db *tenancy.DB, schema string) tenancy.SchemaState {
	t.Helper()
	all, err := db.Status(context.Background())
	require.NoError(t, err)
	for _, s := range all {
		if s.Schema == schema {
			return s
		}
	}
	t.Fatalf("no state for %s", schema)
	return tenancy.SchemaState{}
}
