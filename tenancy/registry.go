package tenancy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

var (
	// ErrSchemaExists is returned when a new tenant's schema is already
	// registered or already present in the database.
	ErrSchemaExists = errors.New("schema already exists")

	// ErrDomainExists is returned when a domain already belongs to a tenant.
	ErrDomainExists = errors.New("domain already belongs to a tenant")

	// ErrRoleExists is returned when the role a new tenant needs is already
	// present in the cluster (left over, or owned by another database that
	// uses the same role prefix).
	ErrRoleExists = errors.New("tenant role already exists")

	// ErrTenantActive is returned when a tenant is deleted before it was
	// deactivated.
	ErrTenantActive = errors.New("tenant is active; deactivate it first")

	// ErrPrimaryDomain is returned when the primary domain of a tenant with
	// other domains is removed; another must be made primary first.
	ErrPrimaryDomain = errors.New("domain is the tenant's primary domain; make another primary first")

	// ErrDomainNotFound is returned when a domain is not registered.
	ErrDomainNotFound = errors.New("domain not found")
)

// NewTenant describes a tenant to create.
type NewTenant struct {
	Name      string
	Schema    string // optional: derived from Name (see SchemaFromName)
	Domain    string // required: the primary domain
	InfoURL   string
	PaidUntil *time.Time
}

// Domain is a host name that routes to a tenant.
type Domain struct {
	Domain    string `json:"domain"`
	TenantID  int64  `json:"tenant_id"`
	IsPrimary bool   `json:"is_primary"`
}

// SchemaFromName derives a schema name from a tenant's display name: the
// prefix, then the name lowercased with every run of other characters turned
// into one underscore. The result still has to pass ValidateSchemaName.
func SchemaFromName(prefix, name string) string {
	var b strings.Builder
	under := true // no leading underscore
	for _, r := range strings.ToLower(name) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			under = false
		} else if !under {
			b.WriteByte('_')
			under = true
		}
	}
	s := prefix + strings.TrimRight(b.String(), "_")
	if s != "" && (s[0] < 'a' || s[0] > 'z') {
		s = "t_" + s
	}
	return s
}

// CreateTenant validates nt and provisions the tenant in one transaction:
// the registry row, its role and schema with their grants, every tenant
// migration, the guard policies and its primary domain. Either all of it
// commits or none of it exists afterwards. Two concurrent creates of the same
// schema or domain end with one tenant and ErrSchemaExists or
// ErrDomainExists for the other.
func (db *DB) CreateTenant(ctx context.Context, nt NewTenant) (*Tenant, error) {
	if nt.Schema == "" {
		nt.Schema = SchemaFromName(db.cfg.SchemaPrefix, nt.Name)
	}
	nt.Name = strings.TrimSpace(nt.Name)
	nt.Domain = NormalizeHost(nt.Domain)
	if nt.Name == "" || len(nt.Name) > 200 {
		return nil, errors.New("tenant name must be 1 to 200 characters")
	}
	if err := ValidateSchemaName(nt.Schema, db.cfg.SchemaPrefix); err != nil {
		return nil, err
	}
	if err := ValidateDomain(nt.Domain); err != nil {
		return nil, err
	}

	var t *Tenant
	begin := "BEGIN; SET LOCAL lock_timeout = " + quoteLiteral(ddlLockTimeout) +
		"; SET LOCAL search_path = " + quoteIdent(nt.Schema) + ", public" +
		"; SET LOCAL " + TenantSetting + " = " + quoteLiteral(nt.Schema) +
		"; " + provisionLock
	err := retryDDL(ctx, func() error {
		return pgx.BeginTxFunc(ctx, db.admin, pgx.TxOptions{BeginQuery: begin}, func(tx pgx.Tx) error {
			return db.createIn(ctx, tx, nt, &t)
		})
	})
	if err != nil {
		return nil, fmt.Errorf("create tenant %s: %w", nt.Schema, registryError(err))
	}
	db.cfg.Logger.InfoContext(ctx, "Tenant created",
		slog.Int64("tenant_id", t.ID), slog.String("schema", t.Schema), slog.String("domain", nt.Domain))
	return t, nil
}

// createIn inserts the registry rows and provisions the tenant inside tx.
func (db *DB) createIn(ctx context.Context, tx pgx.Tx, nt NewTenant, out **Tenant) error {
	t, err := scanTenant(tx.QueryRow(ctx, `
			INSERT INTO public.tenants (name, schema_name, info_url, paid_until)
			VALUES ($1, $2, $3, $4)
			RETURNING `+tenantColumns, nt.Name, nt.Schema, nt.InfoURL, nt.PaidUntil))
	if err != nil {
		return err
	}
	if err := db.provision(ctx, tx, nt.Schema); err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `
		INSERT INTO public.domains (domain, tenant_id, is_primary)
		VALUES ($1, $2, true)`, nt.Domain, t.ID)
	*out = t
	return err
}

