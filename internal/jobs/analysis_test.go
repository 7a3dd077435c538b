package jobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"
	"gocloud.dev/blob/memblob"

	"github.com/xatlabs/xat/internal/capture"
	"github.com/xatlabs/xat/internal/jobs"
	"github.com/xatlabs/xat/internal/postgres"
	"github.com/xatlabs/xat/tenancy"
	"github.com/xatlabs/xat/tenancy/storage"
)

const goodCapture = "../capture/testdata/two_hosts.csv"

// forGuards runs test once under each database guard, in parallel.
func forGuards(t *testing.T, test func(t *testing.T, guard tenancy.Guard)) {
	for _, g := range guards {
		t.Run(g.String(), func(t *testing.T) {
			t.Parallel()
			test(t, g)
		})
	}
}

// TestAnalysisSurvivesWorkerRestart queues an analysis while no worker
// runs, then starts one, which finds the job in the database and runs it
// to the end.
func TestAnalysisSurvivesWorkerRestart(t *testing.T) {
	t.Parallel()
	forGuards(t, func(t *testing.T, guard tenancy.Guard) {
		f := setup(t, guard)
		d := f.upload(t, f.ctx, f.member, f.collector, goodCapture)
		an := f.analyse(t, f.ctx, f.member, d)

		state, _ := f.jobState(t)
		require.Equal(t, "available", state)
		got, err := f.store.Analysis(f.ctx, f.member, an.ID)
		require.NoError(t, err)
		require.Equal(t, postgres.AnalysisQueued, got.Status)

		f.worker(t)
		got = f.waitFinished(t, f.ctx, f.member, an.ID)
		require.Equal(t, postgres.AnalysisDone, got.Status, "error: %v", got.Error)
		require.Nil(t, got.Error)
		require.Equal(t, float32(1), got.Progress)
		require.NotNil(t, got.StartedAt)
		require.NotNil(t, got.FinishedAt)

		// The stored result is capture's, for the uploaded file.
		want := analyseFile(t, goodCapture)
		var res capture.Result
		require.NoError(t, json.Unmarshal(got.Result, &res))
		require.Equal(t, want.Rows, res.Rows)
		require.Equal(t, want.ValidRows, res.ValidRows)
		require.Equal(t, len(want.Hosts), len(res.Hosts))
		require.Equal(t, want.Overall.Samples, res.Overall.Samples)

		f.waitJob(t, "completed")
	})
}

// TestAnalysisBadCapture fails the analysis with capture's reason and
// cancels the job: a bad file is not retried.
func TestAnalysisBadCapture(t *testing.T) {
	t.Parallel()
	forGuards(t, func(t *testing.T, guard tenancy.Guard) {
		f := setup(t, guard)
		bad := filepath.Join(t.TempDir(), "bad.csv")
		require.NoError(t, os.WriteFile(bad, []byte("when,where\n1,2\n3,4\n"), 0o600))
		d := f.upload(t, f.ctx, f.member, f.collector, bad)
		an := f.analyse(t, f.ctx, f.member, d)

		f.worker(t)
		got := f.waitFinished(t, f.ctx, f.member, an.ID)
		require.Equal(t, postgres.AnalysisFailed, got.Status)
		require.NotNil(t, got.Error)
		require.Contains(t, *got.Error, "unreadable capture")
		require.Contains(t, *got.Error, "timestamp")
		require.Nil(t, got.Result)

		errs := f.waitJob(t, "cancelled")
		require.Len(t, errs, 1, "a bad capture is tried once")
		require.Contains(t, errs[0], "unreadable capture")
		require.NotContains(t, errs[0], "when", "the queue must not quote the file")
	})
}

// TestAnalysisMissingFile fails the analysis when its file is gone from
// storage, without retrying.
func TestAnalysisMissingFile(t *testing.T) {
	t.Parallel()
	f := setup(t, tenancy.GuardRole)
	d := f.upload(t, f.ctx, f.member, f.collector, goodCapture)
	an := f.analyse(t, f.ctx, f.member, d)
	require.NoError(t, f.files.Delete(f.ctx, d.FileKey))

	f.worker(t)
	got := f.waitFinished(t, f.ctx, f.member, an.ID)
	require.Equal(t, postgres.AnalysisFailed, got.Status)
	require.Contains(t, *got.Error, "missing")
}

