// Package jobs runs XAT's background work on River, a job queue kept in
// PostgreSQL, in public: the analyses of uploaded captures, and periodic
// maintenance (see MaintenanceArgs).
//
// A job is added in the same transaction as the row that needs it
// (EnqueueAnalysis is a postgres.Enqueue), from inside that row's tenant
// scope, so that both commit or neither does. Under the role guard that
// transaction runs as the tenant's role, which may add jobs and read its
// own but no other tenant's (migrations/shared/0002_job_queue.sql).
//
// Each job carries its tenant's id and schema. The worker loads the
// tenant from the registry, refuses cleanly when it is gone or inactive,
// and does all its work in that tenant's scope, as the system
// (xat.role = system): it reads the upload from tenant storage, streams it
// through capture.Analyze and writes progress and the result to the
// analysis row.
//
// Workers connect as the owner of the schemas, the role that ran River's
// migrations: River's maintenance (cleaning finished jobs, rescuing stuck
// ones, reindexing) needs its tables' owner.
package jobs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/xatlabs/xat/internal/postgres"
	"github.com/xatlabs/xat/tenancy"
	"github.com/xatlabs/xat/tenancy/storage"
)

// schema is where River's tables live. It is named rather than left to the
// search path: inside a tenant scope the search path starts with the
// tenant's schema, and River would otherwise send its insert
// notifications on a channel named after it.
const schema = "public"

// Defaults of Config.
const (
	DefaultQueue            = "analyses"
	DefaultMaxAttempts      = 5
	DefaultJobTimeout       = time.Hour
	DefaultProgressInterval = time.Second

	// MaintenanceQueue is the River queue of maintenance jobs (see
	// MaintenanceArgs), worked one at a time by every working client.
	MaintenanceQueue           = "maintenance"
	DefaultMaintenanceInterval = time.Hour
	DefaultTempFileAge         = 24 * time.Hour
)

// Config holds what a Client needs. DB, Store and Files are required by
// a client that works jobs; an insert-only client needs none of them.
type Config struct {
	DB     *tenancy.DB
	Store  *postgres.Store
	Files  *storage.Store
	Logger *slog.Logger // default: discarded

	// Workers is how many analyses run at once. Zero makes an insert-only
	// client, which adds jobs through the transactions it is given and
	// runs none.
	Workers int

	// Queue is the River queue of analyses. Default DefaultQueue. The
	// inserting and the working clients must agree on it.
	Queue string

	// MaxAttempts is how many times an analysis that fails for a
	// transient reason (database, storage) is tried before it is marked
	// failed; it is set on the jobs this client adds. Bad captures are
	// never retried. Default DefaultMaxAttempts.
	MaxAttempts int

	// JobTimeout bounds one attempt. Default DefaultJobTimeout.
	JobTimeout time.Duration

	// ProgressInterval is the least time between two progress writes of
	// a running analysis. Default DefaultProgressInterval.
	ProgressInterval time.Duration

	// MaintenanceInterval is how often maintenance runs (see
	// MaintenanceArgs), and once when a client becomes the leader.
	// Default DefaultMaintenanceInterval; negative turns it off.
	MaintenanceInterval time.Duration

	// TempFileAge is how long an upload's temp file goes unwritten before
	// maintenance takes it for a crash's leftover. It must be longer than
	// any upload may stall. Default DefaultTempFileAge.
	TempFileAge time.Duration
}

