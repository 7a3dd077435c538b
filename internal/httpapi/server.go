// Package httpapi is XAT's HTTP API: routing by host, authentication bound
// to one partner, the partner administration API on public hosts and the
// partner API on partner hosts. JSON under /api/v1, errors as
// {"error": {"code": ..., "message": ...}}.
package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/xatlabs/xat/internal/auth"
	"github.com/xatlabs/xat/internal/postgres"
	"github.com/xatlabs/xat/tenancy"
	"github.com/xatlabs/xat/tenancy/cache"
)

// Config shapes the HTTP server. Zero values get the defaults noted.
type Config struct {
	Addr           string         // listen address; default 127.0.0.1:8080
	TrustedProxies []netip.Prefix // peers whose X-Forwarded-Host and X-Forwarded-For are believed
	PathPrefix     bool           // also serve partners under /t/<schema>/ on public hosts
	MaxBodyBytes   int64          // JSON request bodies; default 1 MiB
	SessionTTL     time.Duration  // sliding session lifetime: a session unused this long ends; default 12h
	SessionMaxAge  time.Duration  // absolute session lifetime from login; default 7 days
	SecureCookies  bool           // mark the session cookie Secure (behind TLS)
	LoginLimits    LoginLimits    // login attempts allowed, across every instance
	ShutdownGrace  time.Duration  // in-flight requests get this long; default 20s
	RetryAfter     time.Duration  // advertised when a partner's pool share is used up; default 1s
	Hasher         *auth.Hasher   // password hashing; default auth.DefaultHasher
	Data           DataConfig     // uploads, downloads and analyses
	Cache          *cache.Cache   // platform list and finished analyses; nil caches nothing
}

// LoginLimits bounds login attempts per LoginWindow, counted in the
// database so that every instance shares the count. Zero values get the
// defaults noted.
type LoginLimits struct {
	PerAccount int // attempts on one account, from anywhere; default 10
	PerAddr    int // attempts from one client address, on any account; default 100
}

// LoginWindow is the period the login limits count over. An account or
// address allowed n attempts may make them all at once, then one every
// LoginWindow/n.
const LoginWindow = 15 * time.Minute

func (c Config) withDefaults() Config {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:8080"
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 1 << 20
	}
	if c.SessionTTL <= 0 {
		c.SessionTTL = 12 * time.Hour
	}
	if c.SessionMaxAge <= 0 {
		c.SessionMaxAge = 7 * 24 * time.Hour
	}
	c.SessionTTL = min(c.SessionTTL, c.SessionMaxAge)
	if c.ShutdownGrace <= 0 {
		c.ShutdownGrace = 20 * time.Second
	}
	if c.RetryAfter <= 0 {
		c.RetryAfter = time.Second
	}
	if c.LoginLimits.PerAccount <= 0 {
		c.LoginLimits.PerAccount = 10
	}
	if c.LoginLimits.PerAddr <= 0 {
		c.LoginLimits.PerAddr = 100
	}
	return c
}

// Server is the HTTP API. Create it with New; it is an http.Handler.
type Server struct {
	cfg      Config
	db       *tenancy.DB
	store    *postgres.Store
	resolver *tenancy.Resolver
	auth     *authenticator
	log      *slog.Logger
	metrics  *metrics
	csrf     *http.CrossOriginProtection
	handler  http.Handler

	decoyOnce sync.Once
	decoy     string // see dummyHash

	registered routeTable // the routes registered, for Routes
}