// TestAnalysisStaysInItsTenant checks that a job runs only in the scope of
// the tenant it names: a job of partner B carrying an analysis id of
// partner A finds nothing and touches nothing of A; and that a tenant
// scope can neither add a job naming another tenant nor see its jobs.
func TestAnalysisStaysInItsTenant(t *testing.T) {
	t.Parallel()
	forGuards(t, func(t *testing.T, guard tenancy.Guard) {
		f := setup(t, guard)
		d := f.upload(t, f.ctx, f.member, f.collector, goodCapture)
		tenantB, ctxB, memberB, _ := f.newPartner(t)

		// A's analysis has its job on a queue that no worker here runs.
		other, err := jobs.New(nil, jobs.Config{Queue: f.queue + "_idle"})
		require.NoError(t, err)
		anA, err := f.store.CreateAnalysis(f.ctx, f.member, d.ID, other.EnqueueAnalysis)
		require.NoError(t, err)

		// A job for B with A's analysis id, added as the owner, as a
		// forged or corrupted job would be.
		owner, err := river.NewClient(riverpgxv5.New(f.owner), &river.Config{
			Schema:              "public",
			SkipUnknownJobCheck: true,
		})
		require.NoError(t, err)
		_, err = owner.Insert(context.Background(), jobs.AnalysisArgs{
			TenantID:     tenantB.ID,
			TenantSchema: tenantB.Schema,
			AnalysisID:   anA.ID,
		}, &river.InsertOpts{Queue: f.queue, MaxAttempts: 1})
		require.NoError(t, err)

		// Tenant A's scope sees its own job, not B's, and cannot add one
		// that names B.
		n, err := tenancy.Row(f.ctx, f.db, pgx.RowTo[int],
			`SELECT count(*)::int FROM public.river_job WHERE queue LIKE $1 || '%'`, f.queue)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		n, err = tenancy.Row(ctxB, f.db, pgx.RowTo[int],
			`SELECT count(*)::int FROM public.river_job WHERE queue LIKE $1 || '%'`, f.queue)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		err = f.db.InTenant(f.ctx, func(ctx context.Context, tx pgx.Tx) error {
			_, err := owner.InsertTx(ctx, tx, jobs.AnalysisArgs{
				TenantID: tenantB.ID, TenantSchema: tenantB.Schema, AnalysisID: 1,
			}, &river.InsertOpts{Queue: f.queue})
			return err
		})
		var pgErr *pgconn.PgError
		require.ErrorAs(t, err, &pgErr)
		require.Equal(t, "42501", pgErr.Code, "row-level security refuses it: %v", err)

		// The worker runs only B's job: it finds no analysis with that id
		// in B and ends it, leaving A's analysis queued.
		f.worker(t)
		errs := f.waitJob(t, "cancelled")
		require.Contains(t, errs[0], "not found in partner "+strconv.FormatInt(tenantB.ID, 10))

		got, err := f.store.Analysis(f.ctx, f.member, anA.ID)
		require.NoError(t, err)
		require.Equal(t, postgres.AnalysisQueued, got.Status)
		list, _, err := f.store.Analyses(ctxB, postgres.Actor{UserID: memberB.UserID, Admin: true}, postgres.Page{})
		require.NoError(t, err)
		require.Empty(t, list)
	})
}

// TestAnalysisInactiveTenant ends the job of a deactivated partner
// cleanly and marks its analysis failed.
func TestAnalysisInactiveTenant(t *testing.T) {
	t.Parallel()
	forGuards(t, func(t *testing.T, guard tenancy.Guard) {
		f := setup(t, guard)
		d := f.upload(t, f.ctx, f.member, f.collector, goodCapture)
		an := f.analyse(t, f.ctx, f.member, d)
		_, err := f.db.SetActive(context.Background(), f.tenant.Schema, false)
		require.NoError(t, err)

		f.worker(t)
		errs := f.waitJob(t, "cancelled")
		require.Contains(t, errs[0], "inactive")

		got, err := f.store.Analysis(f.ctx, f.member, an.ID)
		require.NoError(t, err)
		require.Equal(t, postgres.AnalysisFailed, got.Status)
		require.Equal(t, "the partner is inactive", *got.Error)
	})
}

// TestAnalysisDeletedTenant ends the job of a partner that was deleted
// after it was queued. It does not run in parallel: dropping a schema
// locks shared tables that other tests write (see newTenant in the
// postgres tests).
func TestAnalysisDeletedTenant(t *testing.T) {
	for _, guard := range guards {
		t.Run(guard.String(), func(t *testing.T) {
			f := setup(t, guard)
			d := f.upload(t, f.ctx, f.member, f.collector, goodCapture)
			f.analyse(t, f.ctx, f.member, d)
			_, err := f.db.SetActive(context.Background(), f.tenant.Schema, false)
			require.NoError(t, err)
			require.NoError(t, f.db.DeleteTenant(context.Background(), f.tenant.Schema))

			f.worker(t)
			errs := f.waitJob(t, "cancelled")
			require.Contains(t, errs[0], "no longer exists")
		})
	}
}

