package tenancy

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Finding is one problem found by Audit.
type Finding struct {
	Check  string `json:"check"`
	Schema string `json:"schema,omitempty"`
	Detail string `json:"detail"`
}

// AuditReport is the result of Audit: the checks run and what they found.
type AuditReport struct {
	Checks   []string  `json:"checks"`
	Tenants  int       `json:"tenants"`
	Findings []Finding `json:"findings"`
}

// The checks Audit runs, in order.
const (
	CheckRegistry    = "registry"           // registered tenants have their schema and role; tenant-like schemas are registered
	CheckFingerprint = "catalog"            // each tenant schema holds exactly the expected tables and columns
	CheckVersion     = "version"            // each tenant schema is at the latest version, with no failure recorded
	CheckPublic      = "public_schema"      // no tenant table exists in public
	CheckPrivileges  = "privileges"         // no privilege on a tenant schema or table reaches another tenant
	CheckRLS         = "row_level_security" // every tenant table has forced row-level security and the guard policy
	CheckRoles       = "roles"              // serving and tenant roles have safe attributes
)

// Audit runs the security checklist against the live database and reports
// every deviation. It reads catalogs only, through the admin pool, except
// for a scratch schema provisioned inside a transaction that is rolled
// back, which gives the expected catalog of a tenant at the latest version.
func (db *DB) Audit(ctx context.Context) (*AuditReport, error) {
	rep := &AuditReport{Checks: []string{CheckRegistry, CheckFingerprint, CheckVersion, CheckPublic,
		CheckPrivileges, CheckRLS, CheckRoles}}
	tenants, err := db.Tenants(ctx)
	if err != nil {
		return nil, err
	}
	rep.Tenants = len(tenants)

	steps := []func(context.Context, *AuditReport) error{
		db.auditRegistry, db.auditCatalog, db.auditVersions, db.auditPrivileges, db.auditRLS, db.auditRoles,
	}
	for _, step := range steps {
		if err := step(ctx, rep); err != nil {
			return nil, fmt.Errorf("audit: %w", err)
		}
	}
	return rep, nil
}

func (db *DB) collect(ctx context.Context, rep *AuditReport, check, sql string, args ...any) error {
	rows, err := db.admin.Query(ctx, sql, args...)
	if err != nil {
		return fmt.Errorf("%s: %w", check, err)
	}
	found, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Finding, error) {
		f := Finding{Check: check}
		return f, r.Scan(&f.Schema, &f.Detail)
	})
	if err != nil {
		return fmt.Errorf("%s: %w", check, err)
	}
	rep.Findings = append(rep.Findings, found...)
	return nil
}

func (db *DB) auditRegistry(ctx context.Context, rep *AuditReport) error {
	err := db.collect(ctx, rep, CheckRegistry, `
		SELECT t.schema_name, 'registered tenant has no schema'
		FROM public.tenants t
		WHERE NOT EXISTS (SELECT 1 FROM pg_namespace n WHERE n.nspname = t.schema_name)
		ORDER BY 1`)
	if err != nil {
		return err
	}
	for _, t := range mustTenants(ctx, db) {
		var ok bool
		if err := db.admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)",
			db.cfg.TenantRole(t)).Scan(&ok); err != nil {
			return err
		}
		if !ok {
			rep.Findings = append(rep.Findings, Finding{CheckRegistry, t, "registered tenant has no role " + db.cfg.TenantRole(t)})
		}
	}
	// A tenant-like schema: one with the configured prefix, or one holding
	// tenancy's guard policy.
	return db.collect(ctx, rep, CheckRegistry, `
		SELECT n.nspname, 'schema looks like a tenant schema but is not registered'
		FROM pg_namespace n
		WHERE n.nspname NOT IN ('public', 'information_schema')
		  AND n.nspname NOT LIKE 'pg\_%'
		  AND NOT EXISTS (SELECT 1 FROM public.tenants t WHERE t.schema_name = n.nspname)
		  AND (($1 <> '' AND starts_with(n.nspname, $1))
		       OR EXISTS (SELECT 1 FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
		                  WHERE c.relnamespace = n.oid AND p.polname = 'tenancy_guard'))
		ORDER BY 1`, db.cfg.SchemaPrefix)
}

func mustTenants(ctx context.Context, db *DB) []string {
	ts, _ := db.Tenants(ctx)
	out := make([]string, 0, len(ts))
	for _, t := range ts {
		out = append(out, t.Schema)
	}
	return out
}

