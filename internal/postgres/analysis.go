package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/xatlabs/xat/tenancy"
)

// Analysis statuses.
const (
	AnalysisQueued  = "queued"
	AnalysisRunning = "running"
	AnalysisDone    = "done"
	AnalysisFailed  = "failed"
)

// Analysis is the analysis of one collected capture file. Status moves
// from queued to running to done or failed; Progress goes from 0 to 1
// while it runs. Result holds the summary (capture.Result as JSON) once
// done, Error the reason once failed.
type Analysis struct {
	ID         int64           `json:"id"`
	DataID     int64           `json:"data_id"`
	Status     string          `json:"status"`
	Progress   float32         `json:"progress"`
	Result     json.RawMessage `json:"result,omitempty"`
	Error      *string         `json:"error,omitempty"`
	OwnerID    int64           `json:"owner_id"`
	CreatedAt  time.Time       `json:"created_at"`
	StartedAt  *time.Time      `json:"started_at,omitempty"`
	FinishedAt *time.Time      `json:"finished_at,omitempty"`
}

const analysisColumns = `id, collected_data_id, status, progress, result, error, owner_id, created_at, started_at, finished_at`

func scanAnalysis(row pgx.CollectableRow) (*Analysis, error) {
	var a Analysis
	err := row.Scan(&a.ID, &a.DataID, &a.Status, &a.Progress, &a.Result, &a.Error,
		&a.OwnerID, &a.CreatedAt, &a.StartedAt, &a.FinishedAt)
	return &a, err
}

// Enqueue adds the background job of a new analysis inside the
// transaction that inserted its row, so that both commit or neither does.
type Enqueue func(ctx context.Context, tx pgx.Tx, a *Analysis) error

// CreateAnalysis queues an analysis of collected data the actor may see,
// owned by the actor, and calls enqueue in the same transaction. It
// returns ErrNotFound like Data, and enqueue's error, after which nothing
// was written.
func (s *Store) CreateAnalysis(ctx context.Context, a Actor, dataID int64, enqueue Enqueue) (*Analysis, error) {
	ctx, err := a.scope(ctx)
	if err != nil {
		return nil, fmt.Errorf("create analysis of data %d: %w", dataID, err)
	}
	var an *Analysis
	err = s.db.InTenant(ctx, func(ctx context.Context, tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `
			INSERT INTO capture_analyses (collected_data_id, owner_id)
			SELECT id, $3
			FROM collected_data
			WHERE id = $1 AND ($2 OR owner_id = $3)
			RETURNING `+analysisColumns,
			dataID, a.Admin, a.UserID)
		var err error
		if an, err = pgx.CollectExactlyOneRow(rows, scanAnalysis); err != nil {
			return notFound(err)
		}
		return enqueue(ctx, tx, an)
	})
	if isViolation(err, foreignKeyViolation, "capture_analyses_collected_data_id_fkey") {
		err = ErrNotFound // the data was deleted meanwhile
	}
	if err != nil {
		return nil, fmt.Errorf("create analysis of data %d: %w", dataID, err)
	}
	return an, nil
}

// Analysis returns an analysis of the partner in ctx that the actor may
// see. One that does not exist and one the actor may not see are both
// ErrNotFound.
func (s *Store) Analysis(ctx context.Context, a Actor, id int64) (*Analysis, error) {
	ctx, err := a.scope(ctx)
	if err != nil {
		return nil, fmt.Errorf("get analysis %d: %w", id, err)
	}
	an, err := tenancy.Row(ctx, s.db, scanAnalysis, `
		SELECT `+analysisColumns+`
		FROM capture_analyses
		WHERE id = $1 AND ($2 OR owner_id = $3)`, id, a.Admin, a.UserID)
	if err != nil {
		return nil, fmt.Errorf("get analysis %d: %w", id, notFound(err))
	}
	return an, nil
}

// AnalysisVisible returns nil when an analysis of the partner in ctx
// exists and the actor may see it, and ErrNotFound otherwise, like
// Analysis, without reading the analysis itself.
func (s *Store) AnalysisVisible(ctx context.Context, a Actor, id int64) error {
	ctx, err := a.scope(ctx)
	if err != nil {
		return fmt.Errorf("check analysis %d: %w", id, err)
	}
	_, err = tenancy.Row(ctx, s.db, pgx.RowTo[bool], `
		SELECT true
		FROM capture_analyses
		WHERE id = $1 AND ($2 OR owner_id = $3)`, id, a.Admin, a.UserID)
	if err != nil {
		return fmt.Errorf("check analysis %d: %w", id, notFound(err))
	}
	return nil
}

// Analyses lists the analyses of the partner in ctx that the actor may
// see, by id, one page at a time. It returns the next page's cursor, ""
// after the last page.
func (s *Store) Analyses(ctx context.Context, a Actor, page Page) ([]*Analysis, string, error) {
	limit, err := page.limit()
	if err != nil {
		return nil, "", fmt.Errorf("list analyses: %w", err)
	}
	after, err := parseIDCursor(page.After)
	if err != nil {
		return nil, "", fmt.Errorf("list analyses: %w", err)
	}
	ctx, err = a.scope(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("list analyses: %w", err)
	}

	owner, args := a.ownerFilter(after, limit+1)
	as, err := tenancy.Rows(ctx, s.db, scanAnalysis, `
		SELECT `+analysisColumns+`
		FROM capture_analyses
		WHERE id > $1 AND `+owner+`
		ORDER BY id
		LIMIT $2`, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list analyses: %w", err)
	}
	as, next := cut(as, limit, func(an *Analysis) string { return idCursor(an.ID) })
	return as, next, nil
}

