package tenancy_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/xatlabs/xat/tenancy"
	"github.com/xatlabs/xat/tenancy/tenancytest"
)

// roleCount counts the roles of that name; roles are global to the cluster.
func roleCount(t *testing.T, role string) int {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), tenancytest.ConnString(t))
	require.NoError(t, err)
	defer conn.Close(context.Background())

	var n int
	err = conn.QueryRow(context.Background(), `
		SELECT count(*)::int FROM pg_roles WHERE rolname = $1`, role).Scan(&n)
	require.NoError(t, err)
	return n
}

// dbLeftovers counts what a tenant with this schema and domain would leave
// behind: its registry row, domain row, schema and role.
func dbLeftovers(t *testing.T, db *tenancy.DB, schema, domain string) int {
	t.Helper()
	ctx := context.Background()
	var n int
	err := db.Control(ctx, func(ctx context.Context, tx pgx.Tx) error {
		return tx.QueryRow(ctx, `
			SELECT (SELECT count(*) FROM public.tenants WHERE schema_name = $1)
			     + (SELECT count(*) FROM public.domains WHERE domain = $2)
			     + (SELECT count(*) FROM pg_namespace WHERE nspname = $1)`, schema, domain).Scan(&n)
	})
	require.NoError(t, err)
	return n + roleCount(t, db.Config().TenantRole(schema))
}

func TestCreateTenant(t *testing.T) {
	t.Parallel()
	forGuards(t, func(t *testing.T, db *tenancy.DB) {
		ctx := context.Background()
		a := tenancytest.NewTenant(t, db)
		require.True(t, a.Active)

		got, err := db.Tenant(ctx, a.Schema)
		require.NoError(t, err)
		require.Equal(t, a.ID, got.ID)

		domains, err := db.Domains(ctx, a.Schema)
		require.NoError(t, err)
		require.Len(t, domains, 1)
		require.True(t, domains[0].IsPrimary)

		byDomain, err := db.TenantByDomain(ctx, domains[0].Domain)
		require.NoError(t, err)
		require.Equal(t, a.ID, byDomain.ID)

		status, err := db.Status(ctx)
		require.NoError(t, err)
		var found bool
		for _, s := range status {
			if s.Schema == a.Schema {
				found = true
				require.Equal(t, 2, s.Version)
				require.False(t, s.Pending())
			}
		}
		require.True(t, found)

		// Every tenant table carries the forced guard policy.
		var unguarded int
		err = db.Control(ctx, func(ctx context.Context, tx pgx.Tx) error {
			return tx.QueryRow(ctx, `
				SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
				WHERE n.nspname = $1 AND c.relkind = 'r'
				  AND NOT (c.relrowsecurity AND c.relforcerowsecurity
				           AND EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = 'tenancy_guard'))`,
				a.Schema).Scan(&unguarded)
		})
		require.NoError(t, err)
		require.Zero(t, unguarded)
	})
}

func TestCreateTenantRejectsBadInput(t *testing.T) {
	t.Parallel()
	db := openDB(t, tenancy.GuardRole)
	ctx := context.Background()
	tests := []struct {
		nt   tenancy.NewTenant
		want error
	}{
		{tenancy.NewTenant{Name: "x", Schema: "public", Domain: "x.test"}, tenancy.ErrInvalidSchema},
		{tenancy.NewTenant{Name: "x", Schema: "pg_x", Domain: "x.test"}, tenancy.ErrInvalidSchema},
		{tenancy.NewTenant{Name: "x", Schema: `x"; drop schema public; --`, Domain: "x.test"}, tenancy.ErrInvalidSchema},
		{tenancy.NewTenant{Name: "x", Schema: "okschema", Domain: "bad domain"}, tenancy.ErrInvalidDomain},
		{tenancy.NewTenant{Name: "x", Schema: "okschema", Domain: ""}, tenancy.ErrInvalidDomain},
	}
	for _, tt := range tests {
		_, err := db.CreateTenant(ctx, tt.nt)
		require.ErrorIs(t, err, tt.want, "%+v", tt.nt)
	}
	_, err := db.CreateTenant(ctx, tenancy.NewTenant{Name: "", Schema: "okschema", Domain: "ok.test"})
	require.Error(t, err)
}

