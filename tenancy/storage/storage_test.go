package storage_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gocloud.dev/blob"
	"gocloud.dev/blob/memblob"

	"github.com/xatlabs/xat/tenancy"
	"github.com/xatlabs/xat/tenancy/storage"
)

var (
	tenantA  = &tenancy.Tenant{ID: 1, Schema: "tenant_a"}
	tenantB  = &tenancy.Tenant{ID: 2, Schema: "tenant_b"}
	tenantAB = &tenancy.Tenant{ID: 3, Schema: "tenant_ab"} // shares tenant_a's leading bytes
)

func as(t *testing.T, tn *tenancy.Tenant) context.Context {
	return tenancy.WithTenant(t.Context(), tn)
}

// fixture is a fresh Store with a way to see every file it holds, temp
// files included.
type fixture struct {
	store *storage.Store
	dir   string // the storage directory, for the disk backend only
	files func(t *testing.T) []string
}

func setupDisk(t *testing.T) fixture {
	t.Helper()
	dir := t.TempDir()
	s, err := storage.Open(t.Context(), "file://"+filepath.ToSlash(dir))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })

	files := func(t *testing.T) []string {
		t.Helper()
		var out []string
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() {
				rel, _ := filepath.Rel(dir, p)
				out = append(out, filepath.ToSlash(rel))
			}
			return nil
		})
		require.NoError(t, err)
		return out
	}
	return fixture{store: s, dir: dir, files: files}
}

func setupMemblob(t *testing.T) fixture {
	t.Helper()
	b := memblob.OpenBucket(nil)
	s := storage.New(storage.NewBlobBucket(b))
	t.Cleanup(func() { s.Close() })

	files := func(t *testing.T) []string {
		t.Helper()
		var out []string
		it := b.List(&blob.ListOptions{})
		for {
			obj, err := it.Next(t.Context())
			if err == io.EOF {
				return out
			}
			require.NoError(t, err)
			out = append(out, obj.Key)
		}
	}
	return fixture{store: s, files: files}
}

// forBackends runs test against local disk and against a gocloud.dev
// bucket (in memory), which stands in for S3.
func forBackends(t *testing.T, test func(t *testing.T, f fixture)) {
	for _, b := range []struct {
		name  string
		setup func(t *testing.T) fixture
	}{{"disk", setupDisk}, {"blob", setupMemblob}} {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			test(t, b.setup(t))
		})
	}
}

func sha(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func readAll(t *testing.T, s *storage.Store, ctx context.Context, key string) []byte {
	t.Helper()
	rc, _, err := s.Get(ctx, key)
	require.NoError(t, err)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	return b
}

func TestPutGetRoundTrip(t *testing.T) {
	t.Parallel()
	forBackends(t, func(t *testing.T, f fixture) {
		ctx := as(t, tenantA)
		content := []byte("timestamp,host,cpu_pct\n2024-01-01T00:00:00Z,db1,42.5\n\x00\xff")

		obj, err := f.store.Put(ctx, "collector-42", bytes.NewReader(content), 1<<20)
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(obj.Key, "tenant_a/collector-42/"), obj.Key)
		require.Equal(t, int64(len(content)), obj.Size)
		require.Equal(t, sha(content), obj.SHA256)

		require.Equal(t, content, readAll(t, f.store, ctx, obj.Key))
		attrs, err := f.store.Stat(ctx, obj.Key)
		require.NoError(t, err)
		require.Equal(t, obj.Size, attrs.Size)
		require.False(t, attrs.ModTime.IsZero())

		again, err := f.store.Put(ctx, "collector-42", bytes.NewReader(content), 1<<20)
		require.NoError(t, err)
		require.NotEqual(t, obj.Key, again.Key, "every Put gets a new name")

		require.NoError(t, f.store.Delete(ctx, obj.Key))
		_, _, err = f.store.Get(ctx, obj.Key)
		require.ErrorIs(t, err, storage.ErrNotFound)
		require.ErrorIs(t, f.store.Delete(ctx, obj.Key), storage.ErrNotFound)
		_, err = f.store.Stat(ctx, obj.Key)
		require.ErrorIs(t, err, storage.ErrNotFound)
	})
}

