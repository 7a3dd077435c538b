package postgres

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/xatlabs/xat/tenancy"
)

// roleSystem is the xat.role of work that no member does: background jobs,
// and credential lookups made before anyone is authenticated. It sees
// every row of the partner.
const roleSystem = "system"

// systemScope returns ctx carrying the system's transaction-local
// settings.
func systemScope(ctx context.Context) context.Context {
	return tenancy.WithSettings(ctx, tenancy.Setting{Name: settingRole, Value: roleSystem})
}

// CollectedData is a file a collector uploaded. The content lives in the
// tenant file storage under FileKey; the row is written only once the
// file is complete.
type CollectedData struct {
	ID           int64     `json:"id"`
	CollectorID  int64     `json:"collector_id"`
	FileKey      string    `json:"-"`
	OriginalName string    `json:"original_name"`
	Size         int64     `json:"size"`
	SHA256       string    `json:"sha256"`
	ContentType  string    `json:"content_type"`
	UploadedAt   time.Time `json:"uploaded_at"`
	OwnerID      int64     `json:"owner_id"`
}

// NewData describes a stored file to record. The store checks the
// values; callers sanitise the name and content type first (the limits
// here are a backstop, not a cleaner).
type NewData struct {
	CollectorID  int64
	FileKey      string
	OriginalName string // at most MaxOriginalName bytes, may be empty
	Size         int64
	SHA256       string // lowercase hex
	ContentType  string // at most MaxContentType bytes; empty means application/octet-stream
}

// Limits on the metadata of collected data, in bytes.
const (
	MaxOriginalName = 255
	MaxContentType  = 255
)

const dataColumns = `id, collector_id, file_key, original_name, size_bytes, sha256, content_type, uploaded_at, owner_id`

func scanData(row pgx.CollectableRow) (*CollectedData, error) {
	var d CollectedData
	err := row.Scan(&d.ID, &d.CollectorID, &d.FileKey, &d.OriginalName, &d.Size,
		&d.SHA256, &d.ContentType, &d.UploadedAt, &d.OwnerID)
	return &d, err
}

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

func (n NewData) check() error {
	switch {
	case n.FileKey == "":
		return &InputError{Field: "file_key", Reason: "is required"}
	case len(n.OriginalName) > MaxOriginalName || !utf8.ValidString(n.OriginalName):
		return &InputError{Field: "original_name", Reason: fmt.Sprintf("must be valid text of at most %d bytes", MaxOriginalName)}
	case len(n.ContentType) > MaxContentType || strings.ContainsAny(n.ContentType, "\r\n"):
		return &InputError{Field: "content_type", Reason: fmt.Sprintf("must be one line of at most %d bytes", MaxContentType)}
	case n.Size < 0:
		return &InputError{Field: "size", Reason: "must not be negative"}
	case !sha256Hex.MatchString(n.SHA256):
		return &InputError{Field: "sha256", Reason: "must be 64 lowercase hex digits"}
	}
	return nil
}

// CreateData records a stored file of a collector of the partner in ctx,
// owned by the actor. The collector must be visible to the actor. It
// returns an InputError for bad metadata, ErrNotFound when the collector
// does not exist or is not visible, and ErrConflict when the file key is
// already recorded.
func (s *Store) CreateData(ctx context.Context, a Actor, n NewData) (*CollectedData, error) {
	if err := n.check(); err != nil {
		return nil, fmt.Errorf("record data of collector %d: %w", n.CollectorID, err)
	}
	if n.ContentType == "" {
		n.ContentType = "application/octet-stream"
	}
	ctx, err := a.scope(ctx)
	if err != nil {
		return nil, fmt.Errorf("record data of collector %d: %w", n.CollectorID, err)
	}

	var d *CollectedData
	err = s.db.InTenant(ctx, func(ctx context.Context, tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `
			INSERT INTO collected_data (
			    collector_id,
			    file_key,
			    original_name,
			    size_bytes,
			    sha256,
			    content_type,
			    owner_id)
			SELECT id, $4, $5, $6, $7, $8, $3
			FROM collectors
			WHERE id = $1 AND ($2 OR owner_id = $3)
			RETURNING `+dataColumns,
			n.CollectorID, a.Admin, a.UserID, n.FileKey, n.OriginalName, n.Size, n.SHA256, n.ContentType)
		var err error
		d, err = pgx.CollectExactlyOneRow(rows, scanData)
		return err
	})
	switch {
	case isViolation(err, uniqueViolation, "collected_data_file_key_key"):
		err = ErrConflict
	case isViolation(err, foreignKeyViolation, "collected_data_collector_id_fkey"):
		// The collector was deleted between the check and the insert.
		err = ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("record data of collector %d: %w", n.CollectorID, notFound(err))
	}
	return d, nil
}