// ddlLockTimeout bounds each lock wait of a transaction that creates or
// drops a tenant. It is shorter than PostgreSQL's default deadlock_timeout
// (1s): dropping a tenant's tables takes ACCESS EXCLUSIVE locks on the
// shared tables they reference, in an order no one controls, so it can
// deadlock with a request inserting into another tenant. The provisioning
// side then gives up first and retries, instead of the deadlock detector
// failing the request.
const ddlLockTimeout = "500ms"

// retryDDL runs fn, a whole provisioning transaction, again when it failed
// on a lock timeout or a deadlock, a few times with growing pauses.
func retryDDL(ctx context.Context, fn func() error) error {
	var err error
	for attempt := range 6 {
		if err = fn(); !lockConflict(err) {
			return err
		}
		pause := time.Duration(50<<attempt)*time.Millisecond + time.Duration(rand.Int64N(int64(50*time.Millisecond)))
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			return err
		}
	}
	return err
}

func lockConflict(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && (pg.Code == "55P03" || pg.Code == "40P01")
}

// provisionLock serialises the transactions that create or drop tenant
// schemas. Creating a tenant table with a foreign key to a shared table, and
// dropping one, lock the shared tables in catalog order; a create and a
// drop running at once could take them in opposite orders and deadlock.
// Tenant migrations take the same lock shared, so they run in parallel with
// each other but not with a create or a drop.
const provisionLock = "SELECT pg_advisory_xact_lock(hashtextextended('tenancy.provision', 0))"

// provision creates the tenant's role and schema and migrates it to the
// latest tenant version, inside the caller's transaction.
func (db *DB) provision(ctx context.Context, tx pgx.Tx, schema string) error {
	role := quoteIdent(db.cfg.TenantRole(schema))
	ddl := "CREATE ROLE " + role + " NOLOGIN; " +
		"GRANT " + quoteIdent(db.cfg.groupRole()) + " TO " + role + "; " +
		"GRANT " + role + " TO " + quoteIdent(db.cfg.ServingRole) + "; " +
		"CREATE SCHEMA " + quoteIdent(schema)
	if _, err := tx.Exec(ctx, ddl); err != nil {
		return err
	}
	return db.applyTenant(ctx, tx, schema, 0)
}

// applyTenant applies the tenant migrations after version from, secures the
// schema and records the new version, inside the caller's transaction.
func (db *DB) applyTenant(ctx context.Context, tx pgx.Tx, schema string, from int) error {
	set := db.cfg.TenantMigrations
	for _, m := range set[from:] {
		if _, err := tx.Exec(ctx, db.expand(m.SQL, schema)); err != nil {
			return fmt.Errorf("tenant migration %04d_%s: %w", m.Version, m.Name, err)
		}
	}
	_, err := tx.Exec(ctx, "SELECT public.tenancy_secure_schema("+
		quoteLiteral(schema)+", "+quoteLiteral(db.cfg.TenantRole(schema))+"); "+
		"INSERT INTO public.tenancy_schema_state (schema_name, component, version, applied_at) "+
		"VALUES ("+quoteLiteral(schema)+", 'tenant', "+fmt.Sprint(latest(set))+", now()) "+
		"ON CONFLICT (schema_name, component) DO UPDATE SET version = excluded.version, "+
		"applied_at = now(), last_error = NULL, failed_at = NULL, updated_at = now()")
	if err != nil {
		return fmt.Errorf("secure schema: %w", err)
	}
	return nil
}

// registryError maps constraint violations to the package's errors.
func registryError(err error) error {
	var pg *pgconn.PgError
	if !errors.As(err, &pg) {
		return err
	}
	switch {
	case pg.Code == "23505" && pg.ConstraintName == "tenants_schema_name_key":
		return ErrSchemaExists
	case pg.Code == "23505" && pg.ConstraintName == "domains_pkey":
		return ErrDomainExists
	case pg.Code == "42P06":
		return fmt.Errorf("%w (present in the database but not registered)", ErrSchemaExists)
	case pg.Code == "42710":
		return fmt.Errorf("%w: %s", ErrRoleExists, pg.Message)
	case pg.Code == "42501":
		return fmt.Errorf("%w: %s", ErrPrivileges, pg.Message)
	}
	return err
}

const tenantColumns = `id, name, schema_name, active, info_url, created_on, paid_until`

