package httpapi

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/xatlabs/xat/internal/postgres"
)

func (s *Server) listData(w http.ResponseWriter, r *http.Request, p *principal) error {
	return listOfCollector(w, r, p, s.store.DataOfCollector)
}

// listOfCollector answers one page of what belongs to the collector in the
// path, as the store's list function sees it for the caller.
func listOfCollector[T any](w http.ResponseWriter, r *http.Request, p *principal,
	list func(context.Context, postgres.Actor, int64, postgres.Page) ([]T, string, error)) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	pg, err := page(r)
	if err != nil {
		return err
	}
	items, next, err := list(r.Context(), p.actor(), id, pg)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(items, next))
	return nil
}

func (s *Server) getData(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	d, err := s.store.Data(r.Context(), p.actor(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

// downloadData streams the content of collected data back as it was
// uploaded. The ETag is the content's SHA-256. The content is always an
// attachment, never rendered: whatever type the uploader claimed, a
// browser is told to save it.
func (s *Server) downloadData(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	if s.cfg.Data.Files == nil {
		return errNoFiles()
	}
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	d, err := s.store.Data(ctx, p.actor(), id)
	if err != nil {
		return err
	}

	etag := `"` + d.SHA256 + `"`
	h := w.Header()
	h.Set("ETag", etag)
	h.Set("Cache-Control", "private, no-cache")
	if etagMatch(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}

	rc, attrs, err := s.cfg.Data.Files.Get(ctx, d.FileKey)
	if err != nil {
		return err
	}
	defer rc.Close()
	if attrs.Size != d.Size {
		return fmt.Errorf("download data %d: stored file has %d bytes, not the %d recorded", d.ID, attrs.Size, d.Size)
	}

	h.Set("Content-Type", d.ContentType)
	h.Set("Content-Length", strconv.FormatInt(d.Size, 10))
	h.Set("Content-Disposition", attachment(d))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return nil
	}
	if n, err := io.Copy(w, rc); err != nil {
		// The status is sent; all that is left is to say so in the log.
		logger(ctx, s.log).WarnContext(ctx, "Download cut short",
			slog.Int64("data_id", d.ID), slog.Int64("bytes", n), slog.Any("error", err))
	}
	return nil
}

// deleteData deletes collected data and its analyses, then its file. A
// file that cannot be removed is logged and left behind, invisible: the
// row that named it is gone. Deleting a collector removes its files the
// same way.
func (s *Server) deleteData(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	if s.cfg.Data.Files == nil {
		return errNoFiles()
	}
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	d, err := s.store.DeleteData(ctx, p.actor(), id)
	if err != nil {
		return err
	}
	s.removeFile(ctx, d.FileKey)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// attachment returns the Content-Disposition of collected data: an
// attachment under its original name, or data-<id> without one. The name
// was cleaned at upload; quoting and non-ASCII encoding are left to mime.
func attachment(d *postgres.CollectedData) string {
	name := d.OriginalName
	if name == "" {
		name = "data-" + strconv.FormatInt(d.ID, 10)
	}
	if v := mime.FormatMediaType("attachment", map[string]string{"filename": name}); v != "" {
		return v
	}
	return "attachment; filename=data-" + strconv.FormatInt(d.ID, 10)
}

// etagMatch reports whether an If-None-Match header names etag.
func etagMatch(header, etag string) bool {
	for _, v := range strings.Split(header, ",") {
		v = strings.TrimPrefix(strings.TrimSpace(v), "W/")
		if v == "*" || v == etag {
			return true
		}
	}
	return false
}