// Data returns collected data of the partner in ctx that the actor may
// see. Data that does not exist and data the actor may not see are both
// ErrNotFound.
func (s *Store) Data(ctx context.Context, a Actor, id int64) (*CollectedData, error) {
	ctx, err := a.scope(ctx)
	if err != nil {
		return nil, fmt.Errorf("get data %d: %w", id, err)
	}
	d, err := tenancy.Row(ctx, s.db, scanData, `
		SELECT `+dataColumns+`
		FROM collected_data
		WHERE id = $1 AND ($2 OR owner_id = $3)`, id, a.Admin, a.UserID)
	if err != nil {
		return nil, fmt.Errorf("get data %d: %w", id, notFound(err))
	}
	return d, nil
}

// DataOfCollector lists the collected data of a collector that the actor
// may see, by id, one page at a time. The collector itself must be
// visible: otherwise it returns ErrNotFound like Collector. It returns the
// next page's cursor, "" after the last page.
func (s *Store) DataOfCollector(
	ctx context.Context,
	a Actor,
	collectorID int64,
	page Page,
) ([]*CollectedData, string, error) {
	limit, err := page.limit()
	if err != nil {
		return nil, "", fmt.Errorf("list data of collector %d: %w", collectorID, err)
	}
	after, err := parseIDCursor(page.After)
	if err != nil {
		return nil, "", fmt.Errorf("list data of collector %d: %w", collectorID, err)
	}
	if _, err := s.Collector(ctx, a, collectorID); err != nil {
		return nil, "", fmt.Errorf("list data: %w", err)
	}
	ctx, err = a.scope(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("list data of collector %d: %w", collectorID, err)
	}

	owner, args := a.ownerFilter(collectorID, after, limit+1)
	ds, err := tenancy.Rows(ctx, s.db, scanData, `
		SELECT `+dataColumns+`
		FROM collected_data
		WHERE collector_id = $1 AND id > $2 AND `+owner+`
		ORDER BY id
		LIMIT $3`, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list data of collector %d: %w", collectorID, err)
	}
	ds, next := cut(ds, limit, func(d *CollectedData) string { return idCursor(d.ID) })
	return ds, next, nil
}

// DeleteData deletes collected data the actor may see, with its analyses,
// and returns the deleted row: its stored file is the caller's to remove,
// after this commit. It returns ErrNotFound like Data.
func (s *Store) DeleteData(ctx context.Context, a Actor, id int64) (*CollectedData, error) {
	ctx, err := a.scope(ctx)
	if err != nil {
		return nil, fmt.Errorf("delete data %d: %w", id, err)
	}
	var d *CollectedData
	err = s.db.InTenant(ctx, func(ctx context.Context, tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `
			DELETE FROM collected_data
			WHERE id = $1 AND ($2 OR owner_id = $3)
			RETURNING `+dataColumns, id, a.Admin, a.UserID)
		var err error
		d, err = pgx.CollectExactlyOneRow(rows, scanData)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("delete data %d: %w", id, notFound(err))
	}
	return d, nil
}
