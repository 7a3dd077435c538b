package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/xatlabs/xat/tenancy"
)

// logger returns the request's logger (with request id, tenant and user
// as far as they are known), or fallback outside a request.
func logger(ctx context.Context, fallback *slog.Logger) *slog.Logger {
	if h, ok := ctx.Value(logHolderKey{}).(*logHolder); ok {
		return h.logger()
	}
	return fallback
}

// logWith adds attrs to every later line of the request's logs, the access
// log included. Outside a request it does nothing.
func logWith(ctx context.Context, attrs ...slog.Attr) {
	if h, ok := ctx.Value(logHolderKey{}).(*logHolder); ok {
		h.attrs = append(h.attrs, attrs...)
		h.log = nil
	}
}

// statusWriter records the status and size of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// observe is the outermost middleware: it gives the request an id and a
// logger, recovers panics into a 500, and records the access log line and
// the metrics once the response is done.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if len(id) == 0 || len(id) > 64 {
			id = newRequestID()
		}
		w.Header().Set("X-Request-Id", id)
		sw := &statusWriter{ResponseWriter: w}
		holder := &logHolder{base: s.log, attrs: make([]slog.Attr, 1, 16)}
		holder.attrs[0] = slog.String("request_id", id)
		ctx := context.WithValue(r.Context(), logHolderKey{}, holder)
		r = r.WithContext(ctx)

		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				holder.logger().ErrorContext(ctx, "Handler panicked", slog.Any("panic", p), slog.String("stack", string(debug.Stack())))
				if sw.status == 0 {
					writeError(sw, http.StatusInternalServerError, "internal", "internal error")
				}
			}
			status := sw.status
			if status == 0 {
				status = http.StatusOK
			}
			route := holder.route
			if route == "" {
				route = "unmatched"
			}
			s.metrics.observe(route, r.Method, status, time.Since(start))
			level := slog.LevelInfo
			if status >= 500 {
				level = slog.LevelWarn
			}
			holder.base.LogAttrs(ctx, level, "Request", append(holder.attrs,
				slog.String("method", r.Method),
				slog.String("route", route),
				slog.String("path", r.URL.Path),
				slog.String("host", r.Host),
				slog.Int("status", status),
				slog.Int64("bytes", sw.bytes),
				slog.Duration("duration", time.Since(start)),
				slog.String("remote", r.RemoteAddr))...)
		}()
		next.ServeHTTP(sw, r)
	})
}

// logHolder carries what a request's log lines say about it: the
// attributes inner middleware learn (tenant, user) and the matched route,
// for the access log line written by observe and for the handlers' own
// lines. The logger with the attributes is built only when a handler logs:
// most requests write the access line alone.
type logHolder struct {
	base  *slog.Logger
	attrs []slog.Attr
	log   *slog.Logger // base with attrs, once built
	route string
}

func (h *logHolder) logger() *slog.Logger {
	if h.log == nil {
		args := make([]any, len(h.attrs))
		for i, a := range h.attrs {
			args[i] = a
		}
		h.log = h.base.With(args...)
	}
	return h.log
}

type logHolderKey struct{}

// withTenantLogger adds the tenant to the request's logs, once, where the
// tenant is resolved; every later line of the request carries it.
func withTenantLogger(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if t, ok := tenancy.FromContext(r.Context()); ok {
			logWith(r.Context(), slog.Int64("tenant_id", t.ID), slog.String("schema", t.Schema))
		}
		next.ServeHTTP(w, r)
	})
}

// routed records the matched route pattern for logs and metrics.
func routed(pattern string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if holder, ok := r.Context().Value(logHolderKey{}).(*logHolder); ok {
			holder.route = pattern
		}
		h.ServeHTTP(w, r)
	})
}

func newRequestID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}
