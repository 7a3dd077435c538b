package tenancy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// MigrateOptions narrows and shapes a migration run. The zero value migrates
// the shared set and then every tenant, one at a time.
type MigrateOptions struct {
	// Shared and Tenant select the sets to run; when both are false, both
	// run.
	Shared, Tenant bool

	// Schemas, when not empty, restricts the tenant set to these schemas.
	Schemas []string

	// Parallel is how many tenants migrate at once. Default 1.
	Parallel int

	// DryRun reports what would be applied and changes nothing.
	DryRun bool

	// Progress, when set, is called after each tenant with the number of
	// tenants done (applied or failed), how many of those failed, and the
	// number pending in this run. Calls may come from several goroutines
	// but never at once.
	Progress func(done, failed, total int)
}

// SchemaError is the failure of one schema's migration.
type SchemaError struct {
	Schema string
	Err    error
}

func (e SchemaError) Error() string { return e.Schema + ": " + e.Err.Error() }

func (e SchemaError) Unwrap() error { return e.Err }

// MigrateReport says what a migration run did.
type MigrateReport struct {
	SharedFrom, SharedTo int           // shared versions before and after
	Pending              []SchemaState // tenant schemas that were behind
	Applied              int           // tenant schemas brought up to date
	Failed               []SchemaError // tenant schemas rolled back
}

// ErrMigrationsFailed is returned by Migrate when some tenants failed; the
// report lists them. Rerunning continues where the run stopped.
var ErrMigrationsFailed = errors.New("some tenant migrations failed")

// SchemaState is the central record of one schema's migration set.
type SchemaState struct {
	Schema    string     `json:"schema"`
	Component string     `json:"component"`
	Version   int        `json:"version"`
	Latest    int        `json:"latest"`
	LastError string     `json:"last_error,omitempty"`
	AppliedAt *time.Time `json:"applied_at,omitempty"`
	FailedAt  *time.Time `json:"failed_at,omitempty"`
}

// Pending reports whether the schema is behind or failed last time.
func (s SchemaState) Pending() bool { return s.Version < s.Latest || s.LastError != "" }

// Migrate installs tenancy's own tables, applies pending shared migrations
// and then pending tenant migrations. Each tenant migrates in its own
// transaction, under an advisory lock and with lock and statement timeouts:
// a failing tenant is rolled back whole and recorded, and the others go on.
// Concurrent runs never apply a migration twice. When nothing is pending the
// tenant step costs one query.
func (db *DB) Migrate(ctx context.Context, opts MigrateOptions) (*MigrateReport, error) {
	both := !opts.Shared && !opts.Tenant
	rep := &MigrateReport{}
	if !opts.DryRun {
		if err := db.Install(ctx); err != nil {
			return rep, err
		}
	}
	if both || opts.Shared {
		if err := db.migrateShared(ctx, opts.DryRun, rep); err != nil {
			return rep, err
		}
	}
	if !both && !opts.Tenant {
		return rep, nil
	}

	pending, err := db.pendingTenants(ctx, opts.Schemas)
	if err != nil {
		return rep, err
	}
	rep.Pending = pending
	if opts.DryRun || len(pending) == 0 {
		return rep, nil
	}
	db.migrateTenants(ctx, pending, opts, rep)
	if len(rep.Failed) > 0 {
		return rep, fmt.Errorf("%w: %d of %d", ErrMigrationsFailed, len(rep.Failed), len(pending))
	}
	return rep, nil
}

func (db *DB) migrateShared(ctx context.Context, dryRun bool, rep *MigrateReport) error {
	set := db.cfg.SharedMigrations
	to := latest(set)
	from, err := db.sharedVersion(ctx)
	if err != nil {
		return err
	}
	rep.SharedFrom, rep.SharedTo = from, from
	if from >= to || dryRun {
		return nil
	}

	err = pgx.BeginFunc(ctx, db.admin, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended('tenancy.migrate.shared', 0))")
		if err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		// Another migrator may have finished while this one waited.
		if from, err = sharedVersionTx(ctx, tx); err != nil {
			return err
		}
		for _, m := range set[from:] {
			if _, err := tx.Exec(ctx, db.expand(m.SQL, "")); err != nil {
				return fmt.Errorf("shared migration %04d_%s: %w", m.Version, m.Name, err)
			}
		}
		_, err = tx.Exec(ctx, `
			INSERT INTO public.tenancy_schema_state (schema_name, component, version, applied_at)
			VALUES ('public', 'shared', $1, now())
			ON CONFLICT (schema_name, component)
			DO UPDATE SET version = excluded.version, applied_at = now(), updated_at = now()`, to)
		return err
	})
	if err != nil {
		return fmt.Errorf("migrate shared: %w", err)
	}
	rep.SharedTo = to
	db.cfg.Logger.InfoContext(ctx, "Shared migrations applied", slog.Int("from", from), slog.Int("to", to))
	return nil
}