// fingerprintSQL describes a schema's tables and columns as one text; two
// schemas with the same text have the same shape.
const fingerprintSQL = `
	SELECT coalesce(string_agg(c.relname || '.' || a.attname || ':' || format_type(a.atttypid, a.atttypmod)
	                           || CASE WHEN a.attnotnull THEN '!' ELSE '' END, ',' ORDER BY c.relname, a.attnum), '')
	FROM pg_class c
	JOIN pg_namespace n ON n.oid = c.relnamespace
	JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
	WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')`

var errRollback = errors.New("rollback scratch schema")

// expectedCatalog provisions a scratch schema in a transaction that is
// rolled back and returns its fingerprint and table names.
func (db *DB) expectedCatalog(ctx context.Context) (string, []string, error) {
	const scratch = "tenancy_audit_scratch"
	var fp string
	var tables []string
	err := pgx.BeginFunc(ctx, db.admin, func(tx pgx.Tx) error {
		prelude := "SET LOCAL search_path = " + quoteIdent(scratch) + ", public; SET LOCAL " +
			TenantSetting + " = " + quoteLiteral(scratch)
		if _, err := tx.Exec(ctx, prelude); err != nil {
			return err
		}
		if err := db.provision(ctx, tx, scratch); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, fingerprintSQL, scratch).Scan(&fp); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') ORDER BY 1`, scratch)
		if err != nil {
			return err
		}
		if tables, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return err
		}
		return errRollback
	})
	if errors.Is(err, errRollback) {
		err = nil
	}
	return fp, tables, err
}

func (db *DB) auditCatalog(ctx context.Context, rep *AuditReport) error {
	want, tables, err := db.expectedCatalog(ctx)
	if err != nil {
		return fmt.Errorf("expected catalog: %w", err)
	}
	// Schemas behind the latest version differ legitimately; the version
	// check reports them.
	err = db.collect(ctx, rep, CheckFingerprint, `
		SELECT t.schema_name, 'tables or columns differ from a fresh tenant at version ' || $2::int
		FROM public.tenants t
		JOIN public.tenancy_schema_state s ON s.schema_name = t.schema_name AND s.component = 'tenant'
		JOIN pg_namespace n ON n.nspname = t.schema_name
		WHERE s.version = $2::int
		  AND (SELECT coalesce(string_agg(c.relname || '.' || a.attname || ':' || format_type(a.atttypid, a.atttypmod)
		              || CASE WHEN a.attnotnull THEN '!' ELSE '' END, ',' ORDER BY c.relname, a.attnum), '')
		       FROM pg_class c
		       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
		       WHERE c.relnamespace = n.oid AND c.relkind IN ('r', 'p')) IS DISTINCT FROM $1
		ORDER BY 1`, want, latest(db.cfg.TenantMigrations))
	if err != nil {
		return err
	}
	return db.collect(ctx, rep, CheckPublic, `
		SELECT 'public', 'tenant table ' || c.relname || ' exists in public'
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm') AND c.relname = ANY ($1)
		ORDER BY 2`, tables)
}

func (db *DB) auditVersions(ctx context.Context, rep *AuditReport) error {
	states, err := db.tenantStates(ctx, nil, true)
	if err != nil {
		return err
	}
	for _, s := range states {
		detail := fmt.Sprintf("at version %d of %d", s.Version, s.Latest)
		if s.LastError != "" {
			detail += "; last migration failed: " + s.LastError
		}
		rep.Findings = append(rep.Findings, Finding{CheckVersion, s.Schema, detail})
	}
	return nil
}

