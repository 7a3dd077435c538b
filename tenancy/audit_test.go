package tenancy_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/xatlabs/xat/tenancy"
	"github.com/xatlabs/xat/tenancy/tenancytest"
)

// TestAudit tampers with a healthy database one way at a time and checks
// that the audit names each deviation, and only it.
func TestAudit(t *testing.T) {
	db := tenancytest.Open(t, tenancytest.Options{Name: "audit", Shared: sharedSet, Tenant: tenantSet})
	ctx := context.Background()
	a := tenancytest.NewTenant(t, db)
	b := tenancytest.NewTenant(t, db)
	admin := tenancytest.AdminConn(t, db)

	rep, err := db.Audit(ctx)
	require.NoError(t, err)
	require.Empty(t, rep.Findings, "a healthy database has no findings")
	require.GreaterOrEqual(t, rep.Tenants, 2)

	exec := func(sql string) {
		t.Helper()
		_, err := admin.Exec(ctx, sql)
		require.NoError(t, err, sql)
	}
	aItems := pgx.Identifier{a.Schema, "items"}.Sanitize()
	bRole := pgx.Identifier{db.Config().TenantRole(b.Schema)}.Sanitize()
	serving := pgx.Identifier{db.Config().ServingRole}.Sanitize()

	tests := []struct {
		name, tamper, undo  string
		check, schema, says string
	}{
		{"cross grant", "GRANT SELECT ON " + aItems + " TO " + bRole, "REVOKE SELECT ON " + aItems + " FROM " + bRole,
			tenancy.CheckPrivileges, a.Schema, db.Config().TenantRole(b.Schema)},
		{"public grant", "GRANT SELECT ON " + aItems + " TO PUBLIC", "REVOKE SELECT ON " + aItems + " FROM PUBLIC",
			tenancy.CheckPrivileges, a.Schema, "PUBLIC"},
		{"rls off", "ALTER TABLE " + aItems + " DISABLE ROW LEVEL SECURITY", "ALTER TABLE " + aItems + " ENABLE ROW LEVEL SECURITY",
			tenancy.CheckRLS, a.Schema, "row-level security is off"},
		{"rls not forced", "ALTER TABLE " + aItems + " NO FORCE ROW LEVEL SECURITY", "ALTER TABLE " + aItems + " FORCE ROW LEVEL SECURITY",
			tenancy.CheckRLS, a.Schema, "not forced"},
		{"extra column", "ALTER TABLE " + aItems + " ADD COLUMN sneaky text", "ALTER TABLE " + aItems + " DROP COLUMN sneaky",
			tenancy.CheckFingerprint, a.Schema, "differ"},
		{"tenant table in public", "CREATE TABLE public.items (id int)", "DROP TABLE public.items",
			tenancy.CheckPublic, "public", "items"},
		{"serving inherits", "ALTER ROLE " + serving + " INHERIT", "ALTER ROLE " + serving + " NOINHERIT",
			tenancy.CheckRoles, "", "NOINHERIT"},
		{"tenant role can log in", "ALTER ROLE " + bRole + " LOGIN", "ALTER ROLE " + bRole + " NOLOGIN",
			tenancy.CheckRoles, b.Schema, "LOGIN"},
		{"unregistered tenant schema", "CREATE SCHEMA rogue; CREATE TABLE rogue.x (id int); CREATE POLICY tenancy_guard ON rogue.x USING (true)",
			"DROP SCHEMA rogue CASCADE", tenancy.CheckRegistry, "rogue", "not registered"},
		{"failed migration", "UPDATE public.tenancy_schema_state SET last_error = 'boom' WHERE schema_name = '" + a.Schema + "'",
			"UPDATE public.tenancy_schema_state SET last_error = NULL WHERE schema_name = '" + a.Schema + "'",
			tenancy.CheckVersion, a.Schema, "boom"},
	}
	for _, tt := range tests {
		exec(tt.tamper)
		rep, err := db.Audit(ctx)
		exec(tt.undo)
		require.NoError(t, err, tt.name)
		require.Len(t, rep.Findings, 1, "%s: %+v", tt.name, rep.Findings)
		f := rep.Findings[0]
		require.Equal(t, tt.check, f.Check, tt.name)
		require.Equal(t, tt.schema, f.Schema, tt.name)
		require.True(t, strings.Contains(f.Detail, tt.says), "%s: %q lacks %q", tt.name, f.Detail, tt.says)
	}

	rep, err = db.Audit(ctx)
	require.NoError(t, err)
	require.Empty(t, rep.Findings)
}
