package jobs_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/xatlabs/xat/internal/auth"
	"github.com/xatlabs/xat/internal/jobs"
	"github.com/xatlabs/xat/internal/postgres"
	"github.com/xatlabs/xat/migrations"
	"github.com/xatlabs/xat/tenancy"
	"github.com/xatlabs/xat/tenancy/storage"
	"github.com/xatlabs/xat/tenancy/tenancytest"
)

func TestMain(m *testing.M) { tenancytest.Run(m) }

var guards = []tenancy.Guard{tenancy.GuardRole, tenancy.GuardPolicy}

// queueDB is a test database with the job queue migrated, and a pool that
// logs in as its owner, as workers do.
type queueDB struct {
	db    *tenancy.DB
	owner *pgxpool.Pool
}

type queueKey struct {
	guard tenancy.Guard
	name  string
}

var queues struct {
	mu  sync.Mutex
	dbs map[queueKey]*queueDB
}

// openQueueDB returns the test database of guard, migrated with XAT's
// migrations and River's, shared by every test of the binary.
func openQueueDB(t *testing.T, guard tenancy.Guard) *queueDB {
	t.Helper()
	return openNamedQueueDB(t, guard, "jobs")
}

// openNamedQueueDB is openQueueDB for a database of its own, named name,
// for tests whose clients must not meet other tests' clients (River elects
// one leader among all the clients of a database).
func openNamedQueueDB(t *testing.T, guard tenancy.Guard, name string) *queueDB {
	t.Helper()
	shared, err := migrations.Shared()
	require.NoError(t, err)
	tenant, err := migrations.Tenant()
	require.NoError(t, err)
	db := tenancytest.Open(t, tenancytest.Options{Shared: shared, Tenant: tenant, Guard: guard, Name: name})

	queues.mu.Lock()
	defer queues.mu.Unlock()
	key := queueKey{guard, name}
	if q := queues.dbs[key]; q != nil {
		return q
	}
	cfg, err := pgxpool.ParseConfig(tenancytest.ConnString(t))
	require.NoError(t, err)
	cfg.ConnConfig.Database = tenancytest.AdminConn(t, db).Config().Database
	cfg.MaxConns = 8
	owner, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	// The pool lives as long as the database, until the binary's end.

	_, err = jobs.Migrate(context.Background(), owner, nil)
	require.NoError(t, err)
	q := &queueDB{db: db, owner: owner}
	if queues.dbs == nil {
		queues.dbs = make(map[queueKey]*queueDB)
	}
	queues.dbs[key] = q
	return q
}

// fixture is a partner with a member, a collector and file storage, with
// an insert-only queue client; each test has its own River queue, so that
// only its own workers see its jobs.
type fixture struct {
	*queueDB
	store  *postgres.Store
	files  *storage.Store
	dir    string
	queue  string
	insert *jobs.Client

	tenant    *tenancy.Tenant
	ctx       context.Context
	member    postgres.Actor
	collector *postgres.Collector
}

func setup(t *testing.T, guard tenancy.Guard) *fixture {
	t.Helper()
	q := openQueueDB(t, guard)
	f := &fixture{queueDB: q, store: postgres.New(q.db), queue: "t_" + randomHex(6)}

	f.dir = t.TempDir()
	files, err := storage.Open(context.Background(), "file://"+filepath.ToSlash(f.dir))
	require.NoError(t, err)
	t.Cleanup(func() { files.Close() })
	f.files = files

	f.insert, err = jobs.New(nil, jobs.Config{Queue: f.queue, MaxAttempts: 2})
	require.NoError(t, err)
	f.tenant, f.ctx, f.member, f.collector = f.newPartner(t)
	return f
}

