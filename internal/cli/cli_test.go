package cli

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/xatlabs/xat/tenancy"
)

// requireOK fails the test unless r succeeded.
func requireOK(t *testing.T, r result) {
	t.Helper()
	require.Equal(t, 0, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
}

// requireFails checks that r failed with code and printed an error holding
// want once, as "xat: ..." on stderr.
func requireFails(t *testing.T, r result, code int, want string) {
	t.Helper()
	require.Equal(t, code, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	require.Regexp(t, `(?m)^xat: `, r.stderr)
	require.Equal(t, 1, strings.Count(r.stderr, "xat: "), "printed more than once: %s", r.stderr)
	require.Contains(t, r.stderr, want)
}

var summaryLine = regexp.MustCompile(`(?m)^\d+ tenant schemas?: \d+ current, 0 pending \(0 failed\); shared \d+/\d+; job queue (\d+)/(\d+)$`)

func TestMigrateAndStatus(t *testing.T) {
	needDB(t)
	t.Parallel()
	acme := newTenant(t)

	r := xat(t, "migrate")
	requireOK(t, r)
	require.Contains(t, r.stdout, fmt.Sprintf("shared: at version %d, nothing to apply\n", latestShared()))
	require.Contains(t, r.stdout, "tenants: 0 applied, 0 failed, 0 pending\n")

	r = xat(t, "migrate", "--dry-run", "--parallel", "4")
	requireOK(t, r)
	require.Contains(t, r.stdout, "dry run: tenants: 0 schemas would migrate\n")
	require.Regexp(t, `(?m)^dry run: job queue: at River version \d+, nothing to apply$`, r.stdout)

	r = xat(t, "migrate", "--schema", acme.schema)
	requireOK(t, r)
	require.NotContains(t, r.stdout, "shared:")

	r = xat(t, "migrate", "--schema", "tenant_missing_"+randomHex(3))
	requireFails(t, r, exitFailure, "tenant not found")

	r = xat(t, "migrate", "status", "--check")
	requireOK(t, r)
	m := summaryLine.FindStringSubmatch(r.stdout)
	require.NotNil(t, m, r.stdout)
	require.Equal(t, m[1], m[2], "the job queue is current")
	require.NotEqual(t, "0", m[1])
	require.NotContains(t, r.stdout, "SCHEMA", "nothing pending, so nothing listed")

	r = xat(t, "migrate", "status", "--all")
	requireOK(t, r)
	require.Regexp(t, `(?m)^public +shared +\d+ +\d+ +current$`, r.stdout)
	require.Regexp(t, `(?m)^public +job queue +\d+ +\d+ +current$`, r.stdout)
	require.Regexp(t, `(?m)^`+acme.schema+` +tenant +\d+ +\d+ +current$`, r.stdout)

	r = xat(t, "migrate", "status", "--json", "--all")
	requireOK(t, r)
	var st statusView
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &st))
	require.Zero(t, st.Summary.Pending)
	require.Equal(t, st.Summary.SharedLatest, st.Summary.SharedVersion)
	require.Equal(t, st.Summary.QueueLatest, st.Summary.QueueVersion)
	require.NotZero(t, st.Summary.QueueVersion)
	require.Equal(t, "public", st.Schemas[0].Schema)
}