func TestPutEmptyAndExactLimit(t *testing.T) {
	t.Parallel()
	forBackends(t, func(t *testing.T, f fixture) {
		ctx := as(t, tenantA)

		obj, err := f.store.Put(ctx, "1", strings.NewReader(""), 10)
		require.NoError(t, err)
		require.Equal(t, int64(0), obj.Size)
		require.Equal(t, sha(nil), obj.SHA256)

		obj, err = f.store.Put(ctx, "1", strings.NewReader("0123456789"), 10)
		require.NoError(t, err)
		require.Equal(t, int64(10), obj.Size)

		_, err = f.store.Put(ctx, "1", strings.NewReader("x"), 0)
		require.Error(t, err)
	})
}

func TestPutSubdir(t *testing.T) {
	t.Parallel()
	f := setupDisk(t)
	ctx := as(t, tenantA)

	for _, subdir := range []string{"42", "collector-42", "a/b", "A.b_c-1"} {
		obj, err := f.store.Put(ctx, subdir, strings.NewReader("x"), 10)
		require.NoError(t, err, subdir)
		require.True(t, strings.HasPrefix(obj.Key, "tenant_a/"+subdir+"/"), obj.Key)
	}

	bad := []string{
		"", "../x", "a/../../b", "..", ".", "/etc", "a\\b", "a//b", "a/",
		"%2e%2e", ".hidden", "x y", "ü", "a\x00b", strings.Repeat("a", 200),
	}
	for _, subdir := range bad {
		_, err := f.store.Put(ctx, subdir, strings.NewReader("x"), 10)
		require.ErrorIs(t, err, storage.ErrInvalidKey, "subdir %q", subdir)
		var ke *storage.KeyError
		require.ErrorAs(t, err, &ke)
	}
	require.Len(t, f.files(t), 4)
}

func TestDiskModes(t *testing.T) {
	t.Parallel()
	f := setupDisk(t)

	obj, err := f.store.Put(as(t, tenantA), "42", strings.NewReader("x"), 10)
	require.NoError(t, err)

	fi, err := os.Stat(filepath.Join(f.dir, filepath.FromSlash(obj.Key)))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	for _, dir := range []string{"tenant_a", "tenant_a/42"} {
		fi, err := os.Stat(filepath.Join(f.dir, filepath.FromSlash(dir)))
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o700), fi.Mode().Perm(), dir)
	}
}

func TestPutTooLarge(t *testing.T) {
	t.Parallel()
	forBackends(t, func(t *testing.T, f fixture) {
		_, err := f.store.Put(as(t, tenantA), "42", bytes.NewReader(make([]byte, 200_000)), 100_000)
		require.ErrorIs(t, err, storage.ErrTooLarge)
		require.Empty(t, f.files(t))
	})
}

// failingReader yields n bytes, then fails.
type failingReader struct {
	n   int
	err error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, r.err
	}
	k := min(len(p), r.n)
	clear(p[:k])
	r.n -= k
	return k, nil
}

func TestPutReaderFails(t *testing.T) {
	t.Parallel()
	forBackends(t, func(t *testing.T, f fixture) {
		boom := errors.New("connection reset")
		_, err := f.store.Put(as(t, tenantA), "42", &failingReader{n: 300_000, err: boom}, 1<<20)
		require.ErrorIs(t, err, boom)
		require.Empty(t, f.files(t))
	})
}

// cancellingReader yields data forever and cancels its context after n
// bytes, as a client that goes away mid-upload.
type cancellingReader struct {
	n      int
	cancel context.CancelFunc
}

func (r *cancellingReader) Read(p []byte) (int, error) {
	r.n -= len(p)
	if r.n <= 0 {
		r.cancel()
	}
	return len(p), nil
}