// newPartner provisions a partner with a member who owns a collector.
func (f *fixture) newPartner(t *testing.T) (*tenancy.Tenant, context.Context, postgres.Actor, *postgres.Collector) {
	t.Helper()
	id := randomHex(5)
	tn, err := f.db.CreateTenant(context.Background(), tenancy.NewTenant{
		Name:   "Test " + id,
		Schema: f.db.Config().SchemaPrefix + "t_" + id,
		Domain: "t-" + id + ".test",
	})
	require.NoError(t, err)
	ctx := tenancy.WithTenant(context.Background(), tn)

	u, err := f.store.CreateUser(context.Background(), "user-"+randomHex(6)+"@example.test", testHash, false)
	require.NoError(t, err)
	require.NoError(t, f.store.AddMember(context.Background(), tn.ID, u.ID, postgres.RoleMember))
	member := postgres.Actor{UserID: u.ID}

	ps, err := f.store.Platforms(context.Background())
	require.NoError(t, err)
	c, err := f.store.CreateCollector(ctx, member, "site", "machine", ps[0].ID)
	require.NoError(t, err)
	return tn, ctx, member, c
}

// worker starts a client that works this test's queue, and stops it when
// the test ends.
func (f *fixture) worker(t *testing.T) *jobs.Client {
	t.Helper()
	w, err := jobs.New(f.owner, jobs.Config{
		DB:               f.db,
		Store:            f.store,
		Files:            f.files,
		Logger:           slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
		Workers:          2,
		Queue:            f.queue,
		ProgressInterval: time.Millisecond,
		// Maintenance has a test of its own, on a database of its own.
		MaintenanceInterval: -1,
	})
	require.NoError(t, err)
	require.NoError(t, w.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, w.Stop(ctx))
	})
	return w
}

// upload stores a file for the fixture's collector and records it.
func (f *fixture) upload(t *testing.T, ctx context.Context, a postgres.Actor, c *postgres.Collector, path string) *postgres.CollectedData {
	t.Helper()
	in, err := os.Open(path)
	require.NoError(t, err)
	defer in.Close()
	obj, err := f.files.Put(ctx, itoa(c.ID), in, 1<<30)
	require.NoError(t, err)
	d, err := f.store.CreateData(ctx, a, postgres.NewData{
		CollectorID:  c.ID,
		FileKey:      obj.Key,
		OriginalName: filepath.Base(path),
		Size:         obj.Size,
		SHA256:       obj.SHA256,
	})
	require.NoError(t, err)
	return d
}

// analyse queues an analysis of d through the insert-only client.
func (f *fixture) analyse(t *testing.T, ctx context.Context, a postgres.Actor, d *postgres.CollectedData) *postgres.Analysis {
	t.Helper()
	an, err := f.store.CreateAnalysis(ctx, a, d.ID, f.insert.EnqueueAnalysis)
	require.NoError(t, err)
	require.Equal(t, postgres.AnalysisQueued, an.Status)
	return an
}

// waitFinished polls an analysis until it is done or failed.
func (f *fixture) waitFinished(t *testing.T, ctx context.Context, a postgres.Actor, id int64) *postgres.Analysis {
	t.Helper()
	var an *postgres.Analysis
	require.Eventually(t, func() bool {
		var err error
		an, err = f.store.Analysis(ctx, a, id)
		require.NoError(t, err)
		return an.Status == postgres.AnalysisDone || an.Status == postgres.AnalysisFailed
	}, 30*time.Second, 20*time.Millisecond, "analysis %d did not finish", id)
	return an
}

// jobState returns the River state of the newest job of this test's
// queue, read as the owner.
func (f *fixture) jobState(t *testing.T) (state string, errs []string) {
	t.Helper()
	err := f.owner.QueryRow(context.Background(), `
		SELECT state::text, coalesce((SELECT array_agg(e->>'error') FROM unnest(errors) e), '{}')
		FROM public.river_job WHERE queue = $1 ORDER BY id DESC LIMIT 1`, f.queue).Scan(&state, &errs)
	require.NoError(t, err)
	return state, errs
}

// waitJob waits until the newest job of this test's queue is in state,
// and returns the errors of its attempts.
func (f *fixture) waitJob(t *testing.T, state string) []string {
	t.Helper()
	var errs []string
	require.Eventually(t, func() bool {
		var got string
		got, errs = f.jobState(t)
		return got == state
	}, 30*time.Second, 20*time.Millisecond, "job never reached %s", state)
	return errs
}

var testHash = func() string {
	h, err := auth.TestHasher.Hash("a test password")
	if err != nil {
		panic(err)
	}
	return h
}()

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
