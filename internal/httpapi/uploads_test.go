package httpapi_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/xatlabs/xat/internal/httpapi"
	"github.com/xatlabs/xat/internal/jobs"
	"github.com/xatlabs/xat/internal/postgres"
	"github.com/xatlabs/xat/tenancy"
	"github.com/xatlabs/xat/tenancy/storage"
	"github.com/xatlabs/xat/tenancy/tenancytest"
)

// dataFixture is a fixture whose server keeps files in a directory of the
// test's own and queues analyses on a River queue of its own, so that only
// the workers the test starts see its jobs.
type dataFixture struct {
	*fixture
	handler http.Handler
	dir     string
	files   *storage.Store
	queue   string
	owner   *pgxpool.Pool // the database's owner, as workers log in
}

func setupData(t *testing.T, guard tenancy.Guard, cfg httpapi.Config) *dataFixture {
	t.Helper()
	f := &dataFixture{fixture: setupGuard(t, guard), dir: t.TempDir(), queue: "t_" + randomHex(6)}
	f.owner = jobQueue(t, f.db)

	files, err := storage.Open(context.Background(), "file://"+filepath.ToSlash(f.dir))
	require.NoError(t, err)
	t.Cleanup(func() { files.Close() })
	f.files = files
	queue, err := jobs.New(nil, jobs.Config{Queue: f.queue})
	require.NoError(t, err)

	cfg.Data.Files, cfg.Data.Jobs = files, queue
	f.handler, _ = f.server(t, f.db, cfg)
	return f
}

var owners struct {
	mu    sync.Mutex
	pools map[*tenancy.DB]*pgxpool.Pool
}

// jobQueue migrates the job queue of db's database, once per test binary,
// and returns a pool that logs in as the database's owner. The pool lives
// until the binary ends, like the database.
func jobQueue(t *testing.T, db *tenancy.DB) *pgxpool.Pool {
	t.Helper()
	owners.mu.Lock()
	defer owners.mu.Unlock()
	if p := owners.pools[db]; p != nil {
		return p
	}
	cfg, err := pgxpool.ParseConfig(tenancytest.ConnString(t))
	require.NoError(t, err)
	cfg.ConnConfig.Database = tenancytest.AdminConn(t, db).Config().Database
	cfg.MaxConns = 8
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	_, err = jobs.Migrate(context.Background(), pool, nil)
	require.NoError(t, err)

	if owners.pools == nil {
		owners.pools = make(map[*tenancy.DB]*pgxpool.Pool)
	}
	owners.pools[db] = pool
	return pool
}

// as returns a client of u on p through the data server, with u's token.
func (f *dataFixture) as(t *testing.T, p *partner, u *user) client {
	return newClient(t, f.handler, p.host).WithBearer(u.token)
}

// storedFiles lists every file in the storage directory, temp files of
// unfinished uploads included.
func (f *dataFixture) storedFiles(t *testing.T) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(f.dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, p)
		}
		return err
	})
	require.NoError(t, err)
	return out
}

func dataPath(id int64) string          { return "/api/v1/data/" + itoa(id) }
func uploadPath(collector int64) string { return collectorPath(collector) + "/data" }

// dataList is the body of GET /api/v1/collectors/{id}/data.
type dataList struct {
	Items []*postgres.CollectedData `json:"items"`
	Next  *string                   `json:"next"`
}

// upload sends body to a collector's upload route as c.
func upload(c client, collector int64, body io.Reader) *tenancytest.Response {
	return c.Post(uploadPath(collector), body)
}

// generated is n bytes of pseudo-random content made as it is read, so
// that a test can send far more than it holds.
type generated struct {
	block []byte
	n     int64 // bytes left
	off   int
}

func newGenerated(seed uint64, n int64) *generated {
	r := rand.New(rand.NewPCG(seed, seed))
	block := make([]byte, 61<<10) // not a power of two, so buffers do not line up
	for i := range block {
		block[i] = byte(r.Uint32())
	}
	return &generated{block: block, n: n}
}

func (g *generated) Read(p []byte) (int, error) {
	if g.n == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > g.n {
		p = p[:g.n]
	}
	n := 0
	for n < len(p) {
		k := copy(p[n:], g.block[g.off:])
		n += k
		g.off = (g.off + k) % len(g.block)
	}
	g.n -= int64(n)
	return n, nil
}

// failing reads r, then fails as a connection cut mid-upload does.
type failing struct{ r io.Reader }

func (f failing) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, io.ErrUnexpectedEOF
	}
	return n, err
}

