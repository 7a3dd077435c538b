package httpapi

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/xatlabs/xat/internal/auth"
	"github.com/xatlabs/xat/internal/jobs"
	"github.com/xatlabs/xat/internal/postgres"
	"github.com/xatlabs/xat/tenancy/storage"
)

// DataConfig shapes the data API: uploads, downloads and analyses. Zero
// values get the defaults noted.
type DataConfig struct {
	// Files keeps uploaded files. Without it the routes that touch files
	// answer 503.
	Files *storage.Store

	// MaxUploadBytes caps one upload. Default 1 GiB.
	MaxUploadBytes int64

	// Jobs queues analyses. Without it POST /api/v1/analyses answers 503.
	Jobs *jobs.Client
}

func (c DataConfig) maxUpload() int64 {
	if c.MaxUploadBytes <= 0 {
		return 1 << 30
	}
	return c.MaxUploadBytes
}

// registerData adds the data API to the partner routes: collector tokens,
// uploads, collected data and analyses. Uploads also accept a collector
// token, which limitBodies hands over; every other route is for members.
func (s *Server) registerData(mux *http.ServeMux) {
	member := func(pattern string, h func(http.ResponseWriter, *http.Request, *principal) error) {
		s.handle(mux, pattern, func(w http.ResponseWriter, r *http.Request) error {
			p, err := requireMember(r)
			if err != nil {
				return err
			}
			return h(w, r, p)
		})
	}
	member("GET /api/v1/collectors/{id}/tokens", s.listCollectorTokens)
	member("POST /api/v1/collectors/{id}/tokens", s.createCollectorToken)
	member("DELETE /api/v1/collectors/{id}/tokens/{token_id}", s.revokeCollectorToken)

	s.handle(mux, "POST /api/v1/collectors/{id}/data", s.upload)
	member("GET /api/v1/collectors/{id}/data", s.listData)
	member("GET /api/v1/data/{id}", s.getData)
	member("GET /api/v1/data/{id}/content", s.downloadData)
	member("DELETE /api/v1/data/{id}", s.deleteData)

	member("POST /api/v1/analyses", s.createAnalysis)
	member("GET /api/v1/analyses", s.listAnalyses)
	member("GET /api/v1/analyses/{id}", s.getAnalysis)
}

type collectorTokenKey struct{}

// limitBodies caps request bodies before routing. Every request gets
// MaxBodyBytes except an upload, which gets MaxUploadBytes; the cap has to
// be chosen here, because a handler cannot raise the one
// http.MaxBytesReader put on its body.
//
// An upload may also authenticate with a collector token, which the
// authenticator, run before routing, refuses as a credential of the wrong
// kind. limitBodies takes such a token out of the request (with any
// cookie, so that the token is the upload's only credential) and hands it
// to the upload handler, which checks it against the partner of the host.
// On any other route a collector token stays where it is and is refused.
func (s *Server) limitBodies(root http.Handler) http.Handler {
	uploads := http.NewServeMux()
	for _, p := range []string{
		"POST /api/v1/collectors/{id}/data",
		"POST /t/{schema}/api/v1/collectors/{id}/data", // path-prefix mode
	} {
		uploads.Handle(p, http.NotFoundHandler())
	}
	limited := http.MaxBytesHandler(root, s.cfg.MaxBodyBytes)

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upload := false
		if r.Method == http.MethodPost { // uploads are; spare the others a match
			_, pattern := uploads.Handler(r)
			upload = pattern != ""
		}
		if !upload {
			if r.Body == http.NoBody { // nothing to limit, nothing to copy
				root.ServeHTTP(w, r)
				return
			}
			limited.ServeHTTP(w, r)
			return
		}
		r2 := *r
		r2.Body = http.MaxBytesReader(w, r.Body, s.cfg.Data.maxUpload())
		if token, ok := collectorBearer(r); ok {
			r2.Header = r.Header.Clone()
			r2.Header.Del("Authorization")
			r2.Header.Del("Cookie")
			r2 = *r2.WithContext(context.WithValue(r.Context(), collectorTokenKey{}, token))
		}
		root.ServeHTTP(w, &r2)
	})
}

// collectorBearer returns the collector token a request carries as its
// bearer token, if it does.
func collectorBearer(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, auth.TokenKind(token) == auth.KindCollector
}

// uploader returns in whose name an upload to collector id is made: the
// member's, who must see the collector, or with a collector token of that
// collector, its owner's. A collector token that the host's partner does
// not hold (revoked, unknown, or another partner's) is 401; one of
// another collector of the partner is 403, whether that collector exists
// or not.
func (s *Server) uploader(r *http.Request, id int64) (postgres.Actor, error) {
	ctx := r.Context()
	plain, ok := ctx.Value(collectorTokenKey{}).(string)
	if !ok {
		p, err := requireMember(r)
		if err != nil {
			return postgres.Actor{}, err
		}
		if _, err := s.store.Collector(ctx, p.actor(), id); err != nil {
			return postgres.Actor{}, err
		}
		return p.actor(), nil
	}

	acc, err := s.store.UseCollectorToken(ctx, auth.HashToken(plain))
	if errors.Is(err, postgres.ErrNotFound) {
		logger(ctx, s.log).WarnContext(ctx, "Collector token refused", slog.Int64("collector_id", id))
		return postgres.Actor{}, unauthorized()
	}
	if err != nil {
		return postgres.Actor{}, err
	}
	if acc.CollectorID != id {
		logger(ctx, s.log).WarnContext(ctx, "Collector token used for another collector",
			slog.Int64("collector_id", id), slog.Int64("token_id", acc.TokenID))
		return postgres.Actor{}, forbidden("token not valid for this collector")
	}
	logWith(ctx, slog.Int64("collector_token_id", acc.TokenID))
	return postgres.Actor{UserID: acc.OwnerID}, nil
}

