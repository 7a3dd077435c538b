package cli

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/xatlabs/xat/internal/httpapi"
	"github.com/xatlabs/xat/tenancy"
	"github.com/xatlabs/xat/tenancy/cache"
)

func (a *app) serveCommand() *cobra.Command {
	var (
		migrate  bool
		noWorker bool
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the HTTP API",
		Long: `Serve the HTTP API on --addr until interrupted, then let requests in
flight finish and stop.

Requests are routed by Host: the public hosts (--public-hosts) serve the
platform administration API, every other host must be a partner's domain.
Host lookups are cached in memory; the cache is cleared across every running
instance whenever the registry changes.

/readyz answers 503 while migrations are pending; run xat migrate, or pass
--migrate to apply them before serving.

Uploaded files are kept where --storage-url says. The analyses of uploads
run in this process too (as in xat worker); with --no-worker they are only
queued, for xat worker processes to run.`,
		Args: args(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			workers := defaultWorkers
			if noWorker {
				workers = 0
			}
			return a.serveWith(cmd.Context(), serveOptions{migrate: migrate, workers: workers})
		},
	}
	cmd.Flags().BoolVar(&migrate, "migrate", false, "apply pending migrations before serving")
	cmd.Flags().BoolVar(&noWorker, "no-worker", false, "queue analyses but run none in this process")
	return cmd
}

// serveOptions shape serveWith.
type serveOptions struct {
	migrate bool // apply pending migrations first
	workers int  // analyses run at once in this process; 0 runs none

	// ready, when set, is called before the server listens, with the
	// database, file storage and job queue (the demo seeds them then).
	ready func(context.Context, *backend) error
}

// serve runs the API, with job workers, until ctx ends.
func (a *app) serve(ctx context.Context, migrate bool, ready func(context.Context, *backend) error) error {
	return a.serveWith(ctx, serveOptions{migrate: migrate, workers: defaultWorkers, ready: ready})
}

func (a *app) serveWith(ctx context.Context, o serveOptions) error {
	b, err := a.openBackend(ctx, openOpts{install: o.migrate}, o.workers)
	if err != nil {
		return err
	}
	defer b.close()
	db, store := b.db, b.store
	if o.migrate {
		if _, err := a.migrateJobs(ctx, b.adminURL); err != nil {
			return err
		}
		if _, err := db.Migrate(ctx, tenancy.MigrateOptions{Parallel: 4}); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
	}
	current, err := db.MigrationsCurrent(ctx)
	if err != nil {
		return err
	}
	if !current {
		a.logger.WarnContext(ctx, "Migrations are pending; /readyz answers 503 until xat migrate runs")
	}

	kv, err := cache.Open(a.cfg.CacheURL)
	if err != nil {
		return err
	}
	defer kv.Close()

	if o.ready != nil {
		if err := o.ready(ctx, b); err != nil {
			return err
		}
	}

	resolver := tenancy.NewResolver(db, tenancy.ResolverConfig{PublicHosts: a.cfg.PublicHosts, Logger: a.logger})
	srv := httpapi.New(httpapi.Config{
		Addr:           a.cfg.Addr,
		TrustedProxies: a.cfg.TrustedProxies,
		PathPrefix:     a.cfg.PathPrefix,
		SecureCookies:  a.cfg.SecureCookies,
		SessionTTL:     a.cfg.SessionIdle,
		SessionMaxAge:  a.cfg.SessionMaxAge,
		LoginLimits:    httpapi.LoginLimits{PerAccount: a.cfg.LoginLimitAccount, PerAddr: a.cfg.LoginLimitAddr},
		Data:           httpapi.DataConfig{Files: b.files, Jobs: b.jobs},
		Cache:          kv,
	}, db, store, resolver, a.logger)
	// The server subscribed its credential cache to the resolver's
	// listener; listening starts only now, so that it LISTENs on both.
	go resolver.Listen(ctx, db.ServePool().Config().ConnConfig.ConnString())
	a.logger.InfoContext(ctx, "Starting API",
		slog.String("addr", a.cfg.Addr), slog.Any("public_hosts", a.cfg.PublicHosts),
		slog.String("guard", db.Config().Guard.String()))
	if o.workers > 0 {
		if err := b.jobs.Start(ctx); err != nil {
			return err
		}
		defer a.stopJobs(ctx, b.jobs)
	}
	return srv.Run(ctx)
}
