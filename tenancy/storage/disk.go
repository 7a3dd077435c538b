package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

const (
	fileMode = 0o600
	dirMode  = 0o700

	// tempPrefix starts the names of uploads in progress. Keys never have a
	// segment starting with a dot, so a temp file cannot be named by a key
	// and List skips it. Uploads cut short by a crash leave theirs behind,
	// for SweepTemp.
	tempPrefix = ".upload-"
)

// disk is the local-disk Bucket. Every access goes through an os.Root, so
// no name, and no symbolic link planted in the tree, can reach a file
// outside the storage directory.
type disk struct {
	root *os.Root
}

// openDisk opens dir as a bucket, creating it (0700) if needed.
func openDisk(dir string) (*disk, error) {
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return nil, fmt.Errorf("create storage directory: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open storage directory: %w", err)
	}
	return &disk{root: root}, nil
}

func (d *disk) Close() error { return d.root.Close() }

// NewWriter writes to a temp file in the object's own directory, so that
// Commit can rename it into place atomically (a rename across file
// systems would fail).
func (d *disk) NewWriter(_ context.Context, key string) (Writer, error) {
	dir := path.Dir(key)
	if err := d.root.MkdirAll(filepath.FromSlash(dir), dirMode); err != nil {
		return nil, fmt.Errorf("create directory: %w", err)
	}
	tmp := path.Join(dir, tempPrefix+newName())
	f, err := d.root.OpenFile(filepath.FromSlash(tmp), os.O_WRONLY|os.O_CREATE|os.O_EXCL, fileMode)
	if err != nil {
		return nil, fmt.Errorf("create temp file: %w", err)
	}
	return &diskWriter{d: d, f: f, tmp: tmp, key: key}, nil
}

func (d *disk) NewReader(_ context.Context, key string) (io.ReadCloser, Attrs, error) {
	f, err := d.root.Open(filepath.FromSlash(key))
	if err != nil {
		return nil, Attrs{}, notFound(err)
	}

	// Stat the open file, so the size matches what will be read.
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = ErrNotFound
	}
	if err != nil {
		f.Close()
		return nil, Attrs{}, err
	}
	return f, Attrs{Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

func (d *disk) Attributes(_ context.Context, key string) (Attrs, error) {
	fi, err := d.root.Stat(filepath.FromSlash(key))
	if err != nil {
		return Attrs{}, notFound(err)
	}
	if !fi.Mode().IsRegular() {
		return Attrs{}, ErrNotFound
	}
	return Attrs{Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

func (d *disk) Delete(_ context.Context, key string) error {
	name := filepath.FromSlash(key)

	// Remove would also take an empty directory; a key names files only.
	fi, err := d.root.Lstat(name)
	if err != nil {
		return notFound(err)
	}
	if !fi.Mode().IsRegular() {
		return ErrNotFound
	}
	return notFound(d.root.Remove(name))
}

func (d *disk) List(ctx context.Context, prefix string, fn func(key string, a Attrs) error) error {
	start := path.Dir(prefix + "x")
	err := fs.WalkDir(d.root.FS(), start, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			if p == start && isNotExist(err) {
				return fs.SkipAll
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if strings.HasPrefix(de.Name(), ".") && p != "." {
			if de.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if de.IsDir() || !de.Type().IsRegular() || !strings.HasPrefix(p, prefix) {
			return nil
		}

		fi, err := de.Info()
		if isNotExist(err) {
			return nil // deleted while listing
		}
		if err != nil {
			return err
		}
		return fn(p, Attrs{Size: fi.Size(), ModTime: fi.ModTime()})
	})
	return err
}

// sweepTemp removes the temp files of uploads not written to since before,
// in every directory of the bucket, and returns how many it removed.
func (d *disk) sweepTemp(ctx context.Context, before time.Time) (int, error) {
	n := 0
	err := fs.WalkDir(d.root.FS(), ".", func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			if isNotExist(err) {
				return nil // removed while walking
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if de.IsDir() || !de.Type().IsRegular() || !strings.HasPrefix(de.Name(), tempPrefix) {
			return nil
		}
		fi, err := de.Info()
		if isNotExist(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if !fi.ModTime().Before(before) {
			return nil
		}
		if err := d.root.Remove(filepath.FromSlash(p)); err != nil && !isNotExist(err) {
			return err
		}
		n++
		return nil
	})
	return n, err
}

// removePrefix removes the directory of prefix with everything in it.
func (d *disk) removePrefix(_ context.Context, prefix string) error {
	return d.root.RemoveAll(filepath.FromSlash(strings.TrimSuffix(prefix, "/")))
}

// syncDir flushes a directory, so that a rename in it survives a crash.
func (d *disk) syncDir(dir string) error {
	f, err := d.root.Open(filepath.FromSlash(dir))
	if err != nil {
		return err
	}
	defer f.Close()

	// Some file systems cannot sync a directory; the rename is then as
	// durable as they make it.
	err = f.Sync()
	if errors.Is(err, syscall.EINVAL) || errors.Is(err, errors.ErrUnsupported) {
		return nil
	}
	return err
}

// diskWriter is an upload in progress: a temp file beside its final name.
type diskWriter struct {
	d    *disk
	f    *os.File
	tmp  string
	key  string
	done bool
}

func (w *diskWriter) Write(p []byte) (int, error) { return w.f.Write(p) }

// Commit flushes the temp file to disk and renames it to its key. The data
// is synced before the rename, so a crash never leaves a partial file
// under the final name.
func (w *diskWriter) Commit() error {
	if w.done {
		return nil
	}
	w.done = true

	err := w.f.Sync()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = w.d.root.Rename(filepath.FromSlash(w.tmp), filepath.FromSlash(w.key))
	}
	if err != nil {
		w.d.root.Remove(filepath.FromSlash(w.tmp))
		return err
	}

	// The caller is told the upload failed, so the object must go too.
	if err := w.d.syncDir(path.Dir(w.key)); err != nil {
		w.d.root.Remove(filepath.FromSlash(w.key))
		return fmt.Errorf("sync directory: %w", err)
	}
	return nil
}

func (w *diskWriter) Abort() error {
	if w.done {
		return nil
	}
	w.done = true

	w.f.Close()
	if err := w.d.root.Remove(filepath.FromSlash(w.tmp)); err != nil && !isNotExist(err) {
		return err
	}
	return nil
}

// isNotExist also counts a path through a regular file, as in a/b where a
// is a file, which the system reports as ENOTDIR.
func isNotExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// notFound turns the system's "no such file" into ErrNotFound.
func notFound(err error) error {
	if isNotExist(err) {
		return ErrNotFound
	}
	return err
}