func errNoFiles() error {
	return &apiError{http.StatusServiceUnavailable, "unavailable", "file storage is not configured"}
}

func tooLarge(max int64) error {
	return &apiError{http.StatusRequestEntityTooLarge, "too_large",
		"upload larger than " + strconv.FormatInt(max, 10) + " bytes"}
}

// upload streams the raw request body into tenant storage, under the
// collector's prefix, hashing and counting as it writes, and records the
// collected data once the file is complete. Nothing is kept of an upload
// that fails: too large, interrupted, or refused by the database.
func (s *Server) upload(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	files := s.cfg.Data.Files
	if files == nil {
		return errNoFiles()
	}
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	actor, err := s.uploader(r, id)
	if err != nil {
		return err
	}
	max := s.cfg.Data.maxUpload()
	if r.ContentLength > max {
		return tooLarge(max)
	}

	body := &bodyReader{r: r.Body}
	obj, err := files.Put(ctx, strconv.FormatInt(id, 10), body, max)
	if err != nil {
		return s.uploadError(r, body, max, err)
	}
	d, err := s.store.CreateData(ctx, actor, postgres.NewData{
		CollectorID:  id,
		FileKey:      obj.Key,
		OriginalName: originalName(r),
		Size:         obj.Size,
		SHA256:       obj.SHA256,
		ContentType:  contentType(r.Header.Get("Content-Type")),
	})
	if err != nil {
		s.removeFile(ctx, obj.Key)
		return err
	}
	w.Header().Set("Location", "/api/v1/data/"+strconv.FormatInt(d.ID, 10))
	writeJSON(w, http.StatusCreated, d)
	return nil
}

// uploadError says why an upload's body did not make it into storage.
func (s *Server) uploadError(r *http.Request, body *bodyReader, max int64, err error) error {
	ctx := r.Context()
	if _, over := errors.AsType[*http.MaxBytesError](err); over || errors.Is(err, storage.ErrTooLarge) {
		return tooLarge(max)
	}
	if body.err != nil || ctx.Err() != nil {
		// The client's side failed: it went away or sent a broken body.
		logger(ctx, s.log).WarnContext(ctx, "Upload interrupted", slog.Int64("bytes", body.n), slog.Any("error", err))
		return &apiError{http.StatusBadRequest, "upload_incomplete", "the upload ended before its end; nothing was kept"}
	}
	return err
}

// removeFile deletes a stored file whose row could not be written, even
// when the request's context has ended.
func (s *Server) removeFile(ctx context.Context, key string) {
	if err := s.cfg.Data.Files.Delete(context.WithoutCancel(ctx), key); err != nil && !errors.Is(err, storage.ErrNotFound) {
		logger(ctx, s.log).WarnContext(ctx, "Stored file not removed", slog.Any("error", err))
	}
}

// bodyReader reads a request body and remembers how much it read and the
// error it ended with, other than io.EOF, to tell a client's failure from
// a storage one.
type bodyReader struct {
	r   io.Reader
	n   int64
	err error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n += int64(n)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

// originalName returns the file name an upload gives, from X-File-Name or
// the name query parameter, kept as metadata only: its last path element,
// without control or formatting characters (which could disguise it),
// trimmed, valid UTF-8 and at most postgres.MaxOriginalName bytes.
func originalName(r *http.Request) string {
	name := r.Header.Get("X-File-Name")
	if name == "" {
		name = r.URL.Query().Get("name")
	}
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.Map(func(c rune) rune {
		if c == utf8.RuneError || unicode.IsControl(c) || unicode.Is(unicode.Cf, c) {
			return -1
		}
		return c
	}, name)
	name = strings.TrimSpace(name)
	if name == "." || name == ".." {
		return ""
	}
	return cutUTF8(name, postgres.MaxOriginalName)
}

// contentType returns the media type of an upload as it will be served
// back: the request's, normalised, or application/octet-stream when it is
// missing, malformed or too long.
func contentType(header string) string {
	const fallback = "application/octet-stream"
	mt, params, err := mime.ParseMediaType(header)
	if header == "" || err != nil || !strings.Contains(mt, "/") {
		return fallback
	}
	if ct := mime.FormatMediaType(mt, params); ct != "" && len(ct) <= postgres.MaxContentType {
		return ct
	}
	if len(mt) <= postgres.MaxContentType {
		return mt
	}
	return fallback
}

// cutUTF8 cuts s to at most n bytes without splitting a character.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