// auditPrivileges lists every grant on a tenant schema, table or sequence
// whose grantee is neither the owner nor that tenant's own role, and every
// grant on the registry to a tenant role.
func (db *DB) auditPrivileges(ctx context.Context, rep *AuditReport) error {
	err := db.collect(ctx, rep, CheckPrivileges, `
		WITH t AS (SELECT schema_name, $1 || schema_name AS own FROM public.tenants)
		SELECT t.schema_name, 'schema grants ' || a.privilege_type || ' to ' ||
		       CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END
		FROM t
		JOIN pg_namespace n ON n.nspname = t.schema_name
		CROSS JOIN LATERAL aclexplode(coalesce(n.nspacl, acldefault('n'::"char", n.nspowner))) a
		WHERE a.grantee <> n.nspowner AND (a.grantee = 0 OR pg_get_userbyid(a.grantee) <> t.own)
		  AND NOT (a.grantee <> 0 AND pg_get_userbyid(a.grantee) = $2 AND a.privilege_type = 'USAGE')
		UNION ALL
		SELECT t.schema_name, c.relname || ' grants ' || a.privilege_type || ' to ' ||
		       CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END
		FROM t
		JOIN pg_namespace n ON n.nspname = t.schema_name
		JOIN pg_class c ON c.relnamespace = n.oid AND c.relkind IN ('r', 'p', 'S', 'v', 'm')
		CROSS JOIN LATERAL aclexplode(coalesce(c.relacl, acldefault((CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END)::"char", c.relowner))) a
		WHERE a.grantee <> c.relowner AND (a.grantee = 0 OR pg_get_userbyid(a.grantee) <> t.own)
		  AND NOT (a.grantee <> 0 AND pg_get_userbyid(a.grantee) = $2 AND a.privilege_type = 'SELECT')
		ORDER BY 1, 2`, db.cfg.RolePrefix, db.cfg.reportRole())
	if err != nil {
		return err
	}
	// Role names longer than 63 bytes are hashed (see roleName); the SQL
	// above compares with the plain prefix+schema form, so recheck those.
	var kept []Finding
	for _, f := range rep.Findings {
		if f.Check == CheckPrivileges && len(db.cfg.RolePrefix+f.Schema) > maxIdentifier &&
			endsWithRole(f.Detail, db.cfg.TenantRole(f.Schema)) {
			continue
		}
		kept = append(kept, f)
	}
	rep.Findings = kept
	return db.collect(ctx, rep, CheckPrivileges, `
		SELECT '', c.relname || ' in public grants ' || a.privilege_type || ' to tenant role ' || r.rolname
		FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
		CROSS JOIN LATERAL aclexplode(c.relacl) a
		JOIN pg_roles r ON r.oid = a.grantee
		WHERE c.relname IN ('tenants', 'domains', 'tenancy_schema_state')
		  AND (r.rolname = $1 || 'tenants' OR starts_with(r.rolname, $1) AND r.rolname NOT IN ($2, $3))
		ORDER BY 2`, db.cfg.RolePrefix, db.cfg.ServingRole, db.cfg.reportRole())
}

func endsWithRole(detail, role string) bool {
	return len(detail) >= len(role) && detail[len(detail)-len(role):] == role
}

func (db *DB) auditRLS(ctx context.Context, rep *AuditReport) error {
	return db.collect(ctx, rep, CheckRLS, `
		SELECT n.nspname, c.relname || CASE
		         WHEN NOT c.relrowsecurity THEN ': row-level security is off'
		         WHEN NOT c.relforcerowsecurity THEN ': row-level security is not forced'
		         ELSE ': guard policy tenancy_guard is missing' END
		FROM public.tenants t
		JOIN pg_namespace n ON n.nspname = t.schema_name
		JOIN pg_class c ON c.relnamespace = n.oid AND c.relkind IN ('r', 'p')
		WHERE NOT c.relrowsecurity OR NOT c.relforcerowsecurity
		   OR NOT EXISTS (SELECT 1 FROM pg_policy p
		                  WHERE p.polrelid = c.oid AND p.polname = 'tenancy_guard' AND NOT p.polpermissive)
		ORDER BY 1, 2`)
}

func (db *DB) auditRoles(ctx context.Context, rep *AuditReport) error {
	var super, bypass, inherit, exists bool
	err := db.admin.QueryRow(ctx, `
		SELECT true, rolsuper, rolbypassrls, rolinherit FROM pg_roles WHERE rolname = $1`,
		db.cfg.ServingRole).Scan(&exists, &super, &bypass, &inherit)
	if errors.Is(err, pgx.ErrNoRows) {
		rep.Findings = append(rep.Findings, Finding{CheckRoles, "", "serving role " + db.cfg.ServingRole + " does not exist"})
		return nil
	}
	if err != nil {
		return err
	}
	bad := func(detail string) {
		rep.Findings = append(rep.Findings, Finding{CheckRoles, "", "serving role " + db.cfg.ServingRole + " " + detail})
	}
	if super {
		bad("is a superuser")
	}
	if bypass {
		bad("has BYPASSRLS")
	}
	if db.cfg.Guard == GuardRole && inherit {
		bad("inherits tenant privileges (must be NOINHERIT under the role guard)")
	}
	return db.collect(ctx, rep, CheckRoles, `
		SELECT t.schema_name, 'tenant role ' || r.rolname || ' has ' || concat_ws(', ',
		       CASE WHEN r.rolcanlogin THEN 'LOGIN' END, CASE WHEN r.rolsuper THEN 'SUPERUSER' END,
		       CASE WHEN r.rolbypassrls THEN 'BYPASSRLS' END, CASE WHEN r.rolcreaterole THEN 'CREATEROLE' END,
		       CASE WHEN r.rolcreatedb THEN 'CREATEDB' END)
		FROM public.tenants t
		JOIN pg_roles r ON r.rolname = $1 || t.schema_name
		WHERE r.rolcanlogin OR r.rolsuper OR r.rolbypassrls OR r.rolcreaterole OR r.rolcreatedb
		ORDER BY 1`, db.cfg.RolePrefix)
}
