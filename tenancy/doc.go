// Package tenancy is schema-per-tenant multi-tenancy for PostgreSQL, with
// the isolation enforced by the database rather than by convention.
//
// Every tenant has a row in the registry (public.tenants), one or more
// domains (public.domains), a schema holding all of its tables and a
// database role that may use that schema only. Shared data stays in public.
// The package provisions tenants atomically, runs shared and tenant
// migrations, scopes database work to one tenant and iterates over tenants
// for administrative work. It knows nothing about the application built on
// it.
//
// # Scoping
//
// Tenant work runs in a transaction whose transaction-local settings name
// the tenant: the search path (the tenant's schema, then public), the
// tenant setting read by row-level security policies and, under GuardRole,
// the tenant's role. pg_stat_activity shows the tenant: transactions set
// application_name, reads start their statement text with a comment naming
// the tenant's schema. Nothing is set at session level, so a connection goes back
// to the pool exactly as it came, and the scheme works behind PgBouncer in
// transaction mode. The tenant always comes from the context; a call without
// one fails with ErrNoTenant and never falls back to public.
//
//	ctx = tenancy.WithTenant(ctx, acme)
//	err := db.InTenant(ctx, func(ctx context.Context, tx pgx.Tx) error {
//		_, err := tx.Exec(ctx, "UPDATE collectors SET last_seen_at = now() WHERE id = $1", id)
//		return err
//	})
//
//	// One round trip: the settings and the query are pipelined.
//	names, err := tenancy.Rows(ctx, db, pgx.RowTo[string], "SELECT machine_name FROM collectors")
//
// Shared tables are reached through Control, a separately named path that
// sees public only.
//
// # Requests
//
// A Resolver maps a request's host to its tenant through a bounded
// in-process cache; Listen keeps that cache honest across instances by
// clearing it whenever the registry announces a change (the registry tables
// notify on every write). Resolver.Middleware puts the tenant, or the
// public marker, into the request context: unknown hosts get 404, malformed
// ones 400 and inactive tenants 403, and nothing ever falls back to another
// tenant or to public. With MiddlewareOptions.PathPrefix, public hosts also
// serve tenants under /t/<schema>/, like django-tenants' subfolder mode;
// cookies must then be scoped to BasePath.
//
//	res := tenancy.NewResolver(db, tenancy.ResolverConfig{PublicHosts: []string{"xat.example.com"}})
//	go res.Listen(ctx, listenURL)
//	handler := res.Middleware(tenancy.MiddlewareOptions{})(api)
//
// # Connections
//
// A read's query is prepared per tenant schema on each connection, from its
// second read there, and its scope is applied by one statement whose text
// names no tenant (see DB.Read and Config.StatementsPerConn). The serving
// pool's size is split into lanes, pools of their own, and each tenant's
// work runs on one lane, so that a backend warms the catalogs and plans of
// a share of the tenants only (see Config.Lanes).
//
// # Guards
//
// GuardRole (the default) runs tenant work under SET LOCAL ROLE to the
// tenant's role; the serving role is NOINHERIT, so a query naming another
// tenant's schema fails with "permission denied", and so does a query that
// forgot its scope. GuardPolicy keeps one login user for Citus and relies on
// the restrictive row-level security policy that tenancy puts on every
// tenant table: another tenant's rows are invisible and cannot be written.
// Both guards install the policies, so both are in force under GuardRole.
// Application policies on tenant tables must be AS RESTRICTIVE: tenancy adds
// one permissive policy that the restrictive ones then narrow.
//
// The guards protect against mistakes in application code: a wrong schema,
// a forgotten filter, a forgotten scope. They do not contain arbitrary SQL
// written by an attacker on the serving connection, which could reset the
// role; never run untrusted SQL.
//
// # Migrations
//
// Two sets of numbered SQL files (see LoadMigrations): shared migrations
// apply once to public, tenant migrations to every tenant schema and to each
// new tenant inside its provisioning transaction. The version, last error
// and timestamps of every schema are kept in public.tenancy_schema_state, so
// finding that nothing is pending is one query. Each tenant migrates in its
// own transaction under an advisory lock with lock and statement timeouts.
//
// # Roles and privileges
//
// The admin pool must log in as a role with CREATEROLE and CREATE on the
// database (or a superuser): it creates tenant roles and schemas and owns
// the tables. The serving pool logs in as Config.ServingRole, which Install
// creates when missing; it must be neither superuser nor BYPASSRLS
// (CheckServing verifies it). Role names are global to a PostgreSQL
// cluster: databases that share a cluster need distinct Config.RolePrefix
// values.
package tenancy
