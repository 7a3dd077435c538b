package jobs

import (
	"context"
	"errors"
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

// Work does every housekeeping task, each whatever the others' outcome,
// and returns their errors; the next period tries again.
func (w *maintenanceWorker) Work(ctx context.Context, _ *river.Job[MaintenanceArgs]) error {
	sessions, serr := w.cfg.Store.DeleteExpiredSessions(ctx)
	limits, lerr := w.cfg.Store.DeleteRestoredLimits(ctx)
	files, ferr := w.cfg.Files.SweepTemp(ctx, w.cfg.TempFileAge)
	err := errors.Join(serr, lerr, ferr)
	log := w.cfg.Logger.With(slog.Int64("expired_sessions", sessions), slog.Int64("restored_limits", limits),
		slog.Int("temp_files", files))
	if err != nil {
		log.WarnContext(ctx, "Maintenance incomplete", slog.Any("error", err))
		return err
	}
	log.InfoContext(ctx, "Maintenance done")
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
