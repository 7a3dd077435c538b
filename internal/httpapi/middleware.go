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

type loggerKey struct{}

// logger returns the request's logger (with request id and tenant), or
// fallback outside a request.
func logger(ctx context.Context, fallback *slog.Logger) *slog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok {
		return l
	}
	return fallback
}

func withLogger(ctx context.Context, l *slog.Logger) context.Context {
	return context.WithValue(ctx, loggerKey{}, l)
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
		log := s.log.With(slog.String("request_id", id))
		sw := &statusWriter{ResponseWriter: w}
		holder := &logHolder{log: log}
		ctx := context.WithValue(withLogger(r.Context(), log), logHolderKey{}, holder)
		r = r.WithContext(ctx)

		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				holder.log.ErrorContext(ctx, "Handler panicked", slog.Any("panic", p), slog.String("stack", string(debug.Stack())))
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
			holder.log.LogAttrs(ctx, level, "Request",
				slog.String("method", r.Method),
				slog.String("route", route),
				slog.String("path", r.URL.Path),
				slog.String("host", r.Host),
				slog.Int("status", status),
				slog.Int64("bytes", sw.bytes),
				slog.Duration("duration", time.Since(start)),
				slog.String("remote", r.RemoteAddr))
		}()
		next.ServeHTTP(sw, r)
	})
}

// logHolder lets inner middleware (tenant resolution, routing) enrich the
// access log line written by observe.
type logHolder struct {
	log   *slog.Logger
	route string
}

type logHolderKey struct{}

// withTenantLogger derives the request logger with the tenant, once, where
// the tenant is resolved; every later line of the request carries it.
func withTenantLogger(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if t, ok := tenancy.FromContext(ctx); ok {
			log := logger(ctx, slog.Default()).With(
				slog.Int64("tenant_id", t.ID), slog.String("schema", t.Schema))
			if h, ok := ctx.Value(logHolderKey{}).(*logHolder); ok {
				h.log = log
			}
			r = r.WithContext(withLogger(ctx, log))
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