func TestPutCancelled(t *testing.T) {
	t.Parallel()
	forBackends(t, func(t *testing.T, f fixture) {
		ctx, cancel := context.WithCancel(as(t, tenantA))
		defer cancel()

		_, err := f.store.Put(ctx, "42", &cancellingReader{n: 300_000, cancel: cancel}, 1<<30)
		require.ErrorIs(t, err, context.Canceled)
		require.Empty(t, f.files(t))
	})
}

// patternReader yields size bytes of a repeating pattern without holding
// them.
type patternReader struct {
	left int64
	off  int
}

var pattern = func() []byte {
	p := make([]byte, 4093) // prime, so buffer boundaries drift over it
	for i := range p {
		p[i] = byte(i * 7)
	}
	return p
}()

func (r *patternReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n := 0
	for n < len(p) {
		k := copy(p[n:], pattern[r.off:])
		r.off = (r.off + k) % len(pattern)
		n += k
	}
	r.left -= int64(n)
	return n, nil
}

func totalAlloc() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.TotalAlloc
}

// TestPutLarge is not parallel: it measures the process's allocations,
// which other tests would add to.
func TestPutLarge(t *testing.T) {
	const size = 300 << 20
	f := setupDisk(t)
	ctx := as(t, tenantA)

	h := sha256.New()
	_, err := io.Copy(h, &patternReader{left: size})
	require.NoError(t, err)
	want := hex.EncodeToString(h.Sum(nil))

	before := totalAlloc()
	obj, err := f.store.Put(ctx, "42", &patternReader{left: size}, size)
	allocated := totalAlloc() - before
	require.NoError(t, err)
	require.Equal(t, int64(size), obj.Size)
	require.Equal(t, want, obj.SHA256)

	// Streaming allocates a buffer or two, whatever the size; anything
	// near the object's size means it was held in memory.
	t.Logf("allocated %d bytes to store %d", allocated, size)
	require.Less(t, allocated, uint64(16<<20))

	rc, attrs, err := f.store.Get(ctx, obj.Key)
	require.NoError(t, err)
	defer rc.Close()
	require.Equal(t, int64(size), attrs.Size)
	h.Reset()
	_, err = io.Copy(h, rc)
	require.NoError(t, err)
	require.Equal(t, want, hex.EncodeToString(h.Sum(nil)))
}

