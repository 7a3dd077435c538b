package storage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"time"
)

// ErrNotFound is returned when no object exists at a key.
var ErrNotFound = errors.New("storage object not found")

// ErrTooLarge is returned by Put when the content is longer than its limit.
// Nothing of it is kept.
var ErrTooLarge = errors.New("storage object too large")

// Object describes an object that Put stored.
type Object struct {
	Key    string // <schema>/<subdir>/<name>, to keep and pass to Get and Delete
	Size   int64  // bytes
	SHA256 string // hex digest of the content
}

// Attrs describes a stored object. The SHA-256 is known only to Put; callers
// that need it later keep it with the key.
type Attrs struct {
	Size    int64
	ModTime time.Time
}

// Bucket is where a Store keeps its objects. Keys reach it already checked:
// relative, slash-separated, made of plain segments. Implementations must
// be safe for concurrent use.
type Bucket interface {
	// NewWriter starts an object at key. Nothing is visible at key until
	// the writer's Commit returns nil.
	NewWriter(ctx context.Context, key string) (Writer, error)

	// NewReader opens the object at key, or returns ErrNotFound.
	NewReader(ctx context.Context, key string) (io.ReadCloser, Attrs, error)

	// Attributes describes the object at key, or returns ErrNotFound.
	Attributes(ctx context.Context, key string) (Attrs, error)

	// Delete removes the object at key, or returns ErrNotFound.
	Delete(ctx context.Context, key string) error

	// List calls fn for every object whose key starts with prefix, and
	// stops at the first error fn returns. Store only passes prefixes that
	// end with a slash.
	List(ctx context.Context, prefix string, fn func(key string, a Attrs) error) error

	// Close releases the bucket.
	Close() error
}

// Writer receives the content of a new object. Exactly one of Commit and
// Abort ends it; a second call of either does nothing.
type Writer interface {
	io.Writer

	// Commit makes the object visible, complete, at its key.
	Commit() error

	// Abort discards everything written; the key stays free.
	Abort() error
}

// prefixRemover is a Bucket that removes a whole prefix at once, including
// what List does not show (temp files of interrupted uploads).
type prefixRemover interface {
	removePrefix(ctx context.Context, prefix string) error
}

// tempSweeper is a Bucket that keeps uploads in progress as files of its
// own, which a crash may leave behind.
type tempSweeper interface {
	sweepTemp(ctx context.Context, before time.Time) (int, error)
}

// SweepTemp removes what uploads cut short by a crash left behind, across
// every tenant: the temp files not written to for olderThan. An upload in
// progress writes to its file continuously, so olderThan must be longer
// than any upload may stall (the server's read timeout). It returns how
// many files it removed. Buckets that keep no temp files of their own (S3,
// whose unfinished multipart uploads a lifecycle rule ends) have nothing
// to sweep. It is maintenance, meant for a periodic job, and the one
// method of Store that takes no tenant.
func (s *Store) SweepTemp(ctx context.Context, olderThan time.Duration) (int, error) {
	ts, ok := s.bucket.(tempSweeper)
	if !ok {
		return 0, nil
	}
	n, err := ts.sweepTemp(ctx, time.Now().Add(-olderThan))
	if err != nil {
		return n, fmt.Errorf("sweep temp files: %w", err)
	}
	return n, nil
}

// Store keeps tenant files under per-tenant prefixes of a Bucket. Every
// method takes its tenant from the context and fails with
// tenancy.ErrNoTenant without one. A Store is safe for concurrent use.
type Store struct {
	bucket Bucket
}

// New returns a Store over b.
func New(b Bucket) *Store {
	return &Store{bucket: b}
}

// Open returns a Store for a URL:
//
//	file:///var/lib/xat/files   local disk under that directory (created 0700)
//	s3://bucket?region=eu-west-1&endpoint=https://s3.example.com&use_path_style=true
//
// The s3 parameters are those of gocloud.dev/blob/s3blob; credentials come
// from the usual AWS environment and files.
func Open(ctx context.Context, rawURL string) (*Store, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("storage url: %w", err)
	}
	bad := func(reason string) error {
		return fmt.Errorf("storage url %q: %s", rawURL, reason)
	}
	switch u.Scheme {
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return nil, bad("a file URL names a local path, not a host")
		}
		if u.RawQuery != "" {
			return nil, bad("a file URL takes no parameters")
		}
		if u.Path == "" || !filepath.IsAbs(filepath.FromSlash(u.Path)) {
			return nil, bad("want an absolute path, as in file:///var/lib/xat/files")
		}
		d, err := openDisk(filepath.FromSlash(u.Path))
		if err != nil {
			return nil, err
		}
		return New(d), nil
	case "s3":
		b, err := openS3(ctx, u)
		if err != nil {
			return nil, err
		}
		return New(b), nil
	default:
		return nil, bad("unsupported scheme, want file or s3")
	}
}

// Close releases the underlying bucket.
func (s *Store) Close() error {
	return s.bucket.Close()
}

