package postgres

import (
	"encoding/base64"
	"strconv"
	"strings"
	"time"
)

// Page limits.
const (
	DefaultLimit = 20
	MaxLimit     = 200
)

// Page selects one page of a list. Lists are ordered by a unique key and
// paginated by keyset: After is the opaque cursor a previous call returned
// as next, "" for the first page. Rows inserted or deleted between calls
// never make a page repeat or skip a row that was there all along.
type Page struct {
	Limit int    // rows per page: 0 means DefaultLimit, at most MaxLimit
	After string // cursor of the previous page, "" to start
}

var (
	// ErrBadCursor is returned for a cursor that this list did not hand
	// out.
	ErrBadCursor = &InputError{Field: "cursor", Reason: "invalid pagination cursor"}

	// ErrBadLimit is returned for a page limit outside 0 to MaxLimit.
	ErrBadLimit = &InputError{Field: "limit", Reason: "must be from 1 to " + strconv.Itoa(MaxLimit)}
)

// limit returns the page size.
func (p Page) limit() (int, error) {
	switch {
	case p.Limit == 0:
		return DefaultLimit, nil
	case p.Limit < 0 || p.Limit > MaxLimit:
		return 0, ErrBadLimit
	}
	return p.Limit, nil
}

// Cursors are base64url text: a one-letter tag naming the kind of key,
// then the key. The tag keeps a cursor of one list from being accepted by
// a list with another kind of key. Cursors are opaque to clients but not
// secret: they hold an id or a time the client has already seen.
var cursorEncoding = base64.RawURLEncoding

// idCursor returns the cursor that resumes after id.
func idCursor(id int64) string {
	return cursorEncoding.EncodeToString([]byte("i" + strconv.FormatInt(id, 10)))
}

// parseIDCursor returns the id a cursor resumes after: 0 for "".
func parseIDCursor(after string) (int64, error) {
	if after == "" {
		return 0, nil
	}
	raw, err := cursorEncoding.DecodeString(after)
	if err != nil {
		return 0, ErrBadCursor
	}
	s, ok := strings.CutPrefix(string(raw), "i")
	if !ok {
		return 0, ErrBadCursor
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id < 1 {
		return 0, ErrBadCursor
	}
	return id, nil
}

// timeCursor returns the cursor that resumes after the row (at, id) of a
// list ordered newest first.
func timeCursor(at time.Time, id int64) string {
	key := "t" + strconv.FormatInt(at.UnixMicro(), 10) + "." + strconv.FormatInt(id, 10)
	return cursorEncoding.EncodeToString([]byte(key))
}

// parseTimeCursor returns the (at, id) a cursor resumes after, and false
// for "".
func parseTimeCursor(after string) (time.Time, int64, bool, error) {
	if after == "" {
		return time.Time{}, 0, false, nil
	}
	raw, err := cursorEncoding.DecodeString(after)
	if err != nil {
		return time.Time{}, 0, false, ErrBadCursor
	}
	key, ok := strings.CutPrefix(string(raw), "t")
	micros, idText, ok2 := strings.Cut(key, ".")
	if !ok || !ok2 {
		return time.Time{}, 0, false, ErrBadCursor
	}
	us, err1 := strconv.ParseInt(micros, 10, 64)
	id, err2 := strconv.ParseInt(idText, 10, 64)
	if err1 != nil || err2 != nil || id < 1 {
		return time.Time{}, 0, false, ErrBadCursor
	}
	return time.UnixMicro(us), id, true, nil
}

// cut trims a page fetched with one extra row to its limit and returns
// the cursor of the next page, "" when this one is the last.
func cut[T any](items []T, limit int, cursor func(T) string) ([]T, string) {
	if len(items) <= limit {
		return items, ""
	}
	items = items[:limit]
	return items, cursor(items[limit-1])
}
