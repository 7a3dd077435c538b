package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// MigrateJobQueue runs migrate, which applies the job queue's own
// migrations, and then grants tenant roles what they need of the queue
// (migrations/shared/0002_job_queue.sql says what and why). conn must log
// in as the owner of the schemas. Throughout, conn holds an advisory lock
// that the shared migration takes too, so that concurrent runs, from
// several processes or alongside xat migrate's shared step, apply in turn
// and each sees what the one before committed. It may run again and again.
func MigrateJobQueue(ctx context.Context, conn *pgx.Conn, migrate func(ctx context.Context) error) (err error) {
	const key = `hashtextextended('xat.job_queue', 0)`
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(`+key+`)`); err != nil {
		return fmt.Errorf("lock job queue migration: %w", err)
	}
	defer func() {
		// The lock is the session's: release it even when ctx has ended,
		// and if that fails, end the session, which releases it too.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, uerr := conn.Exec(uctx, `SELECT pg_advisory_unlock(`+key+`)`); uerr != nil {
			conn.Close(uctx)
			err = errors.Join(err, fmt.Errorf("unlock job queue migration: %w", uerr))
		}
	}()

	if err := migrate(ctx); err != nil {
		return err
	}

	// The function exists once shared migration 2 has run; a database that
	// has yet to run it gets the grants from that migration instead.
	_, err = conn.Exec(ctx, `
		DO $$
		BEGIN
		    IF to_regprocedure('public.xat_secure_job_queue()') IS NOT NULL THEN
		        PERFORM public.xat_secure_job_queue();
		    END IF;
		END $$`)
	if err != nil {
		return fmt.Errorf("grant job queue access: %w", err)
	}
	return nil
}