func scanTenant(row pgx.Row) (*Tenant, error) {
	var t Tenant
	err := row.Scan(&t.ID, &t.Name, &t.Schema, &t.Active, &t.InfoURL, &t.CreatedOn, &t.PaidUntil)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrTenantNotFound
	}
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// Tenant returns the tenant whose schema is schema, or ErrTenantNotFound.
func (db *DB) Tenant(ctx context.Context, schema string) (*Tenant, error) {
	return scanTenant(db.serve.QueryRow(ctx,
		"SELECT "+tenantColumns+" FROM public.tenants WHERE schema_name = $1", schema))
}

// TenantByID returns the tenant with the given id, or ErrTenantNotFound.
func (db *DB) TenantByID(ctx context.Context, id int64) (*Tenant, error) {
	return scanTenant(db.serve.QueryRow(ctx,
		"SELECT "+tenantColumns+" FROM public.tenants WHERE id = $1", id))
}

// TenantByDomain returns the tenant a normalised host routes to, or
// ErrTenantNotFound. It does not look at whether the tenant is active.
func (db *DB) TenantByDomain(ctx context.Context, host string) (*Tenant, error) {
	return scanTenant(db.serve.QueryRow(ctx, `
		SELECT t.id, t.name, t.schema_name, t.active, t.info_url, t.created_on, t.paid_until
		FROM public.domains d JOIN public.tenants t ON t.id = d.tenant_id
		WHERE d.domain = $1`, host))
}

