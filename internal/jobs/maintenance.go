package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/riverqueue/river"
)

// MaintenanceArgs is the periodic housekeeping job: it deletes expired
// login sessions (already refused, but kept until deleted) and login
// limits whose allowance is whole again, and removes the temp files of
// uploads cut short by a crash. It is scheduled by the
// elected leader among the running workers, so it runs once per period
// however many instances serve.
type MaintenanceArgs struct{}

// Kind names maintenance jobs in the queue.
func (MaintenanceArgs) Kind() string { return "xat.maintenance" }

// maintenanceWorker runs maintenance jobs.
type maintenanceWorker struct {
	river.WorkerDefaults[MaintenanceArgs]
	cfg Config
}

// Work does every housekeeping task, each whatever the others' outcome.
// A failure goes back to River, which records it on the job, with what
// was done; the next period tries again.
func (w *maintenanceWorker) Work(ctx context.Context, _ *river.Job[MaintenanceArgs]) error {
	sessions, serr := w.cfg.Store.DeleteExpiredSessions(ctx)
	limits, lerr := w.cfg.Store.DeleteRestoredLimits(ctx)
	files, ferr := w.cfg.Files.SweepTemp(ctx, w.cfg.TempFileAge)
	if err := errors.Join(serr, lerr, ferr); err != nil {
		return fmt.Errorf("maintenance (deleted %d expired sessions, %d restored limits, %d temp files): %w",
			sessions, limits, files, err)
	}
	w.cfg.Logger.InfoContext(ctx, "Maintenance done", slog.Int64("expired_sessions", sessions),
		slog.Int64("restored_limits", limits), slog.Int("temp_files", files))
	return nil
}

// maintenance returns the periodic job that schedules maintenance.
func maintenance(cfg Config) *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(cfg.MaintenanceInterval),
		func() (river.JobArgs, *river.InsertOpts) {
			return MaintenanceArgs{}, &river.InsertOpts{Queue: MaintenanceQueue, MaxAttempts: 1}
		},
		&river.PeriodicJobOpts{ID: MaintenanceArgs{}.Kind(), RunOnStart: true})
}