// unsized hides a reader's length, so that the request has no
// Content-Length, as with a chunked upload.
type unsized struct{ r io.Reader }

func (u unsized) Read(p []byte) (int, error) { return u.r.Read(p) }

// TestUploadLarge streams hundreds of megabytes through the handler into
// storage and checks that memory stays flat and the recorded size and
// hash are the content's. It does not run in parallel, so that the
// allocation count is its own.
func TestUploadLarge(t *testing.T) {
	const size = 300 << 20
	f := setupData(t, tenancy.GuardRole, httpapi.Config{})
	c := f.as(t, f.a, f.a.member).WithHeader("X-File-Name", "big.csv")
	col := f.a.member.collectors[0]

	h := sha256.New()
	_, err := io.Copy(h, newGenerated(1, size))
	require.NoError(t, err)
	want := hex.EncodeToString(h.Sum(nil))

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	res := upload(c, col.ID, unsized{newGenerated(1, size)})
	runtime.ReadMemStats(&after)

	d := decode[postgres.CollectedData](t, res, http.StatusCreated)
	require.Equal(t, int64(size), d.Size)
	require.Equal(t, want, d.SHA256)
	require.Equal(t, "big.csv", d.OriginalName)
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("uploading %d MiB allocated %d KiB", size>>20, allocated>>10)
	require.Less(t, allocated, uint64(32<<20), "an upload of %d MiB allocated %d MiB", size>>20, allocated>>20)

	files := f.storedFiles(t)
	require.Len(t, files, 1)
	rel, err := filepath.Rel(f.dir, files[0])
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(filepath.ToSlash(rel), f.a.tenant.Schema+"/"+itoa(col.ID)+"/"), rel)
	attrs, err := f.files.Stat(tenancy.WithTenant(context.Background(), f.a.tenant), filepath.ToSlash(rel))
	require.NoError(t, err)
	require.Equal(t, int64(size), attrs.Size)
}

// TestUploadRoundTrip uploads a file and reads it back: metadata, list,
// download with its headers, conditional download.
func TestUploadRoundTrip(t *testing.T) {
	t.Parallel()
	forGuards(t, func(t *testing.T, guard tenancy.Guard) {
		f := setupData(t, guard, httpapi.Config{})
		c := f.as(t, f.a, f.a.member)
		col := f.a.member.collectors[0]
		content := make([]byte, 100_000)
		_, err := io.ReadFull(newGenerated(2, int64(len(content))), content)
		require.NoError(t, err)
		sum := sha256.Sum256(content)

		res := upload(c.WithHeader("X-File-Name", `..\..\C:/etc/pass`+"\x00\u202ewd.csv").
			WithHeader("Content-Type", "text/CSV; charset=UTF-8"), col.ID, bytes.NewReader(content))
		d := decode[postgres.CollectedData](t, res, http.StatusCreated)
		require.Equal(t, dataPath(d.ID), res.Header.Get("Location"))
		require.Equal(t, col.ID, d.CollectorID)
		require.Equal(t, f.a.member.ID, d.OwnerID)
		require.Equal(t, int64(len(content)), d.Size)
		require.Equal(t, hex.EncodeToString(sum[:]), d.SHA256)
		require.Equal(t, "passwd.csv", d.OriginalName)
		require.Equal(t, "text/csv; charset=UTF-8", d.ContentType)
		require.NotContains(t, string(res.Body), "file_key")
		require.NotContains(t, string(res.Body), f.a.tenant.Schema+"/")

		require.Equal(t, d, decode[postgres.CollectedData](t, c.Get(dataPath(d.ID)), http.StatusOK))
		list := decode[dataList](t, c.Get(uploadPath(col.ID)), http.StatusOK)
		require.Equal(t, []*postgres.CollectedData{&d}, list.Items)

		res = c.Get(dataPath(d.ID) + "/content")
		require.Equal(t, http.StatusOK, res.Status)
		require.Equal(t, content, res.Body)
		require.Equal(t, "text/csv; charset=UTF-8", res.Header.Get("Content-Type"))
		require.Equal(t, itoa(int64(len(content))), res.Header.Get("Content-Length"))
		require.Equal(t, `"`+d.SHA256+`"`, res.Header.Get("ETag"))
		require.Equal(t, `attachment; filename=passwd.csv`, res.Header.Get("Content-Disposition"))
		require.Equal(t, "nosniff", res.Header.Get("X-Content-Type-Options"))

		res = c.WithHeader("If-None-Match", `"`+d.SHA256+`"`).Get(dataPath(d.ID) + "/content")
		require.Equal(t, http.StatusNotModified, res.Status)
		require.Empty(t, res.Body)

		// The name may come in the query instead; without a type, the
		// content is plain bytes, and a name needing quotes gets them.
		res = c.Post(uploadPath(col.ID)+"?name=my%20capture%20%C3%A9t%C3%A9.csv", unsized{strings.NewReader("x")})
		d2 := decode[postgres.CollectedData](t, res, http.StatusCreated)
		require.Equal(t, "my capture été.csv", d2.OriginalName)
		require.Equal(t, "application/octet-stream", d2.ContentType)
		res = c.Get(dataPath(d2.ID) + "/content")
		require.Equal(t, "x", string(res.Body))
		require.Equal(t, `attachment; filename*=utf-8''my%20capture%20%C3%A9t%C3%A9.csv`,
			res.Header.Get("Content-Disposition"))

		// An empty upload is a file too.
		d3 := decode[postgres.CollectedData](t, upload(c, col.ID, bytes.NewReader(nil)), http.StatusCreated)
		require.Zero(t, d3.Size)
		require.Equal(t, hex.EncodeToString(sha256.New().Sum(nil)), d3.SHA256)
		require.Equal(t, `attachment; filename=data-`+itoa(d3.ID),
			c.Get(dataPath(d3.ID)+"/content").Header.Get("Content-Disposition"))
	})
}

