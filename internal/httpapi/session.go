package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/xatlabs/xat/internal/auth"
	"github.com/xatlabs/xat/internal/postgres"
	"github.com/xatlabs/xat/tenancy"
)

func (s *Server) registerCommon(mux *http.ServeMux) {
	s.handle(mux, "POST /api/v1/auth/login", s.login)
	s.handle(mux, "POST /api/v1/auth/logout", s.logout)
	s.handle(mux, "GET /api/v1/me", s.me)
	s.handle(mux, "GET /api/v1/openapi.yaml", s.openAPI)
}

var errBadLogin = &apiError{http.StatusUnauthorized, "invalid_credentials", "invalid email or password"}

// login checks a password and opens a session bound to the request's host:
// a partner host needs a membership, a public host a platform administrator.
// Every attempt is rate-limited per account and per client address and
// written to the audit log. A new session id is issued at every login, so a
// planted cookie is never promoted.
func (s *Server) login(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	ctx := r.Context()
	email := strings.ToLower(strings.TrimSpace(in.Email))
	addr := s.clientAddr(r)
	if email == "" || in.Password == "" {
		return badRequest("email and password are required")
	}
	allowed, retry, err := s.auth.allowLogin(ctx, addr, email)
	if err != nil {
		return err
	}
	if !allowed {
		w.Header().Set("Retry-After", strconv.Itoa(int(retry.Seconds())+1))
		return &apiError{http.StatusTooManyRequests, "rate_limited", "too many login attempts; retry later"}
	}

	t, onPartner := tenancy.FromContext(ctx)
	var tenantID *int64
	if onPartner {
		tenantID = &t.ID
	}
	fail := func(reason string, userID *int64) error {
		s.audit(r, postgres.AuditEvent{Kind: postgres.AuditLoginFailure, TenantID: tenantID, UserID: userID,
			Actor: email, Detail: map[string]any{"reason": reason}})
		logger(ctx, s.log).WarnContext(ctx, "Login refused", slog.String("reason", reason))
		return errBadLogin
	}

	u, hash, err := s.store.UserByEmail(ctx, email)
	if errors.Is(err, postgres.ErrNotFound) {
		s.hasher().Verify(s.dummyHash(), in.Password) // same cost as a real check
		return fail("unknown email", nil)
	}
	if err != nil {
		return err
	}
	ok, err := s.hasher().Verify(hash, in.Password)
	if err != nil {
		return err
	}
	if !ok {
		return fail("wrong password", &u.ID)
	}
	if u.DisabledAt != nil {
		return fail("user disabled", &u.ID)
	}
	role := ""
	if onPartner {
		m, err := s.store.Membership(ctx, u.ID, t.ID)
		if errors.Is(err, postgres.ErrNotFound) {
			return fail("not a member", &u.ID)
		}
		if err != nil {
			return err
		}
		role = m.Role
	} else if !u.IsPlatformAdmin {
		return fail("not a platform administrator", &u.ID)
	}

	if c, err := r.Cookie(sessionCookie); err == nil {
		s.store.DeleteSession(ctx, auth.HashToken(c.Value))
	}
	plain, idHash := auth.NewToken(auth.KindSession)
	now := time.Now()
	expires := now.Add(s.cfg.SessionTTL)
	if err := s.store.CreateSession(ctx, idHash, u.ID, tenantID, expires, addr); err != nil {
		return err
	}
	// A good password ends the account's run of failures.
	if err := s.auth.resetAccount(ctx, email); err != nil {
		logger(ctx, s.log).WarnContext(ctx, "Login limit not reset", slog.Any("error", err))
	}
	// The browser keeps the cookie as long as the session may live; the
	// server ends the session earlier when it goes unused (SessionTTL).
	http.SetCookie(w, &http.Cookie{
		Name:     sessionCookie,
		Value:    plain,
		Path:     cookiePath(ctx),
		Expires:  now.Add(s.cfg.SessionMaxAge),
		HttpOnly: true,
		Secure:   s.cfg.SecureCookies,
		SameSite: http.SameSiteStrictMode,
	})
	s.audit(r, postgres.AuditEvent{Kind: postgres.AuditLoginSuccess, TenantID: tenantID, UserID: &u.ID, Actor: email})
	writeJSON(w, http.StatusOK, meBody(u, t, role, &expires))
	return nil
}

// dummyHash returns the hash verified against when the email is unknown,
// so that a response's timing does not tell whether an account exists. It
// is made with the server's own hasher, whose cost real checks pay, once.
func (s *Server) dummyHash() string {
	s.decoyOnce.Do(func() {
		s.decoy, _ = s.hasher().Hash("not a real password, only a timing decoy")
	})
	return s.decoy
}

// cookiePath scopes the session cookie: the whole host, or in path-prefix
// mode the partner's own /t/<schema> paths, so that a browser does not
// send one partner's cookie to the others sharing the host.
func cookiePath(ctx context.Context) string {
	if base := tenancy.BasePath(ctx); base != "" {
		return base
	}
	return "/"
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) error {
	p := principalFrom(r.Context())
	if p == nil || p.Via != "session" {
		return unauthorized()
	}
	if err := s.store.DeleteSession(r.Context(), p.Session); err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{
		Name:     sessionCookie,
		Path:     cookiePath(r.Context()),
		MaxAge:   -1,
		HttpOnly: true,
		Secure:   s.cfg.SecureCookies,
		SameSite: http.SameSiteStrictMode,
	})
	s.audit(r, postgres.AuditEvent{Kind: postgres.AuditLogout, TenantID: p.TenantID, UserID: &p.User.ID})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) me(w http.ResponseWriter, r *http.Request) error {
	p := principalFrom(r.Context())
	if p == nil {
		return unauthorized()
	}
	t, _ := tenancy.FromContext(r.Context())
	writeJSON(w, http.StatusOK, meBody(p.User, t, p.Role, nil))
	return nil
}

type meResponse struct {
	User      *postgres.User  `json:"user"`
	Partner   *tenancy.Tenant `json:"partner,omitempty"`
	Role      string          `json:"role,omitempty"`
	ExpiresAt *time.Time      `json:"session_expires_at,omitempty"`
}

func meBody(u *postgres.User, t *tenancy.Tenant, role string, expires *time.Time) meResponse {
	return meResponse{User: u, Partner: t, Role: role, ExpiresAt: expires}
}

func (s *Server) hasher() *auth.Hasher {
	if s.cfg.Hasher != nil {
		return s.cfg.Hasher
	}
	return &auth.DefaultHasher
}

// audit writes an audit event with the request's host and client address.
// A failed write is logged, not returned: the action it records happened.
func (s *Server) audit(r *http.Request, ev postgres.AuditEvent) {
	ev.Host = tenancy.NormalizeHost(r.Host)
	ev.ClientAddr = s.clientAddr(r)
	if err := s.store.Audit(r.Context(), ev); err != nil {
		logger(r.Context(), s.log).WarnContext(r.Context(), "Audit write failed",
			slog.String("kind", ev.Kind), slog.Any("error", err))
	}
}
