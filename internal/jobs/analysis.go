package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"

	"github.com/xatlabs/xat/internal/capture"
	"github.com/xatlabs/xat/internal/postgres"
	"github.com/xatlabs/xat/tenancy"
	"github.com/xatlabs/xat/tenancy/storage"
)

// AnalysisArgs are the arguments of an analysis job. TenantSchema is also
// what the queue's row-level security checks: a tenant scope may add and
// see only jobs that name its own schema.
type AnalysisArgs struct {
	TenantID     int64  `json:"tenant_id"`
	TenantSchema string `json:"tenant_schema"`
	AnalysisID   int64  `json:"analysis_id"`
}

// Kind names analysis jobs in the queue.
func (AnalysisArgs) Kind() string { return "xat.analysis" }

// analysisWorker runs analysis jobs.
type analysisWorker struct {
	river.WorkerDefaults[AnalysisArgs]
	cfg Config
}

func (w *analysisWorker) Timeout(*river.Job[AnalysisArgs]) time.Duration { return w.cfg.JobTimeout }

// Work runs one attempt of an analysis. A job that cannot run at all
// (tenant gone or inactive, analysis deleted, capture unreadable) is
// cancelled with an error that says why, and is not retried; other errors
// are returned for River to retry with backoff, and the last attempt marks
// the analysis failed.
func (w *analysisWorker) Work(ctx context.Context, job *river.Job[AnalysisArgs]) error {
	args := job.Args
	log := w.cfg.Logger.With(
		slog.Int64("tenant_id", args.TenantID),
		slog.String("schema", args.TenantSchema),
		slog.Int64("job_id", job.ID),
		slog.Int64("analysis_id", args.AnalysisID),
		slog.Int("attempt", job.Attempt))
	log.DebugContext(ctx, "Analysis job picked up")

	t, err := w.cfg.DB.TenantByID(ctx, args.TenantID)
	switch {
	case errors.Is(err, tenancy.ErrTenantNotFound):
		return cancel(ctx, log, fmt.Errorf("partner %d no longer exists", args.TenantID))
	case err != nil:
		return w.retry(ctx, log, job, fmt.Errorf("load partner %d: %w", args.TenantID, err))
	case t.Schema != args.TenantSchema:
		// Ids are never reused, so only a job this program did not make
		// can get here; its other fields are not to be trusted either.
		return cancel(ctx, log, fmt.Errorf("job names schema %q, but partner %d has schema %q",
			args.TenantSchema, t.ID, t.Schema))
	}
	ctx = tenancy.WithTenant(ctx, t)

	if !t.Active {
		err := fmt.Errorf("partner %d is inactive", t.ID)
		w.fail(ctx, log, args.AnalysisID, "the partner is inactive")
		return cancel(ctx, log, err)
	}
	return w.run(ctx, log, job)
}

// run works an analysis in its tenant's scope, carried by ctx.
func (w *analysisWorker) run(ctx context.Context, log *slog.Logger, job *river.Job[AnalysisArgs]) error {
	id := job.Args.AnalysisID
	task, err := w.cfg.Store.StartAnalysis(ctx, id)
	switch {
	case errors.Is(err, postgres.ErrNotFound):
		return cancel(ctx, log, fmt.Errorf("analysis %d not found in partner %d", id, job.Args.TenantID))
	case errors.Is(err, postgres.ErrAnalysisFinished):
		log.InfoContext(ctx, "Analysis already finished; nothing to do")
		return nil
	case err != nil:
		return w.retry(ctx, log, job, err)
	}

	start := time.Now()
	res, err := w.analyze(ctx, log, task)
	if in, ok := errors.AsType[*capture.InputError](err); ok {
		// The user reads the whole reason on the analysis. The queue and
		// the log, outside the tenant's schema, get only its class and
		// counts: the reason may quote the file.
		w.fail(ctx, log, id, in.Error())
		log = log.With(slog.Int64("rows", in.Rows), slog.Int64("malformed_rows", in.Malformed))
		return cancel(ctx, log, fmt.Errorf("analysis %d rejected the capture: %w", id, in.Err))
	}
	if errors.Is(err, storage.ErrNotFound) {
		w.fail(ctx, log, id, "the uploaded file is missing from storage")
		return cancel(ctx, log, err)
	}
	if err != nil {
		return w.retry(ctx, log, job, err)
	}

	data, err := json.Marshal(res)
	if err != nil {
		return w.retry(ctx, log, job, fmt.Errorf("encode result of analysis %d: %w", id, err))
	}
	err = w.cfg.Store.FinishAnalysis(ctx, id, data)
	if errors.Is(err, postgres.ErrNotFound) {
		log.InfoContext(ctx, "Analysis deleted while it ran; result dropped")
		return nil
	}
	if err != nil {
		return w.retry(ctx, log, job, err)
	}
	log.InfoContext(ctx, "Analysis done",
		slog.Int64("rows", res.Rows),
		slog.Int64("malformed_rows", res.MalformedRows),
		slog.Int64("bytes", res.BytesRead),
		slog.Duration("duration", time.Since(start)))
	return nil
}

