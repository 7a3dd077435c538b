package tenancy

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// Error codes the middleware passes to MiddlewareOptions.WriteError and
// writes in its default JSON bodies.
const (
	CodeBadHost        = "bad_host"        // 400: the host is not a valid host name
	CodeUnknownHost    = "unknown_host"    // 404: no tenant has this domain
	CodeUnknownTenant  = "unknown_tenant"  // 404: path-prefix mode, no tenant has this schema
	CodeTenantInactive = "tenant_inactive" // 403: the tenant is deactivated
	CodeInternal       = "internal"        // 500: the registry could not be read
)

// TenantPathPrefix starts the paths that name a tenant in path-prefix mode:
// /t/<schema>/...
const TenantPathPrefix = "/t/"

// MiddlewareOptions configures Resolver.Middleware. The zero value resolves
// tenants from the Host header alone and writes JSON errors.
type MiddlewareOptions struct {
	// TrustedProxies lists the peers whose X-Forwarded-Host is believed.
	// When the immediate peer (Request.RemoteAddr) is in one of these
	// prefixes and the request has an X-Forwarded-Host, its last value
	// names the host, and the next handler sees it as Request.Host. From
	// any other peer the header is ignored. Default: none.
	TrustedProxies []netip.Prefix

	// PathPrefix turns on path-prefix mode: on a public host, a path
	// /t/<schema>/rest is served by the tenant with that schema, as /rest.
	// The application must then scope its session cookies to /t/<schema>
	// (see BasePath), or one cookie would travel to every tenant on that
	// host. Default off.
	PathPrefix bool

	// WriteError writes a refusal with its status, code (one of the Code
	// constants) and a short message for clients, which an application
	// may reword by code. Default WriteJSONError.
	WriteError func(w http.ResponseWriter, r *http.Request, status int, code, message string)
}

// Middleware returns HTTP middleware that resolves each request's tenant
// and refuses requests that have none. The next handler finds the tenant
// with FromContext, which is also where the application's loggers find it,
// or IsPublic reports that the request came to a public host; a request
// never carries both.
//
// The host is Request.Host, which net/http takes from the Host header or,
// for an absolute-form request line ("GET http://a.example/ HTTP/1.1"),
// from the URI, ignoring the Host header as HTTP requires; the URL's host
// is then the same, so the two never disagree. The server already refuses
// a request with two Host headers.
//
// A malformed host gets 400 (CodeBadHost), an unknown one 404
// (CodeUnknownHost), a deactivated tenant 403 (CodeTenantInactive) and a
// registry failure 500 (CodeInternal, logged); there is never a fallback
// to another tenant or to public. Under PathPrefix, every path at or under
// /t on a public host belongs to a tenant: an unknown or invalid schema
// gets 404 (CodeUnknownTenant), and public routes are never served there.
// On tenant hosts such paths are not special.
func (rs *Resolver) Middleware(opts MiddlewareOptions) func(http.Handler) http.Handler {
	if opts.WriteError == nil {
		opts.WriteError = WriteJSONError
	}
	return func(next http.Handler) http.Handler {
		return &middleware{rs: rs, opts: opts, next: next}
	}
}

type middleware struct {
	rs   *Resolver
	opts MiddlewareOptions
	next http.Handler
}

func (m *middleware) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host, forwarded := hostOf(r, m.opts.TrustedProxies)
	res, err := m.rs.Resolve(r.Context(), host)
	if err != nil {
		m.refuse(w, r, err, CodeUnknownHost, res.Tenant)
		return
	}
	if forwarded {
		r = r.WithContext(r.Context()) // a shallow copy, not the caller's request
		r.Host = host
	}

	ctx := r.Context()
	switch {
	case res.Public && m.opts.PathPrefix && underTenantPath(r.URL.Path):
		m.servePath(w, r)
	case res.Public:
		// A tenant put in the context upstream must not survive here.
		ctx = WithTenant(ctx, nil)
		m.next.ServeHTTP(w, r.WithContext(withRoute(ctx, route{public: true})))
	default:
		ctx = WithTenant(ctx, res.Tenant)
		m.next.ServeHTTP(w, r.WithContext(withRoute(ctx, route{})))
	}
}

// servePath serves a /t/<schema>/... request on a public host as the
// tenant's, with the prefix cut from the path.
func (m *middleware) servePath(w http.ResponseWriter, r *http.Request) {
	schema, path, rawPath, ok := splitTenantPath(r.URL)
	if !ok {
		m.refuse(w, r, ErrTenantNotFound, CodeUnknownTenant, nil)
		return
	}
	t, err := m.rs.ResolveSchema(r.Context(), schema)
	if err != nil {
		m.refuse(w, r, err, CodeUnknownTenant, t)
		return
	}

	ctx := WithTenant(r.Context(), t)
	ctx = withRoute(ctx, route{basePath: TenantPathPrefix + schema})
	r2 := r.WithContext(ctx)
	u := *r.URL
	u.Path, u.RawPath = path, rawPath
	r2.URL = &u
	m.next.ServeHTTP(w, r2)
}