func TestTenantLifecycle(t *testing.T) {
	needDB(t)
	t.Parallel()
	id := randomHex(4)
	name := "Acme " + id
	schema := "tenant_acme_" + id
	domain := "acme-" + id + ".localhost"

	r := xat(t, "tenant", "create", name, "--domain", strings.ToUpper(domain),
		"--info-url", "https://acme.example", "--paid-until", "2030-01-31")
	requireOK(t, r)
	require.Contains(t, r.stdout, "schema "+schema+") with primary domain "+domain)

	r = xat(t, "tenant", "create", "Other "+id, "--schema", schema, "--domain", "other-"+domain)
	requireFails(t, r, exitFailure, "schema already exists")
	r = xat(t, "tenant", "create", "Other "+id, "--domain", domain)
	requireFails(t, r, exitFailure, "domain already belongs to a tenant: "+domain)

	r = xat(t, "tenant", "list")
	requireOK(t, r)
	require.Regexp(t, `(?m)^\d+ +`+schema+` +`+name+` +yes +\d{4}-\d\d-\d\d +2030-01-31$`, r.stdout)

	r = xat(t, "tenant", "list", "--json")
	requireOK(t, r)
	var tenants []tenancy.Tenant
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &tenants))
	require.Contains(t, schemasOf(tenants), schema)

	r = xat(t, "tenant", "show", schema)
	requireOK(t, r)
	require.Regexp(t, `(?m)^Migrations: +version \d+ of \d+, current$`, r.stdout)
	require.Contains(t, r.stdout, "  "+domain+" (primary)\n")

	r = xat(t, "tenant", "show", schema, "--json")
	requireOK(t, r)
	var shown struct {
		tenancy.Tenant
		Role       string
		Domains    []tenancy.Domain
		Migrations tenancy.SchemaState
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &shown))
	require.Equal(t, name, shown.Name)
	require.Equal(t, "https://acme.example", shown.InfoURL)
	require.Equal(t, testDB.rolePrefix+schema, shown.Role)
	require.Equal(t, []tenancy.Domain{{Domain: domain, TenantID: shown.ID, IsPrimary: true}}, shown.Domains)
	require.False(t, shown.Migrations.Pending())

	// Deleting needs both confirmation flags, then a deactivated tenant.
	r = xat(t, "tenant", "delete", schema)
	requireFails(t, r, exitUsage, "drops the schema "+schema+", the tenant's database role and all of its data")
	r = xat(t, "tenant", "delete", schema, "--drop")
	requireFails(t, r, exitUsage, "pass --drop --yes to confirm")
	r = xat(t, "tenant", "delete", schema, "--drop", "--yes")
	requireFails(t, r, exitFailure, "tenant "+schema+" is active; deactivate it first")

	requireOK(t, xat(t, "tenant", "deactivate", schema))
	r = xat(t, "tenant", "show", schema)
	require.Regexp(t, `(?m)^Active: +no$`, r.stdout)
	r = xat(t, "tenant", "activate", schema)
	requireOK(t, r)
	require.Contains(t, r.stdout, "Tenant "+schema+" ("+name+") activated")
	requireOK(t, xat(t, "tenant", "deactivate", schema))

	r = xat(t, "tenant", "delete", schema, "--drop", "--yes")
	requireOK(t, r)
	require.Contains(t, r.stdout, "Deleted tenant "+schema)

	requireFails(t, xat(t, "tenant", "show", schema), exitFailure, "tenant not found")
	requireFails(t, xat(t, "tenant", "activate", schema), exitFailure, "tenant not found")
	requireFails(t, xat(t, "tenant", "delete", schema, "--drop", "--yes"), exitFailure, "tenant not found")
}

func schemasOf(tenants []tenancy.Tenant) []string {
	out := make([]string, len(tenants))
	for i, t := range tenants {
		out[i] = t.Schema
	}
	return out
}

func TestDomains(t *testing.T) {
	needDB(t)
	t.Parallel()
	acme, other := newTenant(t), newTenant(t)
	www := "www." + acme.domain

	r := xat(t, "domain", "add", acme.schema, www)
	requireOK(t, r)
	require.Contains(t, r.stdout, "Added domain "+www+" to "+acme.schema)

	requireFails(t, xat(t, "domain", "add", other.schema, www), exitFailure, "domain already belongs to a tenant")
	requireFails(t, xat(t, "domain", "add", "tenant_missing_"+randomHex(3), "x-"+www), exitFailure, "tenant not found")
	requireFails(t, xat(t, "domain", "remove", acme.domain), exitFailure, "make another primary first")
	requireFails(t, xat(t, "domain", "remove", "missing-"+www), exitFailure, "domain not found")
	requireFails(t, xat(t, "domain", "primary", "missing-"+www), exitFailure, "domain not found")

	requireOK(t, xat(t, "domain", "primary", strings.ToUpper(www)+"."))
	r = xat(t, "tenant", "show", acme.schema)
	require.Contains(t, r.stdout, "  "+www+" (primary)\n  "+acme.domain+"\n")

	requireOK(t, xat(t, "domain", "remove", acme.domain))
	requireFails(t, xat(t, "domain", "remove", acme.domain), exitFailure, "domain not found")

	r = xat(t, "domain", "add", acme.schema, "api."+acme.domain, "--primary")
	requireOK(t, r)
	r = xat(t, "tenant", "show", acme.schema)
	require.Contains(t, r.stdout, "  api."+acme.domain+" (primary)\n  "+www+"\n")
}