func TestKeyEscape(t *testing.T) {
	t.Parallel()
	f := setupDisk(t)
	ctxA, ctxB := as(t, tenantA), as(t, tenantB)

	// Real files outside tenant_a's prefix, so an escape would find
	// something to read or delete.
	secret, err := f.store.Put(ctxB, "1", strings.NewReader("b's data"), 100)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(f.dir, "passwd"), []byte("root"), 0o600))
	own, err := f.store.Put(ctxA, "1", strings.NewReader("a's data"), 100)
	require.NoError(t, err)
	ownName := own.Key[strings.LastIndex(own.Key, "/")+1:]

	tests := []struct {
		key  string
		want error
	}{
		{"../x", storage.ErrInvalidKey},
		{"a/../../b", storage.ErrInvalidKey},
		{"/etc/passwd", storage.ErrInvalidKey},
		{"../passwd", storage.ErrInvalidKey},
		{"tenant_a/../passwd", storage.ErrInvalidKey},
		{"tenant_a/1/../../" + secret.Key, storage.ErrInvalidKey},
		{"tenant_a/./1/" + ownName, storage.ErrInvalidKey},
		{"tenant_a\\x", storage.ErrInvalidKey},
		{"tenant_a\\1\\" + ownName, storage.ErrInvalidKey},
		{"", storage.ErrInvalidKey},
		{"tenant_a//x", storage.ErrInvalidKey},
		{"tenant_a//1/" + ownName, storage.ErrInvalidKey},
		{"/tenant_a/1/" + ownName, storage.ErrInvalidKey},
		{"tenant_a/1/" + ownName + "/", storage.ErrInvalidKey},
		{"%2e%2e/%2e%2e/etc/passwd", storage.ErrInvalidKey},
		{"tenant_a/%2e%2e/" + secret.Key, storage.ErrInvalidKey},
		{"tenant_a/1/.upload-x", storage.ErrInvalidKey},
		{"tenant_a/" + ownName, storage.ErrInvalidKey},
		{"tenant_a", storage.ErrInvalidKey},
		{"tenant_a/1/x\x00", storage.ErrInvalidKey},
		{"tenant_a/1/a b", storage.ErrInvalidKey},
		{"tenant_a/" + strings.Repeat("a/", 20) + "x", storage.ErrInvalidKey},
		{"tenant_a/1/" + strings.Repeat("x", 1100), storage.ErrInvalidKey},
		{"other_schema/1/x", storage.ErrForeignKey},
		{secret.Key, storage.ErrForeignKey},
		{"TENANT_A/1/" + ownName, storage.ErrForeignKey},
		{"tenant_ab/1/x", storage.ErrForeignKey},
	}
	for _, tt := range tests {
		_, _, err := f.store.Get(ctxA, tt.key)
		require.ErrorIs(t, err, tt.want, "get %q", tt.key)
		_, err = f.store.Stat(ctxA, tt.key)
		require.ErrorIs(t, err, tt.want, "stat %q", tt.key)
		require.ErrorIs(t, f.store.Delete(ctxA, tt.key), tt.want, "delete %q", tt.key)
	}

	require.Equal(t, []byte("b's data"), readAll(t, f.store, ctxB, secret.Key))
	require.Equal(t, []byte("a's data"), readAll(t, f.store, ctxA, own.Key))
	require.FileExists(t, filepath.Join(f.dir, "passwd"))
}

func TestDiskSymlinkCannotEscape(t *testing.T) {
	t.Parallel()
	f := setupDisk(t)
	ctxA := as(t, tenantA)

	outside := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(outside, "secret"), []byte("x"), 0o600))
	_, err := f.store.Put(ctxA, "1", strings.NewReader("a"), 10)
	require.NoError(t, err)
	require.NoError(t, os.Symlink(outside, filepath.Join(f.dir, "tenant_a", "evil")))

	_, _, err = f.store.Get(ctxA, "tenant_a/evil/secret")
	require.ErrorContains(t, err, "escapes")
	require.Error(t, f.store.Delete(ctxA, "tenant_a/evil/secret"))
	require.FileExists(t, filepath.Join(outside, "secret"))
}

func TestNotObjects(t *testing.T) {
	t.Parallel()
	f := setupDisk(t)
	ctx := as(t, tenantA)

	obj, err := f.store.Put(ctx, "42/sub", strings.NewReader("x"), 10)
	require.NoError(t, err)

	// A directory, and a path through a file, are no objects.
	for _, key := range []string{"tenant_a/42/sub", obj.Key + "/x", "tenant_a/nope/x"} {
		_, _, err := f.store.Get(ctx, key)
		require.ErrorIs(t, err, storage.ErrNotFound, key)
		_, err = f.store.Stat(ctx, key)
		require.ErrorIs(t, err, storage.ErrNotFound, key)
		require.ErrorIs(t, f.store.Delete(ctx, key), storage.ErrNotFound, key)
	}
	require.DirExists(t, filepath.Join(f.dir, "tenant_a", "42", "sub"))
}

func TestForeignTenant(t *testing.T) {
	t.Parallel()
	forBackends(t, func(t *testing.T, f fixture) {
		ctxA, ctxB := as(t, tenantA), as(t, tenantB)
		obj, err := f.store.Put(ctxA, "42", strings.NewReader("a's capture"), 100)
		require.NoError(t, err)

		_, _, err = f.store.Get(ctxB, obj.Key)
		require.ErrorIs(t, err, storage.ErrForeignKey)
		_, err = f.store.Stat(ctxB, obj.Key)
		require.ErrorIs(t, err, storage.ErrForeignKey)
		require.ErrorIs(t, f.store.Delete(ctxB, obj.Key), storage.ErrForeignKey)

		require.Equal(t, []byte("a's capture"), readAll(t, f.store, ctxA, obj.Key))
	})
}