func analyseFile(t *testing.T, path string) *capture.Result {
	t.Helper()
	in, err := os.Open(path)
	require.NoError(t, err)
	defer in.Close()
	res, err := capture.Analyze(context.Background(), in, capture.Options{})
	require.NoError(t, err)
	return res
}

func itoa(id int64) string { return strconv.FormatInt(id, 10) }

// captureRows generates a CSV capture of about size bytes, row by row.
type captureRows struct {
	size, n int64
	row     int64
	buf     []byte
}

func (c *captureRows) Read(p []byte) (int, error) {
	if c.n == 0 && len(c.buf) == 0 {
		c.buf = []byte("timestamp,host,cpu_pct,read_iops,write_iops\n")
	}
	for len(c.buf) < len(p) && c.n < c.size {
		ts := 1709287200 + c.row/2
		line := strconv.AppendInt(nil, ts, 10)
		line = append(line, ",host-"...)
		line = strconv.AppendInt(line, c.row%2, 10)
		line = append(line, ",42.5,100,50\n"...)
		c.buf = append(c.buf, line...)
		c.n += int64(len(line))
		c.row++
	}
	if len(c.buf) == 0 {
		return 0, io.EOF
	}
	k := copy(p, c.buf)
	c.buf = c.buf[k:]
	return k, nil
}

// TestAnalysisProgress watches a large capture's analysis report progress
// between 0 and 1 while it runs.
func TestAnalysisProgress(t *testing.T) {
	t.Parallel()
	f := setup(t, tenancy.GuardRole)
	obj, err := f.files.Put(f.ctx, itoa(f.collector.ID), &captureRows{size: 64 << 20}, 1<<30)
	require.NoError(t, err)
	d, err := f.store.CreateData(f.ctx, f.member, postgres.NewData{
		CollectorID: f.collector.ID, FileKey: obj.Key, Size: obj.Size, SHA256: obj.SHA256,
	})
	require.NoError(t, err)
	an := f.analyse(t, f.ctx, f.member, d)

	f.worker(t)
	var seen []float32
	require.Eventually(t, func() bool {
		got, err := f.store.Analysis(f.ctx, f.member, an.ID)
		require.NoError(t, err)
		if got.Status == postgres.AnalysisRunning && got.Progress > 0 {
			seen = append(seen, got.Progress)
		}
		return got.Status == postgres.AnalysisDone
	}, 60*time.Second, 2*time.Millisecond)
	t.Logf("progress seen while running: %d values, from %v to %v", len(seen), first(seen), last(seen))
	require.NotEmpty(t, seen, "no progress was seen while the analysis ran")
	for i, p := range seen {
		require.Less(t, p, float32(1))
		if i > 0 {
			require.GreaterOrEqual(t, p, seen[i-1], "progress never goes back")
		}
	}
}

func first(ps []float32) float32 {
	if len(ps) == 0 {
		return 0
	}
	return ps[0]
}

func last(ps []float32) float32 {
	if len(ps) == 0 {
		return 0
	}
	return ps[len(ps)-1]
}

// flakyBucket is a storage bucket whose reads fail while fails is
// positive, as a storage outage would.
type flakyBucket struct {
	storage.Bucket
	fails atomic.Int32
}

func (b *flakyBucket) NewReader(ctx context.Context, key string) (io.ReadCloser, storage.Attrs, error) {
	if b.fails.Add(-1) >= 0 {
		return nil, storage.Attrs{}, errors.New("storage unreachable")
	}
	return b.Bucket.NewReader(ctx, key)
}

// TestAnalysisRetries retries an analysis that failed for a transient
// reason, and marks it failed after the last attempt.
func TestAnalysisRetries(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		fails  int32
		status string
	}{
		"recovers": {fails: 1, status: postgres.AnalysisDone},
		"gives up": {fails: 1000, status: postgres.AnalysisFailed},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := setup(t, tenancy.GuardRole)
			flaky := &flakyBucket{Bucket: storage.NewBlobBucket(memblob.OpenBucket(nil))}
			flaky.fails.Store(tc.fails)
			f.files = storage.New(flaky)
			d := f.upload(t, f.ctx, f.member, f.collector, goodCapture)
			an := f.analyse(t, f.ctx, f.member, d)

			f.worker(t)
			got := f.waitFinished(t, f.ctx, f.member, an.ID)
			require.Equal(t, tc.status, got.Status)
			var errs []string
			if tc.status == postgres.AnalysisDone {
				errs = f.waitJob(t, "completed")
				require.Len(t, errs, 1)
			} else {
				require.Contains(t, *got.Error, "failed 2 times")
				errs = f.waitJob(t, "discarded")
				require.Len(t, errs, 2)
			}
			require.Contains(t, errs[0], "storage unreachable")
		})
	}
}
