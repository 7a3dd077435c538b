package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/xatlabs/xat/internal/auth"
	"github.com/xatlabs/xat/internal/postgres"
	"github.com/xatlabs/xat/tenancy"
)

// sessionCookie is the name of the session cookie. It is host-only (no
// Domain attribute), so a browser never sends one partner's cookie to
// another partner's host; the server checks the binding all the same.
const sessionCookie = "xat_session"

// principal is who a request acts for, after authentication.
type principal struct {
	User     *postgres.User
	TenantID *int64 // the partner the credential is bound to; nil for a public-host session
	Role     string // membership role on the request's partner; "" on public hosts
	Via      string // "token" or "session"
	TokenID  int64
	Session  []byte // hash of the session id
}

// actor is the principal as the store's owner-visibility rules see it.
func (p *principal) actor() postgres.Actor {
	return postgres.Actor{UserID: p.User.ID, Admin: p.Role == "admin"}
}

type principalKey struct{}

func principalFrom(ctx context.Context) *principal {
	p, _ := ctx.Value(principalKey{}).(*principal)
	return p
}

// authenticator checks credentials and their binding to the request's host.
type authenticator struct {
	s      *Server
	grants *grantCache
	limits []loginLimit // checked in order: by client address, by account
}

// loginLimit is one limit on login attempts: Limit in the database, shared
// by every instance, and the same limit in this instance's memory, which
// turns a flood of attempts away before it reaches the database.
type loginLimit struct {
	byAddr bool // keyed by client address, else by account
	shared postgres.Limit
	local  *auth.Limiter
}

func newLoginLimit(byAddr bool, burst int, window time.Duration) loginLimit {
	return loginLimit{byAddr: byAddr, shared: postgres.Limit{Burst: burst, Window: window},
		local: auth.NewLimiter(burst, window, 100_000)}
}

func (l loginLimit) key(addr, email string) string {
	if l.byAddr {
		return "addr:" + addr
	}
	return "email:" + email
}

func newAuthenticator(s *Server) *authenticator {
	return &authenticator{
		s:      s,
		grants: newGrantCache(10*time.Second, 100_000),
		limits: []loginLimit{
			newLoginLimit(true, s.cfg.LoginLimits.PerAddr, LoginWindow),
			newLoginLimit(false, s.cfg.LoginLimits.PerAccount, LoginWindow),
		},
	}
}

// allowLogin records a login attempt from addr on account email and
// reports whether every limit allows it; if not, retryAfter says when to
// try again.
func (a *authenticator) allowLogin(ctx context.Context, addr, email string) (ok bool, retryAfter time.Duration, err error) {
	for _, l := range a.limits {
		key := l.key(addr, email)
		if ok, retry := l.local.Allow(key); !ok {
			return false, retry, nil
		}
		ok, retry, err := a.s.store.Allow(ctx, l.shared, key)
		if err != nil || !ok {
			return false, retry, err
		}
	}
	return true, 0, nil
}

// resetAccount gives an account its whole allowance of login attempts
// back, after a good password.
func (a *authenticator) resetAccount(ctx context.Context, email string) error {
	var errs []error
	for _, l := range a.limits {
		if !l.byAddr {
			l.local.Reset(l.key("", email))
			errs = append(errs, a.s.store.ResetLimit(ctx, l.key("", email)))
		}
	}
	return errors.Join(errs...)
}

// middleware attaches the principal of a valid credential to the request.
// A credential that is invalid, revoked, expired, or bound to another
// partner ends the request with 401 or 403; requests without credentials go
// on anonymous and the routes that need a principal refuse them.
func (a *authenticator) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := a.authenticate(r)
		if err != nil {
			a.s.handleError(w, r, err)
			return
		}
		if p != nil {
			logWith(r.Context(), slog.Int64("user_id", p.User.ID))
			r = r.WithContext(context.WithValue(r.Context(), principalKey{}, p))
		}
		next.ServeHTTP(w, r)
	})
}

func (a *authenticator) authenticate(r *http.Request) (*principal, error) {
	ctx := r.Context()
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, token, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
			return nil, unauthorized()
		}
		return a.fromToken(ctx, r, strings.TrimSpace(token))
	}
	if c, err := r.Cookie(sessionCookie); err == nil && c.Value != "" {
		return a.fromSession(ctx, r, c.Value)
	}
	return nil, nil
}

func (a *authenticator) fromToken(ctx context.Context, r *http.Request, plain string) (*principal, error) {
	if auth.TokenKind(plain) != auth.KindPersonal {
		return nil, unauthorized()
	}
	g, err := a.grant(ctx, auth.HashToken(plain))
	if err != nil {
		return nil, err
	}
	tok := g.tok
	if tok.Revoked() || tok.Expired(time.Now()) || g.user.DisabledAt != nil {
		return nil, unauthorized()
	}
	t, onPartner := tenancy.FromContext(ctx)
	if !onPartner || t.ID != tok.TenantID {
		a.denied(ctx, r, tok.UserID, "token", strconv.FormatInt(tok.ID, 10), tok.TenantID)
		return nil, forbidden("credential not valid for this host")
	}
	if g.role == "" {
		a.denied(ctx, r, tok.UserID, "membership", "", t.ID)
		return nil, forbidden("not a member of this partner")
	}
	p := &principal{User: g.user, Role: g.role, Via: "token", TokenID: tok.ID, TenantID: &tok.TenantID}
	if a.grants.markTouched(g, time.Now()) {
		// Recording the use is a write and a commit; the request does not
		// wait for it. It happens at most once a minute per token.
		log := logger(ctx, a.s.log)
		go func(ctx context.Context) {
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if err := a.s.store.TouchToken(ctx, tok.ID); err != nil {
				log.WarnContext(ctx, "Token use not recorded", slog.Any("error", err))
			}
		}(context.WithoutCancel(ctx))
	}
	return p, nil
}

