package cli

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/xatlabs/xat/internal/httpapi"
	"github.com/xatlabs/xat/internal/postgres"
	"github.com/xatlabs/xat/tenancy"
)

func (a *app) serveCommand() *cobra.Command {
	var migrate bool
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
--migrate to apply them before serving.`,
		Args: args(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.serve(cmd.Context(), migrate, nil)
		},
	}
	cmd.Flags().BoolVar(&migrate, "migrate", false, "apply pending migrations before serving")
	return cmd
}

// serve runs the API until ctx ends. ready, when set, is called once the
// server listens, with the database (the demo seeds it then).
func (a *app) serve(ctx context.Context, migrate bool, ready func(context.Context, *tenancy.DB, *postgres.Store) error) error {
	db, done, err := a.openWith(ctx, openOpts{install: migrate})
	if err != nil {
		return err
	}
	defer done()
	if migrate {
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

	store := postgres.New(db)
	if ready != nil {
		if err := ready(ctx, db, store); err != nil {
			return err
		}
	}

	resolver := tenancy.NewResolver(db, tenancy.ResolverConfig{PublicHosts: a.cfg.PublicHosts, Logger: a.logger})
	listenURL := db.ServePool().Config().ConnConfig.ConnString()
	go resolver.Listen(ctx, listenURL)

	srv := httpapi.New(httpapi.Config{
		Addr:           a.cfg.Addr,
		TrustedProxies: a.cfg.TrustedProxies,
		PathPrefix:     a.cfg.PathPrefix,
		SecureCookies:  a.cfg.SecureCookies,
	}, db, store, resolver, a.logger)
	a.logger.InfoContext(ctx, "Starting API",
		slog.String("addr", a.cfg.Addr), slog.Any("public_hosts", a.cfg.PublicHosts),
		slog.String("guard", db.Config().Guard.String()))
	return srv.Run(ctx)
}