func TestNoTenant(t *testing.T) {
	t.Parallel()
	forBackends(t, func(t *testing.T, f fixture) {
		obj, err := f.store.Put(as(t, tenantA), "42", strings.NewReader("x"), 10)
		require.NoError(t, err)

		for _, ctx := range []context.Context{t.Context(), tenancy.WithTenant(t.Context(), nil)} {
			_, err := f.store.Put(ctx, "42", strings.NewReader("x"), 10)
			require.ErrorIs(t, err, tenancy.ErrNoTenant)
			_, _, err = f.store.Get(ctx, obj.Key)
			require.ErrorIs(t, err, tenancy.ErrNoTenant)
			_, err = f.store.Stat(ctx, obj.Key)
			require.ErrorIs(t, err, tenancy.ErrNoTenant)
			require.ErrorIs(t, f.store.Delete(ctx, obj.Key), tenancy.ErrNoTenant)
			require.ErrorIs(t, f.store.DeletePrefix(ctx), tenancy.ErrNoTenant)
			_, err = f.store.Usage(ctx)
			require.ErrorIs(t, err, tenancy.ErrNoTenant)
		}

		// A tenant whose schema could not be a prefix is refused, not
		// trusted.
		bad := as(t, &tenancy.Tenant{ID: 9, Schema: ".."})
		_, err = f.store.Put(bad, "42", strings.NewReader("x"), 10)
		require.ErrorIs(t, err, tenancy.ErrInvalidSchema)
		require.ErrorIs(t, f.store.DeletePrefix(bad), tenancy.ErrInvalidSchema)
		require.Len(t, f.files(t), 1)
	})
}

func TestDeletePrefixAndUsage(t *testing.T) {
	t.Parallel()
	forBackends(t, func(t *testing.T, f fixture) {
		ctxA, ctxB, ctxAB := as(t, tenantA), as(t, tenantB), as(t, tenantAB)
		put := func(ctx context.Context, subdir string, n int) storage.Object {
			obj, err := f.store.Put(ctx, subdir, bytes.NewReader(make([]byte, n)), 1<<20)
			require.NoError(t, err)
			return obj
		}
		a1, a2 := put(ctxA, "1", 10), put(ctxA, "2/raw", 20)
		b := put(ctxB, "1", 7)
		ab := put(ctxAB, "1", 5)

		for _, tt := range []struct {
			ctx  context.Context
			want int64
		}{{ctxA, 30}, {ctxB, 7}, {ctxAB, 5}} {
			got, err := f.store.Usage(tt.ctx)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		}

		require.NoError(t, f.store.DeletePrefix(ctxA))
		got, err := f.store.Usage(ctxA)
		require.NoError(t, err)
		require.Zero(t, got)
		for _, key := range []string{a1.Key, a2.Key} {
			_, _, err := f.store.Get(ctxA, key)
			require.ErrorIs(t, err, storage.ErrNotFound)
		}
		require.ElementsMatch(t, []string{b.Key, ab.Key}, f.files(t))

		// Dropping a tenant with no files is not an error.
		require.NoError(t, f.store.DeletePrefix(ctxA))
		if f.dir != "" {
			require.NoDirExists(t, filepath.Join(f.dir, "tenant_a"))
		}
	})
}