// grant returns what a token hash proves, from the cache or the database.
// An unknown token is 401.
func (a *authenticator) grant(ctx context.Context, hash []byte) (*tokenGrant, error) {
	now := time.Now()
	if g, ok := a.grants.get(hash, now); ok {
		return g, nil
	}
	acc, err := a.s.store.TokenAccessByHash(ctx, hash)
	if errors.Is(err, postgres.ErrNotFound) {
		return nil, unauthorized()
	}
	if err != nil {
		return nil, err
	}
	g := &tokenGrant{tok: acc.Token, user: acc.User, role: acc.Role, loaded: now}
	a.grants.put(hash, g)
	return g, nil
}

// fromSession checks a session cookie. The session, its user and the
// user's role on the session's partner come from one statement; sessions
// are not cached, so a logout, a removed membership or a disabled account
// takes effect on the next request, on every server. The activity write
// happens at most once a minute per session.
func (a *authenticator) fromSession(ctx context.Context, r *http.Request, plain string) (*principal, error) {
	hash := auth.HashToken(plain)
	acc, err := a.s.store.SessionAccessByHash(ctx, hash)
	if errors.Is(err, postgres.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	sess := acc.Session
	t, onPartner := tenancy.FromContext(ctx)
	switch {
	case onPartner && (sess.TenantID == nil || *sess.TenantID != t.ID),
		!onPartner && sess.TenantID != nil:
		bound := int64(0)
		if sess.TenantID != nil {
			bound = *sess.TenantID
		}
		a.denied(ctx, r, sess.UserID, "session", "", bound)
		return nil, forbidden("credential not valid for this host")
	}
	if acc.User.DisabledAt != nil {
		return nil, unauthorized()
	}
	p := &principal{User: acc.User, Via: "session", Session: hash, TenantID: sess.TenantID}
	if onPartner {
		if acc.Role == "" {
			a.denied(ctx, r, sess.UserID, "membership", "", t.ID)
			return nil, forbidden("not a member of this partner")
		}
		p.Role = acc.Role
	}
	if sess.Idle(time.Now()) {
		if err := a.s.store.TouchSession(ctx, hash, a.s.cfg.SessionTTL, a.s.cfg.SessionMaxAge); err != nil {
			logger(ctx, a.s.log).WarnContext(ctx, "Session use not recorded", slog.Any("error", err))
		}
	}
	return p, nil
}

// denied writes a cross-tenant attempt to the audit log and the warn log.
func (a *authenticator) denied(ctx context.Context, r *http.Request, userID int64, via, credential string, boundTo int64) {
	host := tenancy.NormalizeHost(r.Host)
	detail := map[string]any{"via": via, "bound_tenant_id": boundTo, "path": r.URL.Path}
	if credential != "" {
		detail["token_id"] = credential
	}
	var tenantID *int64
	if t, ok := tenancy.FromContext(ctx); ok {
		tenantID = &t.ID
	}
	uid := userID
	err := a.s.store.Audit(ctx, postgres.AuditEvent{
		Kind: postgres.AuditCrossTenantDenied, TenantID: tenantID, UserID: &uid,
		Host: host, ClientAddr: a.s.clientAddr(r), Detail: detail,
	})
	log := logger(ctx, a.s.log)
	log.WarnContext(ctx, "Cross-tenant credential refused", slog.String("via", via), slog.Int64("user_id", userID),
		slog.Int64("bound_tenant_id", boundTo))
	if err != nil {
		log.WarnContext(ctx, "Audit write failed", slog.Any("error", err))
	}
}

// clientAddr is the client's address, without port: the peer's, or when
// the peer is a trusted proxy, the last address in X-Forwarded-For that is
// not one of the trusted proxies. Login limits and the audit trail key on
// it, so behind a proxy clients must not all share the proxy's address,
// and without one a client must not choose its own.
func (s *Server) clientAddr(r *http.Request) string {
	peer, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		peer = r.RemoteAddr
	}
	if !s.trustedProxy(peer) {
		return peer
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop := strings.TrimSpace(hops[i])
		if hop == "" {
			continue
		}
		addr, err := netip.ParseAddr(hop)
		if err != nil {
			// Only a client writes garbage here; name the proxy instead.
			return peer
		}
		if !s.trustedProxy(hop) {
			return addr.Unmap().String()
		}
	}
	return peer
}

// trustedProxy reports whether addr (an IP address) is one of the trusted
// proxies.
func (s *Server) trustedProxy(addr string) bool {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return false
	}
	a = a.Unmap().WithZone("")
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// requireMember returns the principal of a partner request, or 401.
func requireMember(r *http.Request) (*principal, error) {
	p := principalFrom(r.Context())
	if p == nil || p.Role == "" {
		return nil, unauthorized()
	}
	return p, nil
}

// requirePlatformAdmin returns the principal of a public-host request made
// by a platform administrator.
func requirePlatformAdmin(r *http.Request) (*principal, error) {
	p := principalFrom(r.Context())
	if p == nil {
		return nil, unauthorized()
	}
	if !p.User.IsPlatformAdmin {
		return nil, forbidden("platform administrators only")
	}
	return p, nil
}