func (c Config) withDefaults() Config {
	c.Queue = cmp.Or(c.Queue, DefaultQueue)
	c.MaxAttempts = cmp.Or(c.MaxAttempts, DefaultMaxAttempts)
	c.JobTimeout = cmp.Or(c.JobTimeout, DefaultJobTimeout)
	c.ProgressInterval = cmp.Or(c.ProgressInterval, DefaultProgressInterval)
	c.MaintenanceInterval = cmp.Or(c.MaintenanceInterval, DefaultMaintenanceInterval)
	c.TempFileAge = cmp.Or(c.TempFileAge, DefaultTempFileAge)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Client adds analysis jobs and, unless it is insert-only, works them. It
// is safe for concurrent use.
type Client struct {
	river *river.Client[pgx.Tx]
	cfg   Config
}

// New returns a client over pool, which must log in as the owner of the
// schemas. pool may be nil for an insert-only client (Workers 0). The
// client works nothing until Start.
func New(pool *pgxpool.Pool, cfg Config) (*Client, error) {
	cfg = cfg.withDefaults()
	if cfg.Workers < 0 {
		return nil, fmt.Errorf("jobs: negative worker count %d", cfg.Workers)
	}
	if cfg.Workers > 0 && (pool == nil || cfg.DB == nil || cfg.Store == nil || cfg.Files == nil) {
		return nil, errors.New("jobs: a working client needs a pool, DB, Store and Files")
	}

	workers := river.NewWorkers()
	if err := river.AddWorkerSafely(workers, &analysisWorker{cfg: cfg}); err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	if err := river.AddWorkerSafely(workers, &maintenanceWorker{cfg: cfg}); err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	rc := &river.Config{
		Logger:  cfg.Logger,
		Schema:  schema,
		Workers: workers,
		// A job is stuck only once its attempt is surely over.
		RescueStuckJobsAfter: cfg.JobTimeout + 15*time.Minute,
	}
	if cfg.Workers > 0 {
		rc.Queues = map[string]river.QueueConfig{cfg.Queue: {MaxWorkers: cfg.Workers}}
		if cfg.MaintenanceInterval > 0 {
			rc.Queues[MaintenanceQueue] = river.QueueConfig{MaxWorkers: 1}
			rc.PeriodicJobs = []*river.PeriodicJob{maintenance(cfg)}
		}
	}
	r, err := river.NewClient(riverpgxv5.New(pool), rc)
	if err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	return &Client{river: r, cfg: cfg}, nil
}

// EnqueueAnalysis adds the job of analysis a in tx, a transaction scoped
// to the tenant in ctx; the job runs once tx commits. It is a
// postgres.Enqueue.
func (c *Client) EnqueueAnalysis(ctx context.Context, tx pgx.Tx, a *postgres.Analysis) error {
	t, ok := tenancy.FromContext(ctx)
	if !ok {
		return tenancy.ErrNoTenant
	}
	args := AnalysisArgs{TenantID: t.ID, TenantSchema: t.Schema, AnalysisID: a.ID}
	opts := &river.InsertOpts{Queue: c.cfg.Queue, MaxAttempts: c.cfg.MaxAttempts}
	if _, err := c.river.InsertTx(ctx, tx, args, opts); err != nil {
		return fmt.Errorf("enqueue analysis %d: %w", a.ID, err)
	}
	return nil
}

// Start starts working jobs in the background, until Stop. Jobs get ctx's
// values, but ending ctx does not stop them: Stop lets them finish. It
// fails for an insert-only client.
func (c *Client) Start(ctx context.Context) error {
	if c.cfg.Workers == 0 {
		return errors.New("jobs: an insert-only client cannot start")
	}
	// River stops hard, cancelling running jobs, when its start context
	// ends; the graceful path is Stop.
	if err := c.river.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("start job workers: %w", err)
	}
	c.cfg.Logger.InfoContext(ctx, "Job workers started",
		slog.String("queue", c.cfg.Queue), slog.Int("workers", c.cfg.Workers))
	return nil
}

// Stop stops fetching jobs and waits for those running to finish until
// ctx ends; then it cancels them, and River retries them later.
func (c *Client) Stop(ctx context.Context) error {
	err := c.river.Stop(ctx)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		// The grace period is over: cancel what still runs, and give it a
		// moment to notice.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		err = c.river.StopAndCancel(cctx)
	}
	if err != nil {
		return fmt.Errorf("stop job workers: %w", err)
	}
	c.cfg.Logger.InfoContext(ctx, "Job workers stopped", slog.String("queue", c.cfg.Queue))
	return nil
}

// Run starts the workers, works jobs until ctx ends, then stops, letting
// running jobs finish within grace.
func (c *Client) Run(ctx context.Context, grace time.Duration) error {
	if err := c.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	return c.Stop(sctx)
}

// QueueVersion returns the version of River's tables in the database and
// the latest version this program's River knows; the queue has migrations
// pending while the first is below the second. It only reads.
func QueueVersion(ctx context.Context, pool *pgxpool.Pool) (current, latest int, err error) {
	m, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Schema: schema, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return 0, 0, fmt.Errorf("job queue migrator: %w", err)
	}
	existing, err := m.ExistingVersions(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("job queue version: %w", err)
	}
	if len(existing) > 0 {
		current = existing[len(existing)-1].Version
	}
	if all := m.AllVersions(); len(all) > 0 {
		latest = all[len(all)-1].Version
	}
	return current, latest, nil
}

// Migrate applies River's pending migrations through pool, which must log
// in as the owner of the schemas, then grants tenant roles what they need
// of the queue (see postgres.MigrateJobQueue). It returns the River
// versions it applied, none when the queue was up to date. Each River
// migration commits on its own, as River requires, while one connection
// holds the migration lock: pool needs at least two.
func Migrate(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger) ([]int, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Schema: schema, Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("job queue migrator: %w", err)
	}

	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate job queue: %w", err)
	}
	defer conn.Release()

	var applied []int
	err = postgres.MigrateJobQueue(ctx, conn.Conn(), func(ctx context.Context) error {
		res, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil)
		if err != nil {
			return err
		}
		for _, v := range res.Versions {
			applied = append(applied, v.Version)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("migrate job queue: %w", err)
	}
	if len(applied) > 0 {
		logger.InfoContext(ctx, "Job queue migrations applied",
			slog.Int("from", applied[0]), slog.Int("to", applied[len(applied)-1]))
	}
	return applied, nil
}
