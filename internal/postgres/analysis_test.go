package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/xatlabs/xat/internal/postgres"
)

// noJob enqueues nothing.
func noJob(context.Context, pgx.Tx, *postgres.Analysis) error { return nil }

func TestAnalysisLifecycle(t *testing.T) {
	t.Parallel()
	forGuards(t, func(t *testing.T, f *fixture) {
		owner := postgres.Actor{UserID: newUser(t, f.store).ID}
		other := postgres.Actor{UserID: newUser(t, f.store).ID}
		d := newData(t, f, owner, newCollector(t, f, owner, "m"))

		// The job is added in the row's transaction: when it fails,
		// neither remains.
		var queued *postgres.Analysis
		failing := func(ctx context.Context, tx pgx.Tx, a *postgres.Analysis) error {
			queued = a
			return errors.New("queue down")
		}
		_, err := f.store.CreateAnalysis(f.ctx, owner, d.ID, failing)
		require.ErrorContains(t, err, "queue down")
		_, err = f.store.Analysis(f.ctx, owner, queued.ID)
		require.ErrorIs(t, err, postgres.ErrNotFound)

		_, err = f.store.CreateAnalysis(f.ctx, other, d.ID, noJob)
		require.ErrorIs(t, err, postgres.ErrNotFound, "someone else's data")
		an, err := f.store.CreateAnalysis(f.ctx, owner, d.ID, noJob)
		require.NoError(t, err)
		require.Equal(t, postgres.AnalysisQueued, an.Status)
		_, err = f.store.Analysis(f.ctx, other, an.ID)
		require.ErrorIs(t, err, postgres.ErrNotFound)
		list, _, err := f.store.Analyses(f.ctx, other, postgres.Page{})
		require.NoError(t, err)
		require.Empty(t, list)

		// A worker's view: start, progress, requeue, start over, finish.
		task, err := f.store.StartAnalysis(f.ctx, an.ID)
		require.NoError(t, err)
		require.Equal(t, &postgres.AnalysisTask{AnalysisID: an.ID, DataID: d.ID, FileKey: d.FileKey, Size: d.Size}, task)
		require.NoError(t, f.store.SetAnalysisProgress(f.ctx, an.ID, 0.5))
		got, err := f.store.Analysis(f.ctx, owner, an.ID)
		require.NoError(t, err)
		require.Equal(t, postgres.AnalysisRunning, got.Status)
		require.Equal(t, float32(0.5), got.Progress)
		require.NoError(t, f.store.RequeueAnalysis(f.ctx, an.ID))
		got, err = f.store.Analysis(f.ctx, owner, an.ID)
		require.NoError(t, err)
		require.Equal(t, postgres.AnalysisQueued, got.Status)

		_, err = f.store.StartAnalysis(f.ctx, an.ID)
		require.NoError(t, err)
		require.NoError(t, f.store.FinishAnalysis(f.ctx, an.ID, json.RawMessage(`{"rows": 3}`)))
		got, err = f.store.Analysis(f.ctx, owner, an.ID)
		require.NoError(t, err)
		require.Equal(t, postgres.AnalysisDone, got.Status)
		require.Equal(t, float32(1), got.Progress)
		require.JSONEq(t, `{"rows": 3}`, string(got.Result))
		require.NotNil(t, got.FinishedAt)

		// Finished is final.
		_, err = f.store.StartAnalysis(f.ctx, an.ID)
		require.ErrorIs(t, err, postgres.ErrAnalysisFinished)
		require.ErrorIs(t, f.store.FailAnalysis(f.ctx, an.ID, "late"), postgres.ErrNotFound)
		require.NoError(t, f.store.SetAnalysisProgress(f.ctx, an.ID, 0.1))
		got, err = f.store.Analysis(f.ctx, owner, an.ID)
		require.NoError(t, err)
		require.Equal(t, float32(1), got.Progress)

		// A queued analysis can fail; the reason is cut to size.
		an2, err := f.store.CreateAnalysis(f.ctx, owner, d.ID, noJob)
		require.NoError(t, err)
		require.NoError(t, f.store.FailAnalysis(f.ctx, an2.ID, strings.Repeat("é", 2000)))
		got, err = f.store.Analysis(f.ctx, owner, an2.ID)
		require.NoError(t, err)
		require.Equal(t, postgres.AnalysisFailed, got.Status)
		require.Len(t, *got.Error, 2000)

		// Deleting the data takes its analyses along.
		_, err = f.store.DeleteData(f.ctx, owner, d.ID)
		require.NoError(t, err)
		_, err = f.store.StartAnalysis(f.ctx, an.ID)
		require.ErrorIs(t, err, postgres.ErrNotFound)
		require.ErrorIs(t, f.store.FinishAnalysis(f.ctx, an.ID, json.RawMessage(`{}`)), postgres.ErrNotFound)
	})
}