// Put stores the content of r as a new object of the tenant in ctx, under
// <schema>/<subdir>/ with a generated random name, and returns its key,
// size and SHA-256. subdir is one or more slash-separated segments of
// letters, digits, dots, hyphens and underscores, such as "42" or
// "collector-42"; segments must not start with a dot.
//
// Put streams in constant memory and hashes as it writes. Content longer
// than max bytes fails with ErrTooLarge; a max of zero or less is refused.
// The object becomes visible only once complete: when r fails, ctx is
// cancelled or the limit is passed, nothing remains.
func (s *Store) Put(ctx context.Context, subdir string, r io.Reader, max int64) (Object, error) {
	schema, err := tenantSchema(ctx)
	if err != nil {
		return Object{}, err
	}
	if err := checkSubdir(subdir); err != nil {
		return Object{}, err
	}
	if max <= 0 {
		return Object{}, fmt.Errorf("put: size limit %d must be positive", max)
	}

	key := schema + "/" + subdir + "/" + newName()
	if len(key) > maxKey {
		return Object{}, &KeyError{Key: subdir, Reason: "subdir is too long"}
	}
	w, err := s.bucket.NewWriter(ctx, key)
	if err != nil {
		return Object{}, fmt.Errorf("put %s: %w", key, err)
	}

	size, sum, err := copyHashed(ctx, w, r, max)
	if err != nil {
		if aerr := w.Abort(); aerr != nil {
			err = errors.Join(err, fmt.Errorf("abort: %w", aerr))
		}
		return Object{}, fmt.Errorf("put %s: %w", key, err)
	}
	if err := w.Commit(); err != nil {
		return Object{}, fmt.Errorf("put %s: commit: %w", key, err)
	}
	return Object{Key: key, Size: size, SHA256: hex.EncodeToString(sum)}, nil
}

// copyHashed copies r to w through a fixed buffer, hashing as it goes, and
// fails once more than max bytes arrive, before writing them.
func copyHashed(ctx context.Context, w io.Writer, r io.Reader, max int64) (int64, []byte, error) {
	h := sha256.New()
	buf := make([]byte, 64<<10)
	var n int64
	for {
		// A reader that never blocks would otherwise ignore cancellation.
		if err := ctx.Err(); err != nil {
			return n, nil, err
		}
		k, rerr := r.Read(buf)
		if k > 0 {
			n += int64(k)
			if n > max {
				return n, nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, max)
			}
			h.Write(buf[:k])
			if _, err := w.Write(buf[:k]); err != nil {
				return n, nil, fmt.Errorf("write: %w", err)
			}
		}
		if rerr == io.EOF {
			return n, h.Sum(nil), nil
		}
		if rerr != nil {
			return n, nil, fmt.Errorf("read: %w", rerr)
		}
	}
}

// Get opens the object at key for streaming. The key must belong to the
// tenant in ctx: a malformed key fails with ErrInvalidKey, another
// tenant's with ErrForeignKey, a missing object with ErrNotFound. The
// caller closes the reader.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, Attrs, error) {
	if err := checkKey(ctx, key); err != nil {
		return nil, Attrs{}, err
	}
	rc, a, err := s.bucket.NewReader(ctx, key)
	if err != nil {
		return nil, Attrs{}, fmt.Errorf("get %s: %w", key, err)
	}
	return rc, a, nil
}

// Stat describes the object at key, with the same checks and errors as Get.
func (s *Store) Stat(ctx context.Context, key string) (Attrs, error) {
	if err := checkKey(ctx, key); err != nil {
		return Attrs{}, err
	}
	a, err := s.bucket.Attributes(ctx, key)
	if err != nil {
		return Attrs{}, fmt.Errorf("stat %s: %w", key, err)
	}
	return a, nil
}

// Delete removes the object at key, with the same checks and errors as Get.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := checkKey(ctx, key); err != nil {
		return err
	}
	if err := s.bucket.Delete(ctx, key); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

// DeletePrefix removes every object of the tenant in ctx, for when the
// tenant is dropped. Objects of other tenants are untouched, including
// those whose schema starts with this one's.
func (s *Store) DeletePrefix(ctx context.Context) error {
	schema, err := tenantSchema(ctx)
	if err != nil {
		return err
	}
	prefix := schema + "/"

	if r, ok := s.bucket.(prefixRemover); ok {
		if err := r.removePrefix(ctx, prefix); err != nil {
			return fmt.Errorf("delete prefix %s: %w", prefix, err)
		}
		return nil
	}
	err = s.bucket.List(ctx, prefix, func(key string, _ Attrs) error {
		if err := s.bucket.Delete(ctx, key); err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("delete %s: %w", key, err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete prefix %s: %w", prefix, err)
	}
	return nil
}

// Usage returns the bytes stored for the tenant in ctx. It lists every
// object of the tenant, so it suits reports rather than request paths.
func (s *Store) Usage(ctx context.Context) (int64, error) {
	schema, err := tenantSchema(ctx)
	if err != nil {
		return 0, err
	}

	var total int64
	err = s.bucket.List(ctx, schema+"/", func(_ string, a Attrs) error {
		total += a.Size
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("usage of %s: %w", schema, err)
	}
	return total, nil
}
