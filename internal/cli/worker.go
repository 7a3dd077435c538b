package cli

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/xatlabs/xat/internal/jobs"
	"github.com/xatlabs/xat/internal/postgres"
	"github.com/xatlabs/xat/tenancy"
	"github.com/xatlabs/xat/tenancy/storage"
)

const (
	// defaultWorkers is how many analyses a process runs at once.
	defaultWorkers = 2

	// jobGrace is how long running analyses get to finish on shutdown;
	// those still running are cancelled, and retried by the next worker.
	jobGrace = 30 * time.Second
)

func (a *app) workerCommand() *cobra.Command {
	var workers int
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run background jobs: the analyses of uploaded captures",
		Long: `Run background jobs until interrupted: each analysis queued through the API
runs here, in its partner's scope, reading the upload from file storage
(--storage-url). Any number of workers may run against one database; xat
serve runs workers too unless --no-worker is given.

On interrupt, running analyses get 30 seconds to finish; those still running
are stopped and picked up again by a worker later.`,
		Args: args(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if workers < 1 {
				return usagef(cmd, "--workers must be at least 1, got %d", workers)
			}
			return a.work(cmd.Context(), workers)
		},
	}
	cmd.Flags().IntVar(&workers, "workers", defaultWorkers, "analyses run at once")
	return cmd
}

// work runs job workers alone until ctx ends.
func (a *app) work(ctx context.Context, workers int) error {
	b, err := a.openBackend(ctx, openOpts{}, workers)
	if err != nil {
		return err
	}
	defer b.close()
	if err := a.warnPending(ctx, b.db); err != nil {
		return err
	}
	return b.jobs.Run(ctx, jobGrace)
}

// backend is what serving and working share: the database, its store,
// the file storage and the job queue.
type backend struct {
	db    *tenancy.DB
	store *postgres.Store
	files *storage.Store
	jobs  *jobs.Client
	close func()

	adminURL string // the owner's connection, for the job queue's migrations
}

// openBackend opens the database, the file storage and a job queue
// client that runs workers analyses at once; with none it only queues
// them. The caller calls close on the result.
func (a *app) openBackend(ctx context.Context, opts openOpts, workers int) (*backend, error) {
	t, err := a.target(ctx)
	if err != nil {
		return nil, err
	}
	b := &backend{adminURL: t.adminURL, close: t.close}
	fail := func(err error) (*backend, error) {
		b.close()
		return nil, err
	}

	if b.db, err = a.connect(ctx, t, opts); err != nil {
		return fail(err)
	}
	b.close = func() { b.db.Close(); t.close() }
	b.store = postgres.New(b.db)

	if b.files, err = storage.Open(ctx, a.cfg.StorageURL); err != nil {
		return fail(fmt.Errorf("open file storage (XAT_STORAGE_URL): %w", err))
	}
	closeDB := b.close
	b.close = func() { b.files.Close(); closeDB() }

	var pool *pgxpool.Pool
	if workers > 0 {
		if pool, err = jobPool(ctx, t.adminURL, workers); err != nil {
			return fail(err)
		}
		closeFiles := b.close
		b.close = func() { pool.Close(); closeFiles() }
	}
	b.jobs, err = jobs.New(pool, jobs.Config{
		DB:      b.db,
		Store:   b.store,
		Files:   b.files,
		Logger:  a.logger,
		Workers: workers,
	})
	if err != nil {
		return fail(err)
	}
	return b, nil
}

// jobPool opens the pool job workers use: the owner's, which River's
// maintenance needs, with room for the queue's own connections (a
// listener, the fetcher, the completer) beside the running jobs.
func jobPool(ctx context.Context, adminURL string, workers int) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(adminURL)
	if err != nil {
		return nil, fmt.Errorf("parse database connection: %w", err)
	}
	tenancy.TunePool(cfg)
	cfg.MaxConns = int32(workers + 4)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open job queue pool: %w", err)
	}
	return pool, nil
}

// migrateJobs applies the job queue's migrations, River's own, as the
// owner. It runs before the shared set, which grants tenant roles their
// access to River's tables once they exist.
func (a *app) migrateJobs(ctx context.Context, adminURL string) ([]int, error) {
	pool, err := ownerPool(ctx, adminURL)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	return jobs.Migrate(ctx, pool, a.logger)
}

// jobQueueVersion returns the job queue's version in the database and the
// latest one, read as the owner of River's tables.
func jobQueueVersion(ctx context.Context, adminURL string) (current, latest int, err error) {
	pool, err := ownerPool(ctx, adminURL)
	if err != nil {
		return 0, 0, err
	}
	defer pool.Close()
	return jobs.QueueVersion(ctx, pool)
}

// ownerPool opens a pool of two connections as the owner of the schemas:
// River's migrator holds its lock on one and migrates on the other.
func ownerPool(ctx context.Context, adminURL string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(adminURL)
	if err != nil {
		return nil, fmt.Errorf("parse database connection: %w", err)
	}
	cfg.MaxConns = 2
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	return pool, nil
}

// warnPending logs when migrations are pending, which the job workers
// may need.
func (a *app) warnPending(ctx context.Context, db *tenancy.DB) error {
	current, err := db.MigrationsCurrent(ctx)
	if err != nil {
		return err
	}
	if !current {
		a.logger.WarnContext(ctx, "Migrations are pending; run xat migrate")
	}
	return nil
}

// stopJobs stops a job client that was started, within jobGrace.
func (a *app) stopJobs(ctx context.Context, c *jobs.Client) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), jobGrace)
	defer cancel()
	if err := c.Stop(sctx); err != nil {
		a.logger.ErrorContext(ctx, "Job workers did not stop cleanly", slog.Any("error", err))
	}
}
