package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/xatlabs/xat/internal/postgres"
)

// page reads the limit and cursor of a list request.
func page(r *http.Request) (postgres.Page, error) {
	q := r.URL.Query()
	p := postgres.Page{After: q.Get("cursor")}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > postgres.MaxLimit {
			return p, badRequest("limit must be a whole number from 1 to " + strconv.Itoa(postgres.MaxLimit))
		}
		p.Limit = n
	}
	return p, nil
}

// pathID reads a positive integer path parameter. A malformed id is
// answered like a missing object, so ids cannot be probed by format.
func pathID(r *http.Request, name string) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	if err != nil || id < 1 {
		return 0, notFound()
	}
	return id, nil
}

// list is the envelope of every list response.
type list[T any] struct {
	Items []T     `json:"items"`
	Next  *string `json:"next"`
}

func newList[T any](items []T, next string) list[T] {
	if items == nil {
		items = []T{}
	}
	l := list[T]{Items: items}
	if next != "" {
		l.Next = &next
	}
	return l
}

// parseDate reads an optional YYYY-MM-DD date.
func parseDate(field string, s *string) (*time.Time, error) {
	if s == nil || *s == "" {
		return nil, nil
	}
	t, err := time.Parse(time.DateOnly, *s)
	if err != nil {
		return nil, badRequest(field + " must be a date as YYYY-MM-DD")
	}
	return &t, nil
}

// parseTime reads an optional RFC 3339 query parameter.
func parseTime(r *http.Request, name string) (*time.Time, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return nil, badRequest(name + " must be an RFC 3339 time")
	}
	return &t, nil
}