func TestDeletePrefixRemovesTempFiles(t *testing.T) {
	t.Parallel()
	f := setupDisk(t)
	ctx := as(t, tenantA)

	_, err := f.store.Put(ctx, "1", strings.NewReader("x"), 10)
	require.NoError(t, err)
	// What a crash mid-upload leaves behind.
	tmp := filepath.Join(f.dir, "tenant_a", "1", ".upload-crashed")
	require.NoError(t, os.WriteFile(tmp, []byte("partial"), 0o600))

	got, err := f.store.Usage(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(1), got, "temp files are not objects")

	require.NoError(t, f.store.DeletePrefix(ctx))
	require.Empty(t, f.files(t))
}

// TestSweepTemp: the sweep removes the temp files that crashed uploads
// left, in every tenant's tree, and keeps objects and uploads still being
// written.
func TestSweepTemp(t *testing.T) {
	t.Parallel()
	f := setupDisk(t)
	ctx := t.Context()
	a, err := f.store.Put(as(t, tenantA), "1", strings.NewReader("a"), 10)
	require.NoError(t, err)
	b, err := f.store.Put(as(t, tenantB), "collector-2/x", strings.NewReader("b"), 10)
	require.NoError(t, err)

	old := time.Now().Add(-25 * time.Hour)
	crashed := []string{"tenant_a/1/.upload-crashed", "tenant_b/collector-2/x/.upload-crashed"}
	for _, name := range crashed {
		p := filepath.Join(f.dir, filepath.FromSlash(name))
		require.NoError(t, os.WriteFile(p, []byte("partial"), 0o600))
		require.NoError(t, os.Chtimes(p, old, old))
	}
	// An upload in progress, and an object as old as the crashed files.
	live := filepath.Join(f.dir, "tenant_a", "1", ".upload-live")
	require.NoError(t, os.WriteFile(live, []byte("partial"), 0o600))
	require.NoError(t, os.Chtimes(filepath.Join(f.dir, filepath.FromSlash(a.Key)), old, old))

	n, err := f.store.SweepTemp(ctx, 24*time.Hour)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.ElementsMatch(t, []string{a.Key, b.Key, "tenant_a/1/.upload-live"}, f.files(t))

	n, err = f.store.SweepTemp(ctx, 24*time.Hour)
	require.NoError(t, err)
	require.Zero(t, n)

	// A bucket without temp files of its own has nothing to sweep.
	n, err = setupMemblob(t).store.SweepTemp(ctx, 0)
	require.NoError(t, err)
	require.Zero(t, n)
}

func TestConcurrentPuts(t *testing.T) {
	t.Parallel()
	forBackends(t, func(t *testing.T, f fixture) {
		ctx := as(t, tenantA)
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			keys = map[string]bool{}
		)
		for i := range 8 {
			wg.Go(func() {
				obj, err := f.store.Put(ctx, "42", bytes.NewReader(make([]byte, 1000+i)), 1<<20)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				keys[obj.Key] = true
				mu.Unlock()
			})
		}
		wg.Wait()

		require.Len(t, keys, 8)
		got, err := f.store.Usage(ctx)
		require.NoError(t, err)
		require.Equal(t, int64(8*1000+28), got)
	})
}

func TestOpen(t *testing.T) {
	t.Parallel()
	ctx := t.Context()

	for _, u := range []string{
		"",
		"/var/lib/xat",
		"ftp://host/x",
		"file://host/x",
		"file:relative",
		"file:///x?mode=0777",
		"memory://",
		"s3://bucket?no_such_param=1",
	} {
		_, err := storage.Open(ctx, u)
		require.Error(t, err, "url %q", u)
	}

	dir := filepath.Join(t.TempDir(), "new", "files")
	s, err := storage.Open(ctx, "file://"+filepath.ToSlash(dir))
	require.NoError(t, err)
	require.NoError(t, s.Close())
	fi, err := os.Stat(dir)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), fi.Mode().Perm())

	// Opening an S3 bucket makes no request, so the URL wiring can be
	// checked without a server.
	s3URL := "s3://bucket?region=us-east-1&endpoint=http://127.0.0.1:1&use_path_style=true"
	s, err = storage.Open(ctx, s3URL)
	require.NoError(t, err)
	require.NoError(t, s.Close())
}
