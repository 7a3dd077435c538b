package storage

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"

	"github.com/xatlabs/xat/tenancy"
)

// ErrInvalidKey is returned, wrapped in a *KeyError, when a key or a subdir
// is malformed.
var ErrInvalidKey = errors.New("invalid storage key")

// ErrForeignKey is returned when a well-formed key lies under another
// tenant's prefix than the one in the context.
var ErrForeignKey = errors.New("storage key belongs to another tenant")

// KeyError says which key or subdir was rejected and why. It unwraps to
// ErrInvalidKey.
type KeyError struct {
	Key    string
	Reason string
}

func (e *KeyError) Error() string {
	return fmt.Sprintf("%v %q: %s", ErrInvalidKey, e.Key, e.Reason)
}

func (e *KeyError) Unwrap() error { return ErrInvalidKey }

const (
	maxKey     = 1024 // S3's limit on a key, in bytes
	maxSegment = 128
	maxDepth   = 16
)

// tenantSchema returns the schema of the tenant in ctx, which is the first
// segment of every key of that tenant. A tenant whose schema would not be a
// valid segment is refused rather than trusted.
func tenantSchema(ctx context.Context) (string, error) {
	t, ok := tenancy.FromContext(ctx)
	if !ok {
		return "", tenancy.ErrNoTenant
	}
	if err := tenancy.ValidateSchemaName(t.Schema, ""); err != nil {
		return "", fmt.Errorf("tenant %d: %w", t.ID, err)
	}
	return t.Schema, nil
}

// checkKey accepts key only if it is well formed and lies under the prefix
// of the tenant in ctx.
func checkKey(ctx context.Context, key string) error {
	schema, err := tenantSchema(ctx)
	if err != nil {
		return err
	}
	if reason := checkPath(key); reason != "" {
		return &KeyError{Key: key, Reason: reason}
	}
	if strings.Count(key, "/") < 2 {
		return &KeyError{Key: key, Reason: "must be <schema>/<subdir>/<name>"}
	}
	if first, _, _ := strings.Cut(key, "/"); first != schema {
		return fmt.Errorf("%w: %q", ErrForeignKey, key)
	}
	return nil
}

// checkSubdir accepts a subdir given to Put: one or more segments.
func checkSubdir(subdir string) error {
	if reason := checkPath(subdir); reason != "" {
		return &KeyError{Key: subdir, Reason: "subdir " + reason}
	}
	return nil
}

// checkPath returns why p is not a relative slash-separated path of plain
// segments, or "" if it is. Segments hold only ASCII letters, digits, dots,
// hyphens and underscores and never start with a dot, so ".", "..", hidden
// temp files, backslashes, percent-encoding and absolute paths are all
// impossible, on every backend and operating system.
func checkPath(p string) string {
	switch {
	case p == "":
		return "must not be empty"
	case len(p) > maxKey:
		return fmt.Sprintf("must be at most %d bytes", maxKey)
	case strings.Count(p, "/") >= maxDepth:
		return fmt.Sprintf("must have at most %d segments", maxDepth)
	}
	for _, seg := range strings.Split(p, "/") {
		if reason := checkSegment(seg); reason != "" {
			return reason
		}
	}
	return ""
}

func checkSegment(seg string) string {
	switch {
	case seg == "":
		return "must not have an empty segment or a leading or trailing slash"
	case len(seg) > maxSegment:
		return fmt.Sprintf("segments must be at most %d bytes", maxSegment)
	case seg[0] == '.':
		return "segments must not start with a dot"
	}
	for i := 0; i < len(seg); i++ {
		if !segmentByte(seg[i]) {
			return "may hold only letters, digits, dots, hyphens and underscores"
		}
	}
	return ""
}

func segmentByte(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return c == '.' || c == '-' || c == '_'
}

// newName returns a fresh object name: 26 characters of base32, 130 random
// bits, so names never collide and cannot be guessed.
func newName() string {
	return rand.Text()
}
