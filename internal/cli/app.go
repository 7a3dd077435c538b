package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/xatlabs/xat/internal/config"
	"github.com/xatlabs/xat/migrations"
	"github.com/xatlabs/xat/pglocal"
	"github.com/xatlabs/xat/tenancy"
)

// localDatabase is the database xat keeps in its local cluster.
const localDatabase = "xat"

// app is what every command shares: the process environment, and once
// setup has run, the configuration and the logger. Commands get the
// database through open.
type app struct {
	env    Env
	cfg    config.Config
	logger *slog.Logger
}

// target is the PostgreSQL database a command works on.
type target struct {
	adminURL string // the owner: provisioning and migrations
	serveURL string // the serving role: tenant work

	// binDir holds the local cluster's server programs; empty when
	// DATABASE_URL names the server.
	binDir string

	// close stops the local cluster if this process started it.
	close func()
}

// target resolves the database: DATABASE_URL when set, else the local
// cluster in the data directory, started (or reused) and given its xat
// database. The caller must call close on the result.
func (a *app) target(ctx context.Context) (*target, error) {
	if a.cfg.DatabaseURL != "" {
		return &target{
			adminURL: a.cfg.DatabaseURL,
			serveURL: a.cfg.ServingDatabaseURL,
			close:    func() {},
		}, nil
	}

	dataDir, err := filepath.Abs(a.cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("resolve XAT_DATA_DIR %s: %w", a.cfg.DataDir, err)
	}
	c, err := pglocal.Start(ctx, pglocal.Config{
		DataDir: filepath.Join(dataDir, "pgdata"),
		Logger:  a.logger,
	})
	switch {
	case errors.Is(err, pglocal.ErrNoBinaries):
		return nil, fmt.Errorf("DATABASE_URL is not set, so xat runs a local PostgreSQL, but: %w", err)
	case errors.Is(err, pglocal.ErrDataDirUnreachable):
		return nil, fmt.Errorf("%w (the data directory is set with XAT_DATA_DIR or --data-dir)", err)
	case err != nil:
		return nil, fmt.Errorf("start local postgresql in %s: %w", dataDir, err)
	}

	t := &target{binDir: c.BinDir(), close: func() { a.stopLocal(c) }}
	if err := c.CreateDatabase(ctx, localDatabase); err != nil {
		t.close()
		return nil, err
	}
	t.adminURL = c.ConnString(localDatabase)
	if t.serveURL, err = config.ServingURL(t.adminURL, a.cfg.ServingRole()); err != nil {
		t.close()
		return nil, fmt.Errorf("derive serving connection: %w", err)
	}
	a.logger.InfoContext(ctx, "Using local PostgreSQL",
		slog.String("data_dir", c.DataDir()),
		slog.String("psql", "psql "+shellQuote(t.adminURL)),
	)
	return t, nil
}

// stopLocal stops the local cluster when this process started it; one that
// was already running belongs to another process and keeps running.
func (a *app) stopLocal(c *pglocal.Cluster) {
	if !c.Started() {
		return
	}
	// The command's context may be cancelled by now; stopping still matters.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.Stop(ctx); err != nil {
		a.logger.ErrorContext(ctx, "Could not stop local PostgreSQL",
			slog.String("data_dir", c.DataDir()), slog.Any("error", err))
	}
}

// openOpts shapes open.
type openOpts struct {
	// install installs or updates tenancy's own objects (roles, registry)
	// before connecting, as migrate must on a new database.
	install bool

	// logger is the DB's logger. Default: the app's.
	logger *slog.Logger
}

// open connects to the database of the configuration and returns the
// tenancy.DB, with a function that closes it and stops a local cluster this
// process started.
func (a *app) open(ctx context.Context) (*tenancy.DB, func(), error) {
	return a.openWith(ctx, openOpts{})
}

func (a *app) openWith(ctx context.Context, opts openOpts) (*tenancy.DB, func(), error) {
	t, err := a.target(ctx)
	if err != nil {
		return nil, nil, err
	}
	db, err := a.connect(ctx, t, opts)
	if err != nil {
		t.close()
		return nil, nil, err
	}
	return db, func() { db.Close(); t.close() }, nil
}

// connect opens a tenancy.DB on t and checks that the serving connection is
// fit to serve.
func (a *app) connect(ctx context.Context, t *target, opts openOpts) (*tenancy.DB, error) {
	cfg, err := a.tenancyConfig(opts.logger)
	if err != nil {
		return nil, err
	}
	if opts.install {
		if err := install(ctx, cfg, t.adminURL); err != nil {
			return nil, err
		}
	}

	db, err := tenancy.Connect(ctx, cfg, t.serveURL, t.adminURL, int32(a.cfg.PoolSize))
	if err != nil {
		return nil, err
	}
	if err := db.CheckServing(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func (a *app) tenancyConfig(logger *slog.Logger) (tenancy.Config, error) {
	cfg := a.cfg.Tenancy()
	var err error
	if cfg.SharedMigrations, err = migrations.Shared(); err != nil {
		return cfg, err
	}
	if cfg.TenantMigrations, err = migrations.Tenant(); err != nil {
		return cfg, err
	}
	cfg.Logger = logger
	if cfg.Logger == nil {
		cfg.Logger = a.logger
	}
	return cfg, nil
}

// install creates tenancy's roles and registry. It runs before Connect,
// whose serving pool cannot log in until the serving role exists; Install
// uses only the owner's pool, so a DB over that one pool is enough here.
func install(ctx context.Context, cfg tenancy.Config, adminURL string) error {
	pc, err := pgxpool.ParseConfig(adminURL)
	if err != nil {
		return fmt.Errorf("parse database connection: %w", err)
	}
	tenancy.TunePool(pc)
	pc.MaxConns = 1
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer pool.Close()
	return tenancy.New(cfg, pool, pool).Install(ctx)
}

// shellQuote quotes s as one word for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