func TestBadArguments(t *testing.T) {
	needDB(t)
	t.Parallel()
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"unknown flag", []string{"tenant", "list", "--bogus"}, nil, "unknown flag: --bogus"},
		{"unknown command", []string{"tenant", "frobnicate"}, nil, `unknown command "frobnicate" for "xat tenant"`},
		{"unknown top command", []string{"migrat"}, nil, `unknown command "migrat" for "xat"; did you mean "migrate"?`},
		{"missing name", []string{"tenant", "create"}, nil, "missing NAME"},
		{"missing domain", []string{"tenant", "create", "Acme"}, nil, "--domain is required"},
		{"invalid domain", []string{"tenant", "create", "Acme", "--domain", "-acme.test"}, nil, `--domain: invalid domain "-acme.test"`},
		{"invalid schema", []string{"tenant", "create", "Acme", "--domain", "acme.test", "--schema", "Acme"}, nil,
			`invalid schema name "Acme": must start with "tenant_"`},
		{"reserved schema", []string{"tenant", "show", "pg_catalog"}, nil, `invalid schema name "pg_catalog": must not start with pg_`},
		{"schema without prefix", []string{"tenant", "deactivate", "acme"}, nil, `invalid schema name "acme": must start with "tenant_"`},
		{"underivable schema", []string{"tenant", "create", "!!!", "--domain", "acme.test"}, nil,
			`cannot derive a schema name from "!!!" (invalid schema name "tenant_": must have a name after the prefix "tenant_"); pass --schema`},
		{"bare prefix schema", []string{"tenant", "show", "tenant_"}, nil, "must have a name after the prefix"},
		{"bad date", []string{"tenant", "create", "Acme", "--domain", "acme.test", "--paid-until", "31/01/2030"}, nil,
			`--paid-until: want a date as YYYY-MM-DD, got "31/01/2030"`},
		{"bad info url", []string{"tenant", "create", "Acme", "--domain", "acme.test", "--info-url", "acme.example"}, nil,
			"--info-url: want an absolute http or https URL"},
		{"extra argument", []string{"tenant", "show", "tenant_a", "tenant_b"}, nil, `unexpected argument "tenant_b"`},
		{"parallel zero", []string{"migrate", "--parallel", "0"}, nil, "--parallel must be at least 1, got 0"},
		{"parallel not a number", []string{"migrate", "--parallel", "many"}, nil, `invalid argument "many" for "--parallel"`},
		{"migrate bad schema", []string{"migrate", "--schema", "public"}, nil, `--schema: invalid schema name "public"`},
		{"delete without yes", []string{"tenant", "delete", "tenant_acme", "--drop"}, nil, "pass --drop --yes to confirm"},
		{"exec without scope", []string{"tenant", "exec", "--", "SELECT 1"}, nil, "pass either --schema SCHEMA or --all"},
		{"exec with both scopes", []string{"tenant", "exec", "--all", "--schema", "tenant_a", "--", "SELECT 1"}, nil,
			"pass either --schema SCHEMA or --all"},
		{"exec without sql", []string{"tenant", "exec", "--schema", "tenant_a"}, nil, "missing SQL"},
		{"exec parallel zero", []string{"tenant", "exec", "--all", "--parallel", "0", "--", "SELECT 1"}, nil,
			"--parallel must be at least 1"},
		{"exec parallel without all", []string{"tenant", "exec", "--schema", "tenant_a", "--parallel", "2", "--", "SELECT 1"}, nil,
			"--parallel works only with --all"},
		{"dbshell without schema", []string{"dbshell"}, nil, "--schema is required"},
		{"domain missing argument", []string{"domain", "add", "tenant_a"}, nil, "missing DOMAIN"},
		{"domain is an address", []string{"domain", "primary", "10.0.0.1"}, nil, "must be a host name, not an IP address"},
		{"bad setting", []string{"tenant", "list"}, map[string]string{"XAT_GUARD": "rls"},
			`XAT_GUARD (--guard): unknown guard "rls": want role or policy`},
		{"bad setting flag", []string{"tenant", "list", "--log-level", "loud"}, nil,
			`XAT_LOG_LEVEL (--log-level): invalid value "loud"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := xatWith(t, tt.env, "", tt.args...)
			requireFails(t, r, exitUsage, tt.want)
			require.Empty(t, r.stdout)
			require.NotContains(t, r.stderr, "goroutine")
		})
	}
}

func TestHelp(t *testing.T) {
	needDB(t)
	t.Parallel()
	for _, args := range [][]string{nil, {"tenant"}, {"tenant", "create", "--help"}, {"help", "migrate"}} {
		r := xat(t, args...)
		requireOK(t, r)
		require.Contains(t, r.stdout, "Usage:")
	}
}

// TestExec does not run in parallel: with --all it visits every tenant, and
// other tests create and delete theirs.
func TestExec(t *testing.T) {
	needDB(t)
	a, b := newTenant(t), newTenant(t)

	r := xat(t, "tenant", "exec", "--schema", a.schema, "--",
		"SELECT current_schema() AS schema, current_user AS role, NULL AS nothing")
	requireOK(t, r)
	require.Equal(t, "== "+a.schema+"\n"+
		tableText([]string{"schema", "role", "nothing"}, []string{a.schema, testDB.rolePrefix + a.schema, "NULL"})+
		"(1 row)\n\n", r.stdout)

	r = xat(t, "tenant", "exec", "--schema", a.schema, "--", "UPDATE collectors SET site_name = 'x'")
	requireOK(t, r)
	require.Equal(t, "== "+a.schema+"\nUPDATE 0\n\n", r.stdout)

	r = xat(t, "tenant", "exec", "--schema", "tenant_missing_"+randomHex(3), "--", "SELECT 1")
	requireFails(t, r, exitFailure, "tenant not found")

	// B cannot reach A's tables, even by their qualified names.
	r = xat(t, "tenant", "exec", "--schema", b.schema, "--", "SELECT count(*) FROM "+a.schema+".collectors")
	requireFails(t, r, exitFailure, b.schema+": ERROR: permission denied for schema "+a.schema)

	r = xat(t, "tenant", "exec", "--all", "--", "SELECT current_schema()")
	requireOK(t, r)
	require.Contains(t, r.stdout, "== "+a.schema+"\ncurrent_schema\n"+a.schema+"\n(1 row)\n")
	require.Contains(t, r.stdout, "== "+b.schema+"\ncurrent_schema\n"+b.schema+"\n(1 row)\n")

	r = xat(t, "tenant", "exec", "--all", "--parallel", "2", "--", "SELECT count(*) FROM "+a.schema+".collectors")
	requireFails(t, r, exitFailure, "SQL failed in 1 of 2 tenants")
	require.Contains(t, r.stdout, "== "+a.schema+"\ncount\n0\n(1 row)\n")
	require.Contains(t, r.stdout, "== "+b.schema+"\nerror: ERROR: permission denied for schema "+a.schema)
}

// tableText is the aligned table the commands print for one row.
func tableText(header, row []string) string {
	var sb strings.Builder
	_ = table(&sb, header, [][]string{row})
	return sb.String()
}

func TestDBShell(t *testing.T) {
	needDB(t)
	t.Parallel()
	if _, err := findPsql(""); err != nil {
		t.Skip(err)
	}
	a, b := newTenant(t), newTenant(t)

	script := `\pset format unaligned
SELECT current_user, current_setting('search_path'), current_setting('tenancy.tenant'), current_setting('application_name');
SELECT count(*) FROM collectors;
SELECT count(*) FROM ` + b.schema + `.collectors;
`
	r := xatWith(t, nil, script, "dbshell", "--schema", a.schema)
	requireOK(t, r)
	require.Contains(t, r.stdout, testDB.rolePrefix+a.schema+"|"+a.schema+",public|"+a.schema+"|xat:dbshell:"+a.schema)
	require.Contains(t, r.stderr, "permission denied for schema "+b.schema)

	r = xatWith(t, nil, `\q`, "dbshell", "--schema", "tenant_missing_"+randomHex(3))
	requireFails(t, r, exitFailure, "tenant not found")

	// psql's own exit status comes through, and xat adds nothing to it.
	r = xatWith(t, nil, "\\set ON_ERROR_STOP on\nSELECT 1/0;\n", "dbshell", "--schema", a.schema)
	require.Equal(t, 3, r.code)
	require.Contains(t, r.stderr, "division by zero")
	require.NotContains(t, r.stderr, "xat:")
}

func TestSetupHints(t *testing.T) {
	needDB(t)
	t.Parallel()

	// Another prefix names roles that no migration run has created.
	fresh := map[string]string{"XAT_ROLE_PREFIX": "xn" + randomHex(4) + "_"}
	r := xatWith(t, fresh, "", "tenant", "list")
	requireFails(t, r, exitFailure, "does not exist")
	require.Contains(t, r.stderr, "hint: run 'xat migrate' to install tenancy in this database")

	// The serving role is set up for the role guard.
	r = xatWith(t, map[string]string{"XAT_GUARD": "policy"}, "", "tenant", "list")
	requireFails(t, r, exitFailure, "must be INHERIT under the policy guard")
	require.Contains(t, r.stderr, "hint: 'xat migrate' sets the serving role up for the configured XAT_GUARD")
}