func (db *DB) sharedVersion(ctx context.Context) (int, error) {
	v, err := db.stateVersion(ctx, "shared")
	if err != nil {
		return 0, fmt.Errorf("read shared version: %w", err)
	}
	return v, nil
}

func sharedVersionTx(ctx context.Context, tx pgx.Tx) (int, error) {
	var v int
	err := tx.QueryRow(ctx, `
		SELECT coalesce((SELECT version FROM public.tenancy_schema_state
		                 WHERE schema_name = 'public' AND component = 'shared'), 0)`).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("read shared version: %w", err)
	}
	return v, nil
}

// pendingTenants returns, in one query, the tenant schemas that are behind
// the latest tenant migration or failed their last attempt.
func (db *DB) pendingTenants(ctx context.Context, only []string) ([]SchemaState, error) {
	all, err := db.tenantStates(ctx, only, true)
	if err != nil {
		return nil, err
	}
	if len(only) > 0 {
		for _, s := range only {
			if !slices.ContainsFunc(all, func(st SchemaState) bool { return st.Schema == s }) {
				if _, err := db.Tenant(ctx, s); err != nil {
					return nil, fmt.Errorf("schema %s: %w", s, err)
				}
			}
		}
	}
	return all, nil
}

func (db *DB) tenantStates(ctx context.Context, only []string, pendingOnly bool) ([]SchemaState, error) {
	rows, err := db.admin.Query(ctx, `
		SELECT t.schema_name,
		       coalesce(s.version, 0),
		       coalesce(s.last_error, ''),
		       s.applied_at,
		       s.failed_at
		FROM public.tenants t
		LEFT JOIN public.tenancy_schema_state s
		       ON s.schema_name = t.schema_name AND s.component = 'tenant'
		WHERE (coalesce(cardinality($1::text[]), 0) = 0 OR t.schema_name = ANY ($1))
		  AND (NOT $3 OR coalesce(s.version, 0) < $2 OR s.last_error IS NOT NULL)
		ORDER BY t.schema_name`, only, latest(db.cfg.TenantMigrations), pendingOnly)
	if err != nil {
		return nil, fmt.Errorf("read tenant migration state: %w", err)
	}
	defer rows.Close()
	var out []SchemaState
	for rows.Next() {
		s := SchemaState{Component: "tenant", Latest: latest(db.cfg.TenantMigrations)}
		if err := rows.Scan(&s.Schema, &s.Version, &s.LastError, &s.AppliedAt, &s.FailedAt); err != nil {
			return nil, fmt.Errorf("read tenant migration state: %w", err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// Status returns the migration state of public (tenancy's own set and the
// shared set) and of every tenant schema, in two queries.
func (db *DB) Status(ctx context.Context) ([]SchemaState, error) {
	shared, err := db.sharedVersion(ctx)
	if err != nil {
		return nil, err
	}
	out := []SchemaState{{Schema: "public", Component: "shared", Version: shared, Latest: latest(db.cfg.SharedMigrations)}}
	tenants, err := db.tenantStates(ctx, nil, false)
	if err != nil {
		return nil, err
	}
	return append(out, tenants...), nil
}

func (db *DB) migrateTenants(ctx context.Context, pending []SchemaState, opts MigrateOptions, rep *MigrateReport) {
	parallel := max(1, opts.Parallel)
	work := make(chan SchemaState)
	var (
		mu   sync.Mutex
		done int
		wg   sync.WaitGroup
	)
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range work {
				err := db.migrateTenant(ctx, s.Schema)
				mu.Lock()
				if err != nil {
					rep.Failed = append(rep.Failed, SchemaError{Schema: s.Schema, Err: err})
				} else {
					rep.Applied++
				}
				if opts.Progress != nil {
					done++
					opts.Progress(done, len(rep.Failed), len(pending))
				}
				mu.Unlock()
			}
		}()
	}
	for _, s := range pending {
		select {
		case work <- s:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(work)
	wg.Wait()
}

// migrateTenant brings one schema to the latest tenant version in one
// transaction, or records why it could not.
func (db *DB) migrateTenant(ctx context.Context, schema string) error {
	log := db.cfg.Logger.With(slog.String("schema", schema))
	begin := "BEGIN" +
		"; SET LOCAL lock_timeout = " + quoteLiteral(fmt.Sprintf("%dms", db.cfg.LockTimeout.Milliseconds())) +
		"; SET LOCAL statement_timeout = " + quoteLiteral(fmt.Sprintf("%dms", db.cfg.StatementTimeout.Milliseconds())) +
		"; SET LOCAL search_path = " + quoteIdent(schema) + ", public" +
		"; SET LOCAL " + TenantSetting + " = " + quoteLiteral(schema) +
		"; SET LOCAL application_name = " + quoteLiteral(db.cfg.AppName+":migrate:"+schema) +
		"; SELECT pg_advisory_xact_lock_shared(hashtextextended('tenancy.provision', 0))"
	var from int
	err := pgx.BeginTxFunc(ctx, db.admin, pgx.TxOptions{BeginQuery: begin}, func(tx pgx.Tx) error {
		// The advisory lock serialises migrators per schema. The version is
		// read by a later statement, whose snapshot sees what a migrator
		// that held the lock before committed.
		_, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended('tenancy.migrate.' || $1, 0))", schema)
		if err != nil {
			return fmt.Errorf("lock schema: %w", err)
		}
		err = tx.QueryRow(ctx, `
			SELECT coalesce(max(version), 0) FROM public.tenancy_schema_state
			WHERE schema_name = $1 AND component = 'tenant'`, schema).Scan(&from)
		if err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		if from >= latest(db.cfg.TenantMigrations) {
			_, err := tx.Exec(ctx, `UPDATE public.tenancy_schema_state SET last_error = NULL, failed_at = NULL
				WHERE schema_name = $1 AND component = 'tenant' AND last_error IS NOT NULL`, schema)
			return err
		}
		return db.applyTenant(ctx, tx, schema, from)
	})
	if err != nil {
		db.recordFailure(ctx, schema, err)
		log.WarnContext(ctx, "Tenant migration failed", slog.Int("version", from), slog.Any("error", err))
		return err
	}
	log.InfoContext(ctx, "Tenant migrated", slog.Int("from", from), slog.Int("to", latest(db.cfg.TenantMigrations)))
	return nil
}

func (db *DB) recordFailure(ctx context.Context, schema string, failure error) {
	ctx = context.WithoutCancel(ctx)
	_, err := db.admin.Exec(ctx, `
		INSERT INTO public.tenancy_schema_state (schema_name, component, last_error, failed_at)
		VALUES ($1, 'tenant', $2, now())
		ON CONFLICT (schema_name, component)
		DO UPDATE SET last_error = excluded.last_error, failed_at = now(), updated_at = now()`,
		schema, failure.Error())
	if err != nil {
		db.cfg.Logger.WarnContext(ctx, "Recording migration failure failed",
			slog.String("schema", schema), slog.Any("error", err))
	}
}

// ForEachTenant runs fn once for every active tenant, at most parallel at a
// time, with ctx carrying the tenant (so fn can call InTenant) and a logger
// that names it. It returns every failure joined, each wrapped as a
// SchemaError; one tenant's failure does not stop the others.
func (db *DB) ForEachTenant(ctx context.Context, parallel int, fn func(ctx context.Context, t *Tenant) error) error {
	tenants, err := db.Tenants(ctx)
	if err != nil {
		return err
	}
	sem := make(chan struct{}, max(1, parallel))
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for _, t := range tenants {
		if !t.Active {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := fn(WithTenant(ctx, t), t); err != nil {
				mu.Lock()
				errs = append(errs, SchemaError{Schema: t.Schema, Err: err})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		errs = append(errs, ctx.Err())
	}
	return errors.Join(errs...)
}

// MigrationsCurrent reports, in one query, whether public and every tenant
// schema are at the latest versions of this program's sets, with no failure
// recorded. Readiness probes call it.
func (db *DB) MigrationsCurrent(ctx context.Context) (bool, error) {
	var behind bool
	err := db.serve.QueryRow(ctx, `
		SELECT EXISTS (
		    SELECT 1 FROM public.tenants t
		    LEFT JOIN public.tenancy_schema_state s
		           ON s.schema_name = t.schema_name AND s.component = 'tenant'
		    WHERE coalesce(s.version, 0) < $1 OR s.last_error IS NOT NULL)
		OR $2 > 0 AND NOT EXISTS (
		    SELECT 1 FROM public.tenancy_schema_state
		    WHERE schema_name = 'public' AND component = 'shared' AND version >= $2)`,
		latest(db.cfg.TenantMigrations), latest(db.cfg.SharedMigrations)).Scan(&behind)
	if err != nil {
		return false, fmt.Errorf("check migrations: %w", err)
	}
	return !behind, nil
}

// SchemaStatus returns the tenant migration state of one schema, or
// ErrTenantNotFound when no tenant has that schema.
func (db *DB) SchemaStatus(ctx context.Context, schema string) (SchemaState, error) {
	states, err := db.tenantStates(ctx, []string{schema}, false)
	if err != nil {
		return SchemaState{}, err
	}
	if len(states) == 0 {
		return SchemaState{}, fmt.Errorf("schema %s: %w", schema, ErrTenantNotFound)
	}
	return states[0], nil
}