// refusals holds the message sent with each code.
var refusals = map[string]string{
	CodeBadHost:        "the request's host is not a valid host name",
	CodeUnknownHost:    "no tenant is served at this host",
	CodeUnknownTenant:  "no tenant is served at this path",
	CodeTenantInactive: "tenant is inactive",
	CodeInternal:       "internal error",
}

// refuse answers a request whose tenant could not be resolved. notFound
// is the code for an unknown tenant; t, when set, is the refused tenant.
func (m *middleware) refuse(
	w http.ResponseWriter,
	r *http.Request,
	err error,
	notFound string,
	t *Tenant,
) {
	status, code := http.StatusInternalServerError, CodeInternal
	switch {
	case errors.Is(err, ErrMalformedHost):
		status, code = http.StatusBadRequest, CodeBadHost
	case errors.Is(err, ErrTenantNotFound):
		status, code = http.StatusNotFound, notFound
	case errors.Is(err, ErrTenantInactive):
		status, code = http.StatusForbidden, CodeTenantInactive
	}

	ctx := r.Context()
	attrs := []slog.Attr{slog.String("error", err.Error())}
	if t != nil {
		attrs = append(attrs, slog.Int64("tenant_id", t.ID))
	}
	switch {
	case status != http.StatusInternalServerError:
		m.rs.log.LogAttrs(ctx, slog.LevelDebug, "Request refused by tenant resolution", attrs...)
	case ctx.Err() == nil:
		// Not logged when the client went away: that is no server failure.
		m.rs.log.LogAttrs(ctx, slog.LevelError, "Tenant resolution failed", attrs...)
	}
	m.opts.WriteError(w, r, status, code, refusals[code])
}

// hostOf returns the host r names and whether it came from a trusted
// X-Forwarded-Host.
func hostOf(r *http.Request, trusted []netip.Prefix) (string, bool) {
	if len(trusted) == 0 {
		return r.Host, false
	}
	values := r.Header.Values("X-Forwarded-Host")
	if len(values) == 0 || !trustedPeer(r.RemoteAddr, trusted) {
		return r.Host, false
	}
	// Each proxy appends; the last value is the one our peer vouches for.
	last := values[len(values)-1]
	if i := strings.LastIndexByte(last, ','); i >= 0 {
		last = last[i+1:]
	}
	return strings.TrimSpace(last), true
}

func trustedPeer(remoteAddr string, trusted []netip.Prefix) bool {
	var addr netip.Addr
	if ap, err := netip.ParseAddrPort(remoteAddr); err == nil {
		addr = ap.Addr()
	} else if a, err := netip.ParseAddr(remoteAddr); err == nil {
		addr = a
	} else {
		return false
	}
	addr = addr.Unmap().WithZone("")
	for _, p := range trusted {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// underTenantPath reports whether a decoded path is reserved for tenants
// in path-prefix mode.
func underTenantPath(path string) bool {
	return strings.HasPrefix(path, TenantPathPrefix) ||
		path == strings.TrimSuffix(TenantPathPrefix, "/")
}

// splitTenantPath cuts /t/<schema> from u's path. It works on the escaped
// path, so that an escaped slash can neither end the schema nor shift the
// rest, and returns the schema and the rest as Path and RawPath.
func splitTenantPath(u *url.URL) (schema, path, rawPath string, ok bool) {
	escaped := u.EscapedPath()
	if !strings.HasPrefix(escaped, TenantPathPrefix) {
		return "", "", "", false
	}
	seg, rest, _ := strings.Cut(escaped[len(TenantPathPrefix):], "/")
	rest = "/" + rest

	schema, err := url.PathUnescape(seg)
	if err != nil || schema == "" {
		return "", "", "", false
	}
	path, err = url.PathUnescape(rest)
	if err != nil {
		return "", "", "", false
	}
	if (&url.URL{Path: path}).EscapedPath() != rest {
		rawPath = rest
	}
	return schema, path, rawPath, true
}

// WriteJSONError is the default MiddlewareOptions.WriteError. It writes
// status and the body {"error":{"code":"...","message":"..."}}.
func WriteJSONError(w http.ResponseWriter, _ *http.Request, status int, code, message string) {
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	body.Error.Code, body.Error.Message = code, message

	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	// A failed write means the client is gone; there is no one to tell.
	_ = json.NewEncoder(w).Encode(body)
}

// route records how the middleware routed a request.
type route struct {
	public   bool
	basePath string
}

type routeKey struct{}

func withRoute(ctx context.Context, rt route) context.Context {
	return context.WithValue(ctx, routeKey{}, rt)
}

// IsPublic reports whether ctx belongs to a request that Middleware
// routed to a public host. Such a request carries no tenant.
func IsPublic(ctx context.Context) bool {
	rt, _ := ctx.Value(routeKey{}).(route)
	return rt.public
}

// BasePath returns the path prefix under which Middleware served the
// request's tenant in path-prefix mode ("/t/<schema>"), or "" when the
// tenant came from the host. Links and cookie paths must start with it.
func BasePath(ctx context.Context) string {
	rt, _ := ctx.Value(routeKey{}).(route)
	return rt.basePath
}
