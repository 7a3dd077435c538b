package tenancy

import (
	"fmt"
	"log/slog"
	"time"
)

// Guard selects how the database itself keeps a tenant's transaction out of
// other tenants' schemas. Both guards also set the search path and enforce
// the row-level security policies that tenancy installs on every tenant
// table.
type Guard int

const (
	// GuardRole switches to the tenant's own database role with SET LOCAL
	// ROLE. The serving role is NOINHERIT, so it holds no tenant privileges
	// of its own: a query naming another tenant's schema fails with
	// "permission denied", and so does a query run without a scope.
	GuardRole Guard = iota

	// GuardPolicy keeps one login user, which inherits every tenant role,
	// and relies on the row-level security policies keyed to the
	// transaction-local tenant setting: a query naming another tenant's
	// schema sees no rows and can change none. It is the mode for Citus,
	// where per-tenant roles would cost one worker connection per tenant.
	GuardPolicy
)

// String returns the configuration name of g.
func (g Guard) String() string {
	switch g {
	case GuardRole:
		return "role"
	case GuardPolicy:
		return "policy"
	}
	return fmt.Sprintf("Guard(%d)", int(g))
}

// ParseGuard turns "role" or "policy" into a Guard.
func ParseGuard(s string) (Guard, error) {
	switch s {
	case "role", "":
		return GuardRole, nil
	case "policy":
		return GuardPolicy, nil
	}
	return 0, fmt.Errorf("unknown guard %q: want role or policy", s)
}

// TenantSetting is the transaction-local setting that names the tenant of a
// scoped transaction. Row-level security policies compare it with the schema
// that holds the table.
const TenantSetting = "tenancy.tenant"

// Config holds what a DB needs beyond its connection pools. The zero value
// is usable: every field has a default.
type Config struct {
	// SchemaPrefix, when set, is required at the start of every tenant
	// schema name (for example "tenant_"). Default: none.
	SchemaPrefix string

	// RolePrefix starts the name of every tenant role and of the group and
	// serving roles. Roles are global to a PostgreSQL cluster, so databases
	// sharing a cluster need different prefixes. Default "tenancy_".
	RolePrefix string

	// ServingRole is the login role that serves tenant work. It must not
	// be a superuser nor bypass row-level security. Default RolePrefix +
	// "app".
	ServingRole string

	// Guard is the database guard. Default GuardRole.
	Guard Guard

	// MaxConnsPerTenant caps how many pooled connections one tenant may
	// hold at once, so a noisy tenant cannot starve the others. Default:
	// half of the serving pool, at least 1.
	MaxConnsPerTenant int

	// Lanes splits the serving pool's connections into this many lanes,
	// each a pool of its own, and runs each tenant's scoped work on one
	// lane (by tenant id). A backend then caches the catalog entries and
	// plans of a share of the tenants rather than of all of them, which
	// over thousands of tenants keeps its caches small and warm. A tenant
	// holding more than half of its lane takes further connections from
	// lanes more than half idle; tenants of other lanes together never hold
	// more than half of a lane.
	// Default: one lane per 4 connections of the serving pool, at least
	// 1; 1 turns lanes off.
	Lanes int

	// TenantWait is how long a scoped call waits for one of its tenant's
	// connection slots before failing with ErrTenantBusy. Default 2s.
	TenantWait time.Duration

	// StatementsPerConn caps the tenant statements that scoped reads keep
	// prepared on each pooled connection, least recently used dropped
	// first (see Read). Default 2000. A negative value turns preparation
	// off, so that every read is parsed and planned afresh: the setting for
	// a connection pooler in transaction mode that cannot carry prepared
	// statements (PgBouncer before 1.21, or with max_prepared_statements
	// at 0).
	StatementsPerConn int

	// SchemasPerConn caps how many tenant schemas one pooled connection
	// serves before it is closed and replaced. A backend keeps the catalog
	// entries of every schema it touched, so this bounds its memory when
	// there are thousands of tenants. Default 2000.
	SchemasPerConn int

	// AppName prefixes the transaction-local application_name that shows
	// the tenant in pg_stat_activity. Default "tenancy".
	AppName string

	// LockTimeout and StatementTimeout bound each tenant's migration
	// transaction, so one blocked schema cannot stall the fleet.
	// Defaults 5s and 5m.
	LockTimeout      time.Duration
	StatementTimeout time.Duration

	// SharedMigrations and TenantMigrations are the application's two
	// migration sets (see LoadMigrations). Shared ones apply once to public,
	// tenant ones to every tenant schema and to each new tenant.
	SharedMigrations []Migration
	TenantMigrations []Migration

	// Logger receives lifecycle and warning logs. Default: discarded.
	Logger *slog.Logger

	// lanePool, set by Connect, is the size the lanes share when it
	// differs from the serving pool's (which then serves control-plane
	// work alone).
	lanePool int32
}

func (c Config) withDefaults(poolMax int32) Config {
	if c.RolePrefix == "" {
		c.RolePrefix = "tenancy_"
	}
	if c.ServingRole == "" {
		c.ServingRole = c.RolePrefix + "app"
	}
	if c.MaxConnsPerTenant <= 0 {
		c.MaxConnsPerTenant = max(1, int(poolMax)/2)
	}
	if c.Lanes <= 0 {
		c.Lanes = max(1, int(poolMax)/4)
	}
	c.Lanes = min(c.Lanes, max(1, int(poolMax)))
	if c.StatementsPerConn == 0 {
		c.StatementsPerConn = 2000
	}
	if c.SchemasPerConn <= 0 {
		c.SchemasPerConn = 2000
	}
	if c.TenantWait <= 0 {
		c.TenantWait = 2 * time.Second
	}
	if c.AppName == "" {
		c.AppName = "tenancy"
	}
	if c.LockTimeout <= 0 {
		c.LockTimeout = 5 * time.Second
	}
	if c.StatementTimeout <= 0 {
		c.StatementTimeout = 5 * time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// groupRole is the role every tenant role is a member of; shared tables that
// tenants may read are granted to it.
func (c Config) groupRole() string { return c.RolePrefix + "tenants" }

// reportRole reads every tenant schema, for cross-tenant reports only.
func (c Config) reportRole() string { return c.RolePrefix + "report" }

// TenantRole returns the database role of the tenant whose schema is schema.
func (c Config) TenantRole(schema string) string { return roleName(c.RolePrefix, schema) }