// TestUploadTooLarge refuses an upload past the limit with 413 and keeps
// nothing of it, whether the request announced its length or not.
func TestUploadTooLarge(t *testing.T) {
	t.Parallel()
	const max = 1 << 20
	f := setupData(t, tenancy.GuardRole, httpapi.Config{Data: httpapi.DataConfig{MaxUploadBytes: max}})
	c := f.as(t, f.a, f.a.member)
	col := f.a.member.collectors[0]

	for name, body := range map[string]io.Reader{
		"announced": bytes.NewReader(make([]byte, max+1)),
		"streamed":  unsized{newGenerated(3, max+1)},
		"far over":  unsized{newGenerated(3, 10*max)},
	} {
		res := upload(c, col.ID, body)
		requireError(t, res, http.StatusRequestEntityTooLarge, "too_large")
		require.Empty(t, f.storedFiles(t), name)
	}
	list := decode[dataList](t, c.Get(uploadPath(col.ID)), http.StatusOK)
	require.Empty(t, list.Items)

	// Exactly the limit is allowed, and a JSON body elsewhere still has
	// the server's own, smaller cap.
	d := decode[postgres.CollectedData](t, upload(c, col.ID, unsized{newGenerated(4, max)}), http.StatusCreated)
	require.Equal(t, int64(max), d.Size)
	big := `{"site_name":"` + strings.Repeat("a", 2<<20) + `"}`
	res := c.Post("/api/v1/collectors", strings.NewReader(big))
	requireError(t, res, http.StatusRequestEntityTooLarge, "too_large")
}

// TestUploadInterrupted keeps nothing of an upload whose body breaks off.
func TestUploadInterrupted(t *testing.T) {
	t.Parallel()
	f := setupData(t, tenancy.GuardRole, httpapi.Config{})
	c := f.as(t, f.a, f.a.member)
	col := f.a.member.collectors[0]

	res := upload(c, col.ID, failing{newGenerated(5, 3<<20)})
	requireError(t, res, http.StatusBadRequest, "upload_incomplete")
	require.Empty(t, f.storedFiles(t))
	list := decode[dataList](t, c.Get(uploadPath(col.ID)), http.StatusOK)
	require.Empty(t, list.Items)
}