// New builds the server and its routes.
func New(cfg Config, db *tenancy.DB, store *postgres.Store, resolver *tenancy.Resolver, log *slog.Logger) *Server {
	s := &Server{
		cfg:      cfg.withDefaults(),
		db:       db,
		store:    store,
		resolver: resolver,
		log:      log,
		metrics:  newMetrics(db, resolver),
		csrf:     http.NewCrossOriginProtection(),
	}
	s.auth = newAuthenticator(s)
	resolver.Subscribe(AuthChannel, s.auth.grants.clear)
	s.handler = s.routes()
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// routes assembles the handler tree: probes and metrics answer on any host;
// everything else is resolved to a partner or a public host first.
func (s *Server) routes() http.Handler {
	public := http.NewServeMux()
	partner := http.NewServeMux()
	s.registered = newRouteTable(public, partner)
	s.registerCommon(public)
	s.registerCommon(partner)
	s.registerPublic(public)
	s.registerPartner(partner)
	s.registerData(partner)

	publicRoutes, partnerRoutes := jsonMux(public), jsonMux(partner)
	byHost := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tenancy.IsPublic(r.Context()) {
			publicRoutes.ServeHTTP(w, r)
			return
		}
		partnerRoutes.ServeHTTP(w, r)
	})
	resolved := s.resolver.Middleware(tenancy.MiddlewareOptions{
		TrustedProxies: s.cfg.TrustedProxies,
		PathPrefix:     s.cfg.PathPrefix,
		WriteError: func(w http.ResponseWriter, r *http.Request, status int, code, message string) {
			if code == tenancy.CodeTenantInactive {
				message = "partner is inactive"
			}
			writeError(w, status, code, message)
		},
	})(withTenantLogger(s.sameOrigin(s.auth.middleware(byHost))))

	root := http.NewServeMux()
	s.handleRoot(root, "GET /healthz", http.HandlerFunc(s.healthz))
	s.handleRoot(root, "GET /readyz", http.HandlerFunc(s.readyz))
	s.handleRoot(root, "GET /metrics", s.metrics.handler())
	root.Handle("/", resolved)
	return s.observe(s.limitBodies(root))
}

// jsonMux serves mux, but answers requests that match no route with the
// API's JSON errors (404, or 405 with Allow) instead of the mux's plain
// text.
func jsonMux(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		probe := &headerProbe{header: make(http.Header)}
		h.ServeHTTP(probe, r)
		if probe.status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", probe.header.Get("Allow"))
			writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed")
			return
		}
		writeError(w, http.StatusNotFound, "not_found", "not found")
	})
}

// headerProbe is a ResponseWriter that keeps only the status and headers.
type headerProbe struct {
	header http.Header
	status int
}

func (p *headerProbe) Header() http.Header         { return p.header }
func (p *headerProbe) Write(b []byte) (int, error) { return len(b), nil }
func (p *headerProbe) WriteHeader(status int)      { p.status = status }

// sameOrigin refuses state-changing browser requests sent from another
// origin. SameSite cookies do not suffice: partner domains under one
// parent domain are the same site, so a page on one partner's host could
// otherwise post with a session cookie of another.
func (s *Server) sameOrigin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.csrf.Check(r); err != nil {
			writeError(w, http.StatusForbidden, "cross_origin", "cross-origin request refused")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// handle registers an API handler that returns an error; the error is
// translated once, in handleError.
func (s *Server) handle(mux *http.ServeMux, pattern string, h func(w http.ResponseWriter, r *http.Request) error) {
	s.registered.add(mux, pattern)
	mux.Handle(pattern, routed(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.handleError(w, r, err)
		}
	})))
}

// mapError turns the errors of lower layers that mean something to a
// client into API errors.
func (s *Server) mapError(err error) *apiError {
	var in *postgres.InputError
	if errors.As(err, &in) {
		return &apiError{http.StatusBadRequest, "invalid_input", in.Error()}
	}
	switch {
	case errors.Is(err, postgres.ErrNotFound), errors.Is(err, tenancy.ErrTenantNotFound),
		errors.Is(err, tenancy.ErrDomainNotFound):
		return &apiError{http.StatusNotFound, "not_found", "not found"}
	case errors.Is(err, postgres.ErrBadCursor):
		return &apiError{http.StatusBadRequest, "bad_cursor", "invalid pagination cursor"}
	case errors.Is(err, tenancy.ErrTenantBusy):
		return &apiError{http.StatusServiceUnavailable, "busy", "too many concurrent requests for this partner; retry shortly"}
	case errors.Is(err, tenancy.ErrTenantInactive):
		return &apiError{http.StatusForbidden, "tenant_inactive", "partner is inactive"}
	}
	return nil
}

// Run serves on cfg.Addr until ctx ends, then stops accepting, lets
// in-flight requests finish within the grace period and returns.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", s.cfg.Addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve is Run on a listener the caller opened.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       10 * time.Minute, // uploads stream through
		WriteTimeout:      10 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.log.InfoContext(ctx, "Serving HTTP", slog.String("addr", ln.Addr().String()))

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.log.InfoContext(ctx, "Shutting down HTTP", slog.Duration("grace", s.cfg.ShutdownGrace))
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
