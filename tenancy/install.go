package tenancy

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"
)

// installVersion is the version of tenancy's own tables and functions in
// public. Raise it whenever sql/install.sql changes.
const installVersion = 3

//go:embed sql/install.sql
var installSQL string

// ErrPrivileges is returned when a connection's role lacks what the work
// needs: provisioning needs CREATEROLE (or superuser) and CREATE on the
// database; serving needs a role that is neither superuser nor BYPASSRLS.
var ErrPrivileges = errors.New("insufficient database privileges")

// checkAdmin verifies that the admin pool may create roles and schemas.
func (db *DB) checkAdmin(ctx context.Context) error {
	var user string
	var super, createRole, createDB bool
	err := db.admin.QueryRow(ctx, `
		SELECT current_user, r.rolsuper, r.rolcreaterole,
		       has_database_privilege(current_database(), 'CREATE')
		FROM pg_roles r
		WHERE r.rolname = current_user`).Scan(&user, &super, &createRole, &createDB)
	if err != nil {
		return fmt.Errorf("check admin privileges: %w", err)
	}
	if super || createRole && createDB {
		return nil
	}
	return fmt.Errorf("%w: role %q must have CREATEROLE and CREATE on the database to create tenant roles and schemas",
		ErrPrivileges, user)
}

// CheckServing verifies that the serving pool logs in as a role fit to
// serve: not a superuser, not BYPASSRLS, and NOINHERIT under GuardRole
// (INHERIT under GuardPolicy, which relies on inherited privileges).
func (db *DB) CheckServing(ctx context.Context) error {
	var user string
	var super, bypass, inherit bool
	err := db.serve.QueryRow(ctx, `
		SELECT current_user, rolsuper, rolbypassrls, rolinherit
		FROM pg_roles WHERE rolname = current_user`).Scan(&user, &super, &bypass, &inherit)
	if err != nil {
		return fmt.Errorf("check serving role: %w", err)
	}
	switch {
	case super:
		return fmt.Errorf("%w: serving role %q is a superuser, which ignores every guard", ErrPrivileges, user)
	case bypass:
		return fmt.Errorf("%w: serving role %q has BYPASSRLS", ErrPrivileges, user)
	case db.cfg.Guard == GuardRole && inherit:
		return fmt.Errorf("%w: serving role %q must be NOINHERIT under the role guard", ErrPrivileges, user)
	case db.cfg.Guard == GuardPolicy && !inherit:
		return fmt.Errorf("%w: serving role %q must be INHERIT under the policy guard", ErrPrivileges, user)
	}
	return nil
}

// Install creates, or brings up to date, what tenancy keeps in the database:
// the serving role and the tenants' group role, the registry tables and
// functions in public. It is idempotent and cheap when nothing changed, and
// safe to run from several processes at once. Migrate calls it first.
func (db *DB) Install(ctx context.Context) error {
	current, err := db.stateVersion(ctx, "tenancy")
	if err != nil {
		return fmt.Errorf("read tenancy version: %w", err)
	}
	if current == installVersion {
		return db.alignServing(ctx)
	}
	if current > installVersion {
		return fmt.Errorf("database holds tenancy version %d, newer than this program's %d", current, installVersion)
	}
	if err := db.checkAdmin(ctx); err != nil {
		return err
	}

	err = pgx.BeginFunc(ctx, db.admin, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended('tenancy.install', 0))"); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		if _, err := tx.Exec(ctx, db.createRolesSQL()); err != nil {
			return fmt.Errorf("create roles: %w", err)
		}
		if _, err := tx.Exec(ctx, db.expand(installSQL, "")); err != nil {
			return fmt.Errorf("install registry: %w", err)
		}
		_, err := tx.Exec(ctx, `
			INSERT INTO public.tenancy_schema_state (schema_name, component, version, applied_at)
			VALUES ('public', 'tenancy', $1, now())
			ON CONFLICT (schema_name, component)
			DO UPDATE SET version = excluded.version, applied_at = now(), updated_at = now()`, installVersion)
		return err
	})
	if err != nil {
		return fmt.Errorf("install tenancy: %w", err)
	}
	db.cfg.Logger.InfoContext(ctx, "Tenancy installed", slog.Int("version", installVersion))
	return db.alignServing(ctx)
}

// createRolesSQL creates the serving role and the tenants' group role when
// they do not exist. Role names come from configuration, not from users, and
// are quoted all the same.
func (db *DB) createRolesSQL() string {
	serving := quoteLiteral(db.cfg.ServingRole)
	group := quoteLiteral(db.cfg.groupRole())
	report := quoteLiteral(db.cfg.reportRole())
	return `DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = ` + serving + `) THEN
        EXECUTE format('CREATE ROLE %I LOGIN NOINHERIT', ` + serving + `);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = ` + group + `) THEN
        EXECUTE format('CREATE ROLE %I NOLOGIN', ` + group + `);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = ` + report + `) THEN
        EXECUTE format('CREATE ROLE %I NOLOGIN', ` + report + `);
    END IF;
END $$`
}

// alignServing gives the serving role the INHERIT attribute its guard needs,
// when it differs and the admin role may change it.
func (db *DB) alignServing(ctx context.Context) error {
	want := db.cfg.Guard == GuardPolicy
	var inherit bool
	err := db.admin.QueryRow(ctx, "SELECT rolinherit FROM pg_roles WHERE rolname = $1", db.cfg.ServingRole).Scan(&inherit)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("serving role %q does not exist; run the migrations", db.cfg.ServingRole)
	}
	if err != nil {
		return fmt.Errorf("read serving role: %w", err)
	}
	if inherit == want {
		return nil
	}
	attr := "NOINHERIT"
	if want {
		attr = "INHERIT"
	}
	if _, err := db.admin.Exec(ctx, "ALTER ROLE "+quoteIdent(db.cfg.ServingRole)+" "+attr); err != nil {
		return fmt.Errorf("make serving role %s for the %s guard: %w", attr, db.cfg.Guard, err)
	}
	return nil
}

// stateVersion reads the version of a migration set of public from the
// central state table, 0 when the table or the row does not exist yet.
func (db *DB) stateVersion(ctx context.Context, component string) (int, error) {
	var exists bool
	err := db.admin.QueryRow(ctx, "SELECT to_regclass('public.tenancy_schema_state') IS NOT NULL").Scan(&exists)
	if err != nil || !exists {
		return 0, err
	}
	var v int
	err = db.admin.QueryRow(ctx, `
		SELECT coalesce(max(version), 0) FROM public.tenancy_schema_state
		WHERE schema_name = 'public' AND component = $1`, component).Scan(&v)
	return v, err
}