// analyze streams the uploaded file through capture.Analyze, writing
// progress to the analysis row as it goes.
func (w *analysisWorker) analyze(ctx context.Context, log *slog.Logger, task *postgres.AnalysisTask) (*capture.Result, error) {
	rc, _, err := w.cfg.Files.Get(ctx, task.FileKey)
	if err != nil {
		return nil, fmt.Errorf("open data %d: %w", task.DataID, err)
	}
	defer rc.Close()

	var written float32
	progress := func(read int64) {
		if task.Size <= 0 {
			return
		}
		// The finished analysis writes 1 itself; skip steps under 1%.
		p := float32(float64(read) / float64(task.Size))
		if p >= 1 || p-written < 0.01 {
			return
		}
		written = p
		if err := w.cfg.Store.SetAnalysisProgress(ctx, task.AnalysisID, p); err != nil {
			log.WarnContext(ctx, "Analysis progress not recorded", slog.Any("error", err))
		}
	}
	res, err := capture.Analyze(ctx, rc, capture.Options{
		Progress:         progress,
		ProgressInterval: w.cfg.ProgressInterval,
	})
	if err != nil {
		return nil, fmt.Errorf("analyse data %d: %w", task.DataID, err)
	}
	return res, nil
}

// retry returns err for River to try the job again later, and puts the
// analysis back in the queue meanwhile. On the last attempt it marks the
// analysis failed instead.
func (w *analysisWorker) retry(ctx context.Context, log *slog.Logger, job *river.Job[AnalysisArgs], err error) error {
	if _, scoped := tenancy.FromContext(ctx); !scoped {
		log.WarnContext(ctx, "Analysis attempt failed; retry scheduled", slog.Any("error", err))
		return err
	}
	if job.Attempt >= job.MaxAttempts {
		log.ErrorContext(ctx, "Analysis gave up", slog.Any("error", err))
		w.fail(ctx, log, job.Args.AnalysisID,
			fmt.Sprintf("the analysis failed %d times for internal reasons; ask again later", job.Attempt))
		return err
	}
	log.WarnContext(ctx, "Analysis attempt failed; retry scheduled", slog.Any("error", err))
	bctx, done := bookkeeping(ctx)
	defer done()
	if rerr := w.cfg.Store.RequeueAnalysis(bctx, job.Args.AnalysisID); rerr != nil {
		log.WarnContext(ctx, "Analysis not put back in the queue", slog.Any("error", rerr))
	}
	return err
}

// fail marks an analysis failed with a reason for the user, logging what
// prevents it. It works after ctx has ended, so that a timed-out attempt
// still leaves its analysis in a final state.
func (w *analysisWorker) fail(ctx context.Context, log *slog.Logger, id int64, reason string) {
	bctx, done := bookkeeping(ctx)
	defer done()
	err := w.cfg.Store.FailAnalysis(bctx, id, reason)
	if err != nil && !errors.Is(err, postgres.ErrNotFound) {
		log.WarnContext(ctx, "Analysis failure not recorded", slog.Any("error", err))
	}
}

// bookkeeping returns a context for the last writes of an attempt: it
// keeps ctx's values (the tenant) but not its deadline or cancellation.
func bookkeeping(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
}

// cancel ends a job that must not run again, with err as its reason.
func cancel(ctx context.Context, log *slog.Logger, err error) error {
	log.WarnContext(ctx, "Analysis job cancelled", slog.Any("error", err))
	return river.JobCancel(err)
}
