package tenancy

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// MaxConnUses is how many tenant scopes a pooled connection serves before
// it is closed, so that no backend lives for ever whatever its age
// settings. The memory a backend spends on tenant schemas is bounded
// separately, by Config.SchemasPerConn.
const MaxConnUses = 100_000

// TunePool sets what a pool serving tenants needs:
//
//   - Statements run in pgx's exec mode (extended protocol, unnamed
//     statements, no client-side statement cache). The same SQL text names
//     a different table in every tenant schema, and tenants may sit on
//     different migration versions while a deploy rolls; a statement cache
//     keyed by SQL text alone would then run one tenant's plan in another's
//     scope, or fail with "cached plan must not change result type". Exec
//     mode keeps one round trip per statement and works behind PgBouncer
//     in transaction mode. Scoped reads prepare their statements per
//     tenant schema instead (see DB.Read).
//   - Connections are recycled after 30 minutes (with jitter), and closed
//     after 5 idle minutes. (Tenant work also retires a connection after
//     MaxConnUses scopes; no AfterRelease hook is set, so that a released
//     connection is idle at once rather than after a goroutine ran it.)
//
// Call it on a config before pgxpool.NewWithConfig; fields set afterwards
// win.
func TunePool(cfg *pgxpool.Config) {
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
	cfg.MaxConnLifetime = 30 * time.Minute
	cfg.MaxConnLifetimeJitter = 5 * time.Minute
	cfg.MaxConnIdleTime = 5 * time.Minute
}

// Connect opens the two pools a DB needs and returns the DB, which then owns
// them (see Close). serveURL must log in as cfg.ServingRole; adminURL as the
// owner that provisions and migrates. poolSize caps the serving
// connections of tenant work; with lanes, control-plane work has up to a
// lane's share more (see Config.Lanes). Only
// the admin connection is checked here, so Connect works on a database that
// Migrate has yet to install; CheckServing verifies the serving side.
func Connect(ctx context.Context, cfg Config, serveURL, adminURL string, poolSize int32) (*DB, error) {
	admin, err := openPool(ctx, adminURL, 4, true)
	if err != nil {
		return nil, fmt.Errorf("open admin pool: %w", err)
	}
	// With lanes, poolSize connections serve tenant work, shared by the
	// lanes, and the serving pool proper keeps one lane's share (at least
	// 2) for control-plane work.
	if lanes := cfg.withDefaults(poolSize).Lanes; poolSize > 0 && lanes > 1 {
		cfg.lanePool = poolSize
		poolSize = max(2, poolSize/int32(lanes))
	}
	// The serving pool is not pinged: on a fresh database its role exists
	// only once Install (or Migrate) has run through the admin pool.
	serve, err := openPool(ctx, serveURL, poolSize, false)
	if err != nil {
		admin.Close()
		return nil, fmt.Errorf("open serving pool: %w", err)
	}
	db := New(cfg, serve, admin)
	db.owned = true
	return db, nil
}

func openPool(ctx context.Context, url string, size int32, ping bool) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	TunePool(cfg)
	if size > 0 {
		cfg.MaxConns = size
	}
	p, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if !ping {
		return p, nil
	}
	if err := p.Ping(ctx); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// Close closes the lanes (see Config.Lanes), and the other pools if
// Connect opened them; a DB made with New leaves serve and admin to the
// caller.
func (db *DB) Close() {
	db.closeLanes()
	if !db.owned {
		return
	}
	db.serve.Close()
	db.admin.Close()
}