// Tenants lists every registered tenant, ordered by schema.
func (db *DB) Tenants(ctx context.Context) ([]*Tenant, error) {
	rows, err := db.serve.Query(ctx, "SELECT "+tenantColumns+" FROM public.tenants ORDER BY schema_name")
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	defer rows.Close()
	var out []*Tenant
	for rows.Next() {
		t, err := scanTenant(rows)
		if err != nil {
			return nil, fmt.Errorf("list tenants: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// SetActive activates or deactivates a tenant. A deactivated tenant keeps
// its data; serving code refuses its requests.
func (db *DB) SetActive(ctx context.Context, schema string, active bool) (*Tenant, error) {
	t, err := scanTenant(db.admin.QueryRow(ctx,
		"UPDATE public.tenants SET active = $2 WHERE schema_name = $1 RETURNING "+tenantColumns,
		schema, active))
	if err != nil {
		return nil, fmt.Errorf("set tenant %s active=%t: %w", schema, active, err)
	}
	db.cfg.Logger.InfoContext(ctx, "Tenant activation changed",
		slog.Int64("tenant_id", t.ID), slog.String("schema", t.Schema), slog.Bool("active", active))
	return t, nil
}

// UpdateTenant changes a tenant's information URL and paid-until date.
func (db *DB) UpdateTenant(ctx context.Context, schema, infoURL string, paidUntil *time.Time) (*Tenant, error) {
	t, err := scanTenant(db.admin.QueryRow(ctx,
		"UPDATE public.tenants SET info_url = $2, paid_until = $3 WHERE schema_name = $1 RETURNING "+tenantColumns,
		schema, infoURL, paidUntil))
	if err != nil {
		return nil, fmt.Errorf("update tenant %s: %w", schema, err)
	}
	return t, nil
}

// DeleteTenant drops an inactive tenant's schema with all its data, its
// role, its domains and its registry rows, in one transaction. It refuses an
// active tenant with ErrTenantActive: deleting is always two deliberate
// steps.
func (db *DB) DeleteTenant(ctx context.Context, schema string) error {
	t, err := db.Tenant(ctx, schema)
	if err != nil {
		return fmt.Errorf("delete tenant %s: %w", schema, err)
	}
	if t.Active {
		return fmt.Errorf("delete tenant %s: %w", schema, ErrTenantActive)
	}
	role := quoteIdent(db.cfg.TenantRole(schema))
	begin := "BEGIN; SET LOCAL lock_timeout = " + quoteLiteral(ddlLockTimeout)
	err = retryDDL(ctx, func() error {
		return pgx.BeginTxFunc(ctx, db.admin, pgx.TxOptions{BeginQuery: begin}, func(tx pgx.Tx) error {
			return db.dropIn(ctx, tx, t, schema, role)
		})
	})
	if err != nil {
		return fmt.Errorf("delete tenant %s: %w", schema, registryError(err))
	}
	db.cfg.Logger.InfoContext(ctx, "Tenant deleted", slog.Int64("tenant_id", t.ID), slog.String("schema", schema))
	return nil
}

// dropIn drops the tenant's schema, role and registry rows inside tx.
func (db *DB) dropIn(ctx context.Context, tx pgx.Tx, t *Tenant, schema, role string) error {
	if _, err := tx.Exec(ctx, provisionLock); err != nil {
		return err
	}
	// Locks the row: a concurrent activation waits for the delete.
	var active bool
	err := tx.QueryRow(ctx, "SELECT active FROM public.tenants WHERE id = $1 FOR UPDATE", t.ID).Scan(&active)
	if err != nil {
		return err
	}
	if active {
		return ErrTenantActive
	}
	ddl := "DROP SCHEMA IF EXISTS " + quoteIdent(schema) + " CASCADE; " +
		"DROP OWNED BY " + role + "; DROP ROLE " + role
	if _, err := tx.Exec(ctx, ddl); err != nil {
		return err
	}
	_, err = tx.Exec(ctx, "DELETE FROM public.tenancy_schema_state WHERE schema_name = $1", schema)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, "DELETE FROM public.tenants WHERE id = $1", t.ID)
	return err
}

// Domains lists the domains of a tenant, primary first.
func (db *DB) Domains(ctx context.Context, schema string) ([]Domain, error) {
	rows, err := db.serve.Query(ctx, `
		SELECT d.domain, d.tenant_id, d.is_primary
		FROM public.domains d JOIN public.tenants t ON t.id = d.tenant_id
		WHERE t.schema_name = $1
		ORDER BY d.is_primary DESC, d.domain`, schema)
	if err != nil {
		return nil, fmt.Errorf("list domains of %s: %w", schema, err)
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[Domain])
}

// AddDomain routes domain to the tenant. With primary set it becomes the
// tenant's primary domain in the same transaction.
func (db *DB) AddDomain(ctx context.Context, schema, domain string, primary bool) error {
	domain = NormalizeHost(domain)
	if err := ValidateDomain(domain); err != nil {
		return err
	}
	err := pgx.BeginFunc(ctx, db.admin, func(tx pgx.Tx) error {
		var id int64
		err := tx.QueryRow(ctx, "SELECT id FROM public.tenants WHERE schema_name = $1 FOR UPDATE", schema).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrTenantNotFound
		}
		if err != nil {
			return err
		}
		if primary {
			if _, err := tx.Exec(ctx, "UPDATE public.domains SET is_primary = false WHERE tenant_id = $1 AND is_primary", id); err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, `
			INSERT INTO public.domains (domain, tenant_id, is_primary)
			VALUES ($1, $2, $3 OR NOT EXISTS (SELECT 1 FROM public.domains WHERE tenant_id = $2))`,
			domain, id, primary)
		return err
	})
	if err != nil {
		return fmt.Errorf("add domain %s to %s: %w", domain, schema, registryError(err))
	}
	return nil
}

// RemoveDomain stops routing domain. The primary domain can only go when it
// is the tenant's last one (ErrPrimaryDomain otherwise).
func (db *DB) RemoveDomain(ctx context.Context, domain string) error {
	domain = NormalizeHost(domain)
	tag, err := db.admin.Exec(ctx, `
		DELETE FROM public.domains d
		WHERE d.domain = $1
		  AND (NOT d.is_primary OR NOT EXISTS (
		      SELECT 1 FROM public.domains o WHERE o.tenant_id = d.tenant_id AND o.domain <> d.domain))`, domain)
	if err != nil {
		return fmt.Errorf("remove domain %s: %w", domain, err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var exists bool
	if err := db.admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM public.domains WHERE domain = $1)", domain).Scan(&exists); err != nil {
		return fmt.Errorf("remove domain %s: %w", domain, err)
	}
	if exists {
		return fmt.Errorf("remove domain %s: %w", domain, ErrPrimaryDomain)
	}
	return fmt.Errorf("remove domain %s: %w", domain, ErrDomainNotFound)
}

// SetPrimaryDomain makes domain its tenant's primary domain.
func (db *DB) SetPrimaryDomain(ctx context.Context, domain string) error {
	domain = NormalizeHost(domain)
	err := pgx.BeginFunc(ctx, db.admin, func(tx pgx.Tx) error {
		var id int64
		err := tx.QueryRow(ctx, "SELECT tenant_id FROM public.domains WHERE domain = $1 FOR UPDATE", domain).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrDomainNotFound
		}
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx,
			"UPDATE public.domains SET is_primary = false WHERE tenant_id = $1 AND is_primary AND domain <> $2",
			id, domain)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "UPDATE public.domains SET is_primary = true WHERE domain = $1", domain)
		return err
	})
	if err != nil {
		return fmt.Errorf("make %s primary: %w", domain, err)
	}
	return nil
}
