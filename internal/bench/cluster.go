// Package bench measures XAT against its targets on a throwaway local
// PostgreSQL: tenant provisioning, migrations over many tenants, scoped
// against unscoped reads, and the migrator's memory. Figures are reported
// as ratios or side by side with a baseline measured in the same run, since
// the machines they run on are small and noisy.
package bench

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/xatlabs/xat/migrations"
	"github.com/xatlabs/xat/pglocal"
	"github.com/xatlabs/xat/tenancy"
)

// Env is a throwaway cluster with XAT's schema installed.
type Env struct {
	Cluster  *pglocal.Cluster
	DB       *tenancy.DB
	AdminURL string
	ServeURL string
	Config   tenancy.Config
	dir      string
}

// Setup starts a cluster in a temporary directory with production-like
// durability (fsync on) and installs XAT's shared schema.
func Setup(ctx context.Context, log *slog.Logger) (*Env, error) {
	dir, err := os.MkdirTemp("", "xatbench-")
	if err != nil {
		return nil, err
	}
	// The server may run as another account (when this runs as root).
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	c, err := pglocal.Start(ctx, pglocal.Config{
		DataDir:  dir + "/pgdata",
		Settings: map[string]string{"max_connections": "200", "shared_buffers": "512MB"},
		Logger:   log,
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	e := &Env{Cluster: c, dir: dir}
	if err := c.CreateDatabase(ctx, "xatbench"); err != nil {
		e.Close()
		return nil, err
	}
	shared, err := migrations.Shared()
	if err != nil {
		e.Close()
		return nil, err
	}
	tenant, err := migrations.Tenant()
	if err != nil {
		e.Close()
		return nil, err
	}
	e.Config = tenancy.Config{
		SchemaPrefix:     "tenant_",
		RolePrefix:       "xb_",
		SharedMigrations: shared,
		TenantMigrations: tenant,
	}
	e.AdminURL = c.ConnString("xatbench")
	e.ServeURL = e.AdminURL + " user=xb_app"

	admin, err := pgxpool.New(ctx, e.AdminURL)
	if err != nil {
		e.Close()
		return nil, err
	}
	boot := tenancy.New(e.Config, admin, admin)
	_, err = boot.Migrate(ctx, tenancy.MigrateOptions{Shared: true})
	admin.Close()
	if err != nil {
		e.Close()
		return nil, fmt.Errorf("install schema: %w", err)
	}
	e.DB, err = tenancy.Connect(ctx, e.Config, e.ServeURL, e.AdminURL, 8)
	if err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// Close stops the cluster and removes its directory.
func (e *Env) Close() {
	if e.DB != nil {
		e.DB.Close()
	}
	if e.Cluster != nil {
		e.Cluster.Stop(context.Background())
	}
	os.RemoveAll(e.dir)
}