// TestDataVisibility checks that collected data follows the owner rule
// inside a partner and is out of reach of every other partner: another
// partner's answers are those for an id that does not exist.
func TestDataVisibility(t *testing.T) {
	t.Parallel()
	forGuards(t, func(t *testing.T, guard tenancy.Guard) {
		f := setupData(t, guard, httpapi.Config{})
		a := f.a
		owner := f.as(t, a, a.member)
		col := a.member.collectors[0]
		d := decode[postgres.CollectedData](t, upload(owner, col.ID, strings.NewReader("mine")), http.StatusCreated)

		missing := func(c client) []*tenancytest.Response {
			return []*tenancytest.Response{
				c.Get(dataPath(999999)),
				c.Get(dataPath(999999) + "/content"),
				c.Delete(dataPath(999999)),
			}
		}
		probes := func(c client) []*tenancytest.Response {
			return []*tenancytest.Response{
				c.Get(dataPath(d.ID)),
				c.Get(dataPath(d.ID) + "/content"),
				c.Delete(dataPath(d.ID)),
			}
		}
		other := f.addUser(t, a, postgres.RoleMember)
		for name, c := range map[string]client{
			"other member":        f.as(t, a, other),
			"other partner":       f.as(t, f.b, f.b.member),
			"other partner admin": f.as(t, f.b, f.b.admin),
		} {
			want := missing(c)
			for i, res := range probes(c) {
				require.Equal(t, want[i].Status, res.Status, "%s: %s", name, res.Body)
				require.Equal(t, http.StatusNotFound, res.Status, name)
				require.Equal(t, string(want[i].Body), string(res.Body), name)
			}
		}

		// Another member can neither list nor upload to the collector.
		// (Ids are per partner: on B's host the same id is one of B's.)
		for _, res := range []*tenancytest.Response{
			f.as(t, a, other).Get(uploadPath(col.ID)),
			upload(f.as(t, a, other), col.ID, strings.NewReader("theirs")),
		} {
			requireError(t, res, http.StatusNotFound, "not_found")
		}
		require.Len(t, f.storedFiles(t), 1, "refused uploads store nothing")

		// The data is untouched, and the partner's administrator sees it.
		admin := f.as(t, a, a.admin)
		require.Equal(t, d, decode[postgres.CollectedData](t, admin.Get(dataPath(d.ID)), http.StatusOK))
		require.Equal(t, "mine", string(admin.Get(dataPath(d.ID)+"/content").Body))
		list := decode[dataList](t, admin.Get(uploadPath(col.ID)), http.StatusOK)
		require.Len(t, list.Items, 1)
	})
}

// TestDataDelete removes the row, its analyses and its file.
func TestDataDelete(t *testing.T) {
	t.Parallel()
	f := setupData(t, tenancy.GuardRole, httpapi.Config{})
	c := f.as(t, f.a, f.a.member)
	d := decode[postgres.CollectedData](t,
		upload(c, f.a.member.collectors[0].ID, strings.NewReader("bye")), http.StatusCreated)
	an := decode[postgres.Analysis](t, c.Post("/api/v1/analyses", obj{"data_id": d.ID}), http.StatusAccepted)
	require.Len(t, f.storedFiles(t), 1)

	require.Equal(t, http.StatusNoContent, c.Delete(dataPath(d.ID)).Status)
	requireError(t, c.Get(dataPath(d.ID)), http.StatusNotFound, "not_found")
	requireError(t, c.Get(analysisPath(an.ID)), http.StatusNotFound, "not_found")
	require.Empty(t, f.storedFiles(t))
	requireError(t, c.Delete(dataPath(d.ID)), http.StatusNotFound, "not_found")
}

// TestCollectorDeleteRemovesFiles deletes a collector with uploads: its
// data rows and its files go with it, another collector's stay.
func TestCollectorDeleteRemovesFiles(t *testing.T) {
	t.Parallel()
	f := setupData(t, tenancy.GuardRole, httpapi.Config{})
	c := f.as(t, f.a, f.a.member)
	doomed, kept := f.a.member.collectors[0].ID, f.a.member.collectors[1].ID
	for _, body := range []string{"one", "two"} {
		decode[postgres.CollectedData](t, upload(c, doomed, strings.NewReader(body)), http.StatusCreated)
	}
	decode[postgres.CollectedData](t, upload(c, kept, strings.NewReader("three")), http.StatusCreated)
	require.Len(t, f.storedFiles(t), 3)

	require.Equal(t, http.StatusNoContent, c.Delete(collectorPath(doomed)).Status)
	files := f.storedFiles(t)
	require.Len(t, files, 1)
	body, err := os.ReadFile(files[0])
	require.NoError(t, err)
	require.Equal(t, "three", string(body))
}

// TestUploadWithoutStorage answers 503 rather than failing inside.
func TestUploadWithoutStorage(t *testing.T) {
	t.Parallel()
	f := setup(t)
	c := f.bearer(t, f.a.host, f.a.member)
	res := c.Post(uploadPath(f.a.member.collectors[0].ID), strings.NewReader("x"))
	requireError(t, res, http.StatusServiceUnavailable, "unavailable")
	res = c.Post("/api/v1/analyses", obj{"data_id": 1})
	requireError(t, res, http.StatusServiceUnavailable, "unavailable")
}
