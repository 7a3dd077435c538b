package storage

import (
	"context"
	"fmt"
	"io"
	"net/url"

	"gocloud.dev/blob"
	"gocloud.dev/blob/s3blob"
	"gocloud.dev/gcerrors"
)

// blobBucket adapts a gocloud.dev bucket. Its writers already publish an
// object only when closed, and abort when their context is cancelled
// first; Abort relies on that.
type blobBucket struct {
	b *blob.Bucket
}

// NewBlobBucket returns a Bucket over a gocloud.dev bucket, for the
// services Open does not name (import their driver and open the bucket
// with gocloud.dev/blob). The Bucket closes b when closed.
func NewBlobBucket(b *blob.Bucket) Bucket {
	return &blobBucket{b: b}
}

// openS3 opens an S3 or S3-compatible bucket.
//
// TODO: the S3 path is compiled and its URL parsing tested, but it has not
// run against a real S3 or S3-compatible server: credentials, multipart
// uploads and their abort on failure are unverified there.
func openS3(ctx context.Context, u *url.URL) (*blobBucket, error) {
	b, err := (&s3blob.URLOpener{}).OpenBucketURL(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("open s3 bucket %q: %w", u.Host, err)
	}
	return &blobBucket{b: b}, nil
}

func (b *blobBucket) Close() error { return b.b.Close() }

func (b *blobBucket) NewWriter(ctx context.Context, key string) (Writer, error) {
	ctx, cancel := context.WithCancel(ctx)

	// An explicit content type spares the writer from buffering the start
	// of the content to sniff one.
	w, err := b.b.NewWriter(ctx, key, &blob.WriterOptions{ContentType: "application/octet-stream"})
	if err != nil {
		cancel()
		return nil, blobError(err)
	}
	return &blobWriter{w: w, cancel: cancel}, nil
}

func (b *blobBucket) NewReader(ctx context.Context, key string) (io.ReadCloser, Attrs, error) {
	r, err := b.b.NewReader(ctx, key, nil)
	if err != nil {
		return nil, Attrs{}, blobError(err)
	}
	return r, Attrs{Size: r.Size(), ModTime: r.ModTime()}, nil
}

func (b *blobBucket) Attributes(ctx context.Context, key string) (Attrs, error) {
	a, err := b.b.Attributes(ctx, key)
	if err != nil {
		return Attrs{}, blobError(err)
	}
	return Attrs{Size: a.Size, ModTime: a.ModTime}, nil
}

func (b *blobBucket) Delete(ctx context.Context, key string) error {
	return blobError(b.b.Delete(ctx, key))
}

func (b *blobBucket) List(
	ctx context.Context,
	prefix string,
	fn func(key string, a Attrs) error,
) error {
	it := b.b.List(&blob.ListOptions{Prefix: prefix})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if obj.IsDir {
			continue
		}
		if err := fn(obj.Key, Attrs{Size: obj.Size, ModTime: obj.ModTime}); err != nil {
			return err
		}
	}
}

// blobError turns gocloud's not-found into ErrNotFound.
func blobError(err error) error {
	if err != nil && gcerrors.Code(err) == gcerrors.NotFound {
		return ErrNotFound
	}
	return err
}

type blobWriter struct {
	w      *blob.Writer
	cancel context.CancelFunc
	done   bool
}

func (w *blobWriter) Write(p []byte) (int, error) { return w.w.Write(p) }

func (w *blobWriter) Commit() error {
	if w.done {
		return nil
	}
	w.done = true
	defer w.cancel()
	return w.w.Close()
}

// Abort cancels the writer's context before closing it, which gocloud
// takes as an order to discard the upload. Close then reports the
// cancellation, which is the expected outcome here.
func (w *blobWriter) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	w.cancel()
	_ = w.w.Close()
	return nil
}