// AnalysisTask is what a worker needs to run an analysis: the file to read
// and its size, for progress.
type AnalysisTask struct {
	AnalysisID int64
	DataID     int64
	FileKey    string
	Size       int64
}

// ErrAnalysisFinished is returned by StartAnalysis for an analysis that is
// already done or failed: there is nothing left to run.
var ErrAnalysisFinished = errors.New("analysis already finished")

// StartAnalysis marks an analysis of the partner in ctx running and
// returns its task. It runs as the system, for background work. An
// analysis that was left running by an interrupted attempt starts over.
// It returns ErrNotFound when the analysis does not exist (it, or its
// data, was deleted) and ErrAnalysisFinished when it is done or failed.
func (s *Store) StartAnalysis(ctx context.Context, id int64) (*AnalysisTask, error) {
	var task AnalysisTask
	var status string
	err := s.db.InTenant(systemScope(ctx), func(ctx context.Context, tx pgx.Tx) error {
		// Lock the row first, so two workers given the same analysis run
		// it one after the other and the second sees it finished.
		err := tx.QueryRow(ctx, `
			SELECT a.status, d.id, d.file_key, d.size_bytes
			FROM capture_analyses a
			JOIN collected_data d ON d.id = a.collected_data_id
			WHERE a.id = $1
			FOR UPDATE OF a`, id).Scan(&status, &task.DataID, &task.FileKey, &task.Size)
		if err != nil || status == AnalysisDone || status == AnalysisFailed {
			return err
		}
		_, err = tx.Exec(ctx, `
			UPDATE capture_analyses
			SET status = 'running', progress = 0, error = NULL,
			    started_at = now(), finished_at = NULL
			WHERE id = $1`, id)
		return err
	})
	if err == nil && (status == AnalysisDone || status == AnalysisFailed) {
		err = ErrAnalysisFinished
	}
	if err != nil {
		return nil, fmt.Errorf("start analysis %d: %w", id, notFound(err))
	}
	task.AnalysisID = id
	return &task, nil
}

// SetAnalysisProgress records the progress, from 0 to 1, of a running
// analysis of the partner in ctx. It changes nothing once the analysis
// has finished.
func (s *Store) SetAnalysisProgress(ctx context.Context, id int64, progress float32) error {
	progress = min(max(progress, 0), 1)
	err := s.db.InTenant(systemScope(ctx), func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `
			UPDATE capture_analyses SET progress = $2
			WHERE id = $1 AND status = 'running'`, id, progress)
		return err
	})
	if err != nil {
		return fmt.Errorf("set progress of analysis %d: %w", id, err)
	}
	return nil
}

// FinishAnalysis stores the result of a running analysis of the partner in
// ctx and marks it done. result must be a JSON value. It returns
// ErrNotFound when the analysis is no longer running (it was deleted
// meanwhile).
func (s *Store) FinishAnalysis(ctx context.Context, id int64, result json.RawMessage) error {
	if !json.Valid(result) {
		return fmt.Errorf("finish analysis %d: %w", id, &InputError{Field: "result", Reason: "must be JSON"})
	}
	err := s.finish(ctx, id, `
		UPDATE capture_analyses
		SET status = 'done', progress = 1, result = $2, error = NULL, finished_at = now()
		WHERE id = $1 AND status = 'running'`, result)
	if err != nil {
		return fmt.Errorf("finish analysis %d: %w", id, err)
	}
	return nil
}

// RequeueAnalysis puts a running analysis of the partner in ctx back in the
// queued state, for an attempt that failed and will be retried. It changes
// nothing when the analysis is not running.
func (s *Store) RequeueAnalysis(ctx context.Context, id int64) error {
	err := s.db.InTenant(systemScope(ctx), func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `
			UPDATE capture_analyses SET status = 'queued', progress = 0
			WHERE id = $1 AND status = 'running'`, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("requeue analysis %d: %w", id, err)
	}
	return nil
}

// maxAnalysisError bounds a stored failure reason, in bytes.
const maxAnalysisError = 2000

// FailAnalysis marks an analysis of the partner in ctx failed with a
// reason fit for the user who asked for it. A queued analysis may fail
// too, when its job cannot run at all. The reason is cut to 2000 bytes.
// It returns ErrNotFound when the analysis is gone or already finished.
func (s *Store) FailAnalysis(ctx context.Context, id int64, reason string) error {
	reason = truncate(reason, maxAnalysisError)
	err := s.finish(ctx, id, `
		UPDATE capture_analyses
		SET status = 'failed', error = $2, finished_at = now()
		WHERE id = $1 AND status IN ('queued', 'running')`, reason)
	if err != nil {
		return fmt.Errorf("fail analysis %d: %w", id, err)
	}
	return nil
}

func (s *Store) finish(ctx context.Context, id int64, sql string, arg any) error {
	return s.db.InTenant(systemScope(ctx), func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, sql, id, arg)
		if err == nil && tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		return err
	})
}

// truncate cuts s to at most n bytes of valid UTF-8.
func truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
