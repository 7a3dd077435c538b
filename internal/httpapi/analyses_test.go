package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/xatlabs/xat/internal/capture"
	"github.com/xatlabs/xat/internal/httpapi"
	"github.com/xatlabs/xat/internal/jobs"
	"github.com/xatlabs/xat/internal/postgres"
	"github.com/xatlabs/xat/tenancy"
)

func analysisPath(id int64) string { return "/api/v1/analyses/" + itoa(id) }

// analysisList is the body of GET /api/v1/analyses.
type analysisList struct {
	Items []*postgres.Analysis `json:"items"`
	Next  *string              `json:"next"`
}

// worker starts a job worker on the fixture's queue, stopped when the
// test ends.
func (f *dataFixture) worker(t *testing.T) {
	t.Helper()
	w, err := jobs.New(f.owner, jobs.Config{
		DB:      f.db,
		Store:   f.store,
		Files:   f.files,
		Logger:  slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
		Workers: 2,
		Queue:   f.queue,
	})
	require.NoError(t, err)
	require.NoError(t, w.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, w.Stop(ctx))
	})
}

// finished polls an analysis through the API until it is done or failed.
func finished(t *testing.T, c client, id int64) *postgres.Analysis {
	t.Helper()
	var an postgres.Analysis
	require.Eventually(t, func() bool {
		an = decode[postgres.Analysis](t, c.Get(analysisPath(id)), http.StatusOK)
		return an.Status == postgres.AnalysisDone || an.Status == postgres.AnalysisFailed
	}, 30*time.Second, 20*time.Millisecond, "analysis %d did not finish", id)
	return &an
}

// TestAnalyses queues analyses through the API while no worker runs,
// checks who sees them, then starts a worker and reads the results: a
// summary for a good capture, capture's reason for a bad one.
func TestAnalyses(t *testing.T) {
	t.Parallel()
	forGuards(t, func(t *testing.T, guard tenancy.Guard) {
		f := setupData(t, guard, httpapi.Config{})
		a := f.a
		c := f.as(t, a, a.member)
		col := a.member.collectors[0]
		good, err := os.ReadFile("../capture/testdata/two_hosts.csv.gz")
		require.NoError(t, err)
		dGood := decode[postgres.CollectedData](t, c.Post(uploadPath(col.ID), unsized{bytes.NewReader(good)}), http.StatusCreated)
		dBad := decode[postgres.CollectedData](t, c.Post(uploadPath(col.ID), unsized{bytes.NewReader([]byte("\x00\x01\x02binary"))}), http.StatusCreated)

		res := c.Post("/api/v1/analyses", obj{"data_id": dGood.ID})
		anGood := decode[postgres.Analysis](t, res, http.StatusAccepted)
		require.Equal(t, analysisPath(anGood.ID), res.Header.Get("Location"))
		require.Equal(t, postgres.AnalysisQueued, anGood.Status)
		require.Equal(t, dGood.ID, anGood.DataID)
		require.Equal(t, a.member.ID, anGood.OwnerID)
		anBad := decode[postgres.Analysis](t, c.Post("/api/v1/analyses", obj{"data_id": dBad.ID}), http.StatusAccepted)

		list := decode[analysisList](t, c.Get("/api/v1/analyses?limit=1"), http.StatusOK)
		require.Len(t, list.Items, 1)
		require.NotNil(t, list.Next)
		list = decode[analysisList](t, c.Get("/api/v1/analyses?limit=1&cursor="+*list.Next), http.StatusOK)
		require.Equal(t, anBad.ID, list.Items[0].ID)
		require.Nil(t, list.Next)

		// Nobody else in the partner, and nobody of another partner, sees
		// them or may analyse the data.
		other := f.addUser(t, a, postgres.RoleMember)
		for _, c := range []client{f.as(t, a, other), f.as(t, f.b, f.b.admin)} {
			requireError(t, c.Get(analysisPath(anGood.ID)), http.StatusNotFound, "not_found")
			requireError(t, c.Post("/api/v1/analyses", obj{"data_id": dGood.ID}), http.StatusNotFound, "not_found")
			list := decode[analysisList](t, c.Get("/api/v1/analyses"), http.StatusOK)
			require.Empty(t, list.Items)
		}
		admin := decode[analysisList](t, f.as(t, a, a.admin).Get("/api/v1/analyses"), http.StatusOK)
		require.Len(t, admin.Items, 2)

		requireError(t, c.Post("/api/v1/analyses", obj{}), http.StatusBadRequest, "bad_request")
		requireError(t, c.Post("/api/v1/analyses", obj{"data_id": "1"}), http.StatusBadRequest, "bad_request")
		requireError(t, c.Post("/api/v1/analyses", obj{"data_id": 0}), http.StatusNotFound, "not_found")
		requireError(t, c.Post("/api/v1/analyses", obj{"data_id": 999999}), http.StatusNotFound, "not_found")

		// The queued analyses wait for a worker.
		time.Sleep(100 * time.Millisecond)
		got := decode[postgres.Analysis](t, c.Get(analysisPath(anGood.ID)), http.StatusOK)
		require.Equal(t, postgres.AnalysisQueued, got.Status)

		f.worker(t)
		done := finished(t, c, anGood.ID)
		require.Equal(t, postgres.AnalysisDone, done.Status, "error: %v", done.Error)
		require.Equal(t, float32(1), done.Progress)
		var result capture.Result
		require.NoError(t, json.Unmarshal(done.Result, &result))
		require.True(t, result.Gzip)
		require.Equal(t, capture.FormatCSV, result.Format)
		require.Len(t, result.Hosts, 2)

		failed := finished(t, c, anBad.ID)
		require.Equal(t, postgres.AnalysisFailed, failed.Status)
		require.NotNil(t, failed.Error)
		require.Contains(t, *failed.Error, "binary data")
		require.Nil(t, failed.Result)
	})
}