func TestCreateTenantIsAtomic(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("failing last migration", func(t *testing.T) {
		t.Parallel()
		broken := append(append([]tenancy.Migration{}, tenantSet...),
			tenancy.Migration{Version: 3, Name: "broken", SQL: "CREATE TABLE oops (id int); SELECT 1/0;"})
		db := tenancytest.Open(t, tenancytest.Options{Name: "broken", Shared: sharedSet, Tenant: broken})
		_, err := db.CreateTenant(ctx, tenancy.NewTenant{Name: "Broken", Schema: "broken_one", Domain: "broken-one.test"})
		require.ErrorContains(t, err, "0003_broken")
		require.ErrorContains(t, err, "division by zero")
		require.Zero(t, dbLeftovers(t, db, "broken_one", "broken-one.test"))
	})

	t.Run("failing domain insert", func(t *testing.T) {
		t.Parallel()
		db := openDB(t, tenancy.GuardRole)
		a := tenancytest.NewTenant(t, db)
		domains, err := db.Domains(ctx, a.Schema)
		require.NoError(t, err)

		_, err = db.CreateTenant(ctx, tenancy.NewTenant{Name: "Thief", Schema: "thief_x1", Domain: domains[0].Domain})
		require.ErrorIs(t, err, tenancy.ErrDomainExists)
		require.Zero(t, dbLeftovers(t, db, "thief_x1", "nothing.test"))
		// The original owner keeps its domain.
		owner, err := db.TenantByDomain(ctx, domains[0].Domain)
		require.NoError(t, err)
		require.Equal(t, a.ID, owner.ID)
	})

	t.Run("duplicate schema", func(t *testing.T) {
		t.Parallel()
		db := openDB(t, tenancy.GuardRole)
		a := tenancytest.NewTenant(t, db)
		_, err := db.CreateTenant(ctx, tenancy.NewTenant{Name: "Dup", Schema: a.Schema, Domain: "dup-x2.test"})
		require.ErrorIs(t, err, tenancy.ErrSchemaExists)
	})
}

func TestConcurrentCreateSameSchema(t *testing.T) {
	t.Parallel()
	db := openDB(t, tenancy.GuardRole)
	ctx := context.Background()

	const n = 4
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = db.CreateTenant(ctx, tenancy.NewTenant{
				Name: "Race", Schema: "race_same", Domain: "race-" + string(rune('a'+i)) + ".test"})
		}()
	}
	wg.Wait()

	wins := 0
	for _, err := range errs {
		if err == nil {
			wins++
			continue
		}
		require.ErrorIs(t, err, tenancy.ErrSchemaExists)
	}
	require.Equal(t, 1, wins)
	_, err := db.SetActive(ctx, "race_same", false)
	require.NoError(t, err)
	require.NoError(t, db.DeleteTenant(ctx, "race_same"))
}

func TestDeleteTenant(t *testing.T) {
	t.Parallel()
	forGuards(t, func(t *testing.T, db *tenancy.DB) {
		ctx := context.Background()
		schema := "del_" + string(rune('a'+int(db.Config().Guard)))
		domain := strings.ReplaceAll(schema, "_", "-") + ".test"
		a, err := db.CreateTenant(ctx, tenancy.NewTenant{Name: "Doomed", Schema: schema, Domain: domain})
		require.NoError(t, err)
		insertItem(t, db, tenancy.WithTenant(ctx, a), "keep me")

		require.ErrorIs(t, db.DeleteTenant(ctx, schema), tenancy.ErrTenantActive)
		_, err = db.SetActive(ctx, schema, false)
		require.NoError(t, err)

		// Deactivated data is kept until the explicit delete.
		require.Equal(t, 4, dbLeftovers(t, db, schema, domain))
		require.NoError(t, db.DeleteTenant(ctx, schema))
		require.Zero(t, dbLeftovers(t, db, schema, domain))
		require.ErrorIs(t, db.DeleteTenant(ctx, schema), tenancy.ErrTenantNotFound)
	})
}

func TestDomains(t *testing.T) {
	t.Parallel()
	db := openDB(t, tenancy.GuardRole)
	ctx := context.Background()
	a := tenancytest.NewTenant(t, db)
	b := tenancytest.NewTenant(t, db)
	first, err := db.Domains(ctx, a.Schema)
	require.NoError(t, err)

	second := "second-" + a.Schema[2:] + ".test"
	require.NoError(t, db.AddDomain(ctx, a.Schema, "Second-"+a.Schema[2:]+".TEST.", false))
	require.ErrorIs(t, db.AddDomain(ctx, b.Schema, second, false), tenancy.ErrDomainExists)
	require.ErrorIs(t, db.AddDomain(ctx, a.Schema, "bad_domain", false), tenancy.ErrInvalidDomain)
	require.ErrorIs(t, db.AddDomain(ctx, "nobody", "free.test", false), tenancy.ErrTenantNotFound)

	require.ErrorIs(t, db.RemoveDomain(ctx, first[0].Domain), tenancy.ErrPrimaryDomain)
	require.NoError(t, db.SetPrimaryDomain(ctx, second))
	got, err := db.Domains(ctx, a.Schema)
	require.NoError(t, err)
	require.Equal(t, second, got[0].Domain)
	require.True(t, got[0].IsPrimary)
	require.False(t, got[1].IsPrimary)

	require.NoError(t, db.RemoveDomain(ctx, first[0].Domain))
	require.ErrorIs(t, db.RemoveDomain(ctx, first[0].Domain), tenancy.ErrDomainNotFound)
	require.ErrorIs(t, db.SetPrimaryDomain(ctx, "unknown.test"), tenancy.ErrDomainNotFound)
}
