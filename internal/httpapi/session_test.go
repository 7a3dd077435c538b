package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/xatlabs/xat/internal/auth"
	"github.com/xatlabs/xat/internal/httpapi"
	"github.com/xatlabs/xat/internal/postgres"
	"github.com/xatlabs/xat/tenancy/tenancytest"
)

// TestSessionFixation plants session cookies in a browser before its user
// logs in: a value of the attacker's choosing, and the attacker's own live
// session. Neither is what the server issues, and neither authenticates
// afterwards.
func TestSessionFixation(t *testing.T) {
	t.Parallel()
	f := setup(t)

	planted := map[string]string{
		"chosen value": "xat_ses_" + randomHex(32),
		"garbage":      "not even a token",
		"live session": f.a.member.session.Value,
	}
	for name, value := range planted {
		t.Run(name, func(t *testing.T) {
			victim := f.client(t, f.a.host).WithCookie(sessionCookie(value))
			res := victim.Post("/api/v1/auth/login", loginBody(f.a.admin.Email, password))
			require.Equal(t, http.StatusOK, res.Status, "%s", res.Body)
			issued := res.Cookie("xat_session")
			require.NotNil(t, issued)
			require.NotEqual(t, value, issued.Value)
			require.True(t, issued.HttpOnly)
			require.Equal(t, http.SameSiteStrictMode, issued.SameSite)
			// The cookie lives as long as the session may: its maximum age.
			require.WithinDuration(t, time.Now().Add(7*24*time.Hour), issued.Expires, time.Minute)

			got := requireMe(t, f.client(t, f.a.host).WithCookie(sessionCookie(issued.Value)))
			require.Equal(t, f.a.admin.ID, got.User.ID)
			res = f.client(t, f.a.host).WithCookie(sessionCookie(value)).Get("/api/v1/me")
			requireError(t, res, http.StatusUnauthorized, "unauthorized")
		})
	}
}

func TestSessionOnAnotherHost(t *testing.T) {
	t.Parallel()
	f := setup(t)

	for _, host := range []string{f.b.host, publicHost} {
		res := f.cookie(t, host, f.a.admin).Get("/api/v1/me")
		requireError(t, res, http.StatusForbidden, "forbidden")
	}
	f.requireDenial(t, f.b.tenant.ID, f.a.admin.ID, f.b.host, defaultAddr, "session")

	// The platform administrator's public session is no good on a partner.
	res := f.cookie(t, f.a.host, f.admin).Get("/api/v1/collectors")
	requireError(t, res, http.StatusForbidden, "forbidden")
	f.requireDenial(t, f.a.tenant.ID, f.admin.ID, f.a.host, defaultAddr, "session")

	// Nor is a partner token on the public host.
	res = f.bearer(t, publicHost, f.a.admin).Get("/api/v1/partners")
	requireError(t, res, http.StatusForbidden, "forbidden")
}

func TestLogout(t *testing.T) {
	t.Parallel()
	f := setup(t)
	c := f.cookie(t, f.a.host, f.a.member)

	res := c.Post("/api/v1/auth/logout", nil)
	require.Equal(t, http.StatusNoContent, res.Status, "%s", res.Body)
	cleared := res.Cookie("xat_session")
	require.NotNil(t, cleared)
	require.Empty(t, cleared.Value)
	require.Negative(t, cleared.MaxAge)

	// The browser may keep the old value; the server no longer knows it.
	requireError(t, c.Get("/api/v1/me"), http.StatusUnauthorized, "unauthorized")
	requireError(t, c.Post("/api/v1/auth/logout", nil), http.StatusUnauthorized, "unauthorized")

	// Logging out ends that session only.
	require.Equal(t, http.StatusOK, f.bearer(t, f.a.host, f.a.member).Get("/api/v1/me").Status)
	require.Equal(t, http.StatusOK, f.cookie(t, f.a.host, f.a.admin).Get("/api/v1/me").Status)

	// A token has no session to end.
	res = f.bearer(t, f.a.host, f.a.admin).Post("/api/v1/auth/logout", nil)
	requireError(t, res, http.StatusUnauthorized, "unauthorized")
}

func TestExpiredSession(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()

	// Issued already expired.
	plain, hash := auth.NewToken(auth.KindSession)
	past := time.Now().Add(-time.Minute)
	err := f.store.CreateSession(ctx, hash, f.a.admin.ID, &f.a.tenant.ID, past, defaultAddr)
	require.NoError(t, err)
	res := f.client(t, f.a.host).WithCookie(sessionCookie(plain)).Get("/api/v1/me")
	requireError(t, res, http.StatusUnauthorized, "unauthorized")

	// A live session whose time runs out.
	c := f.cookie(t, f.a.host, f.a.member)
	require.Equal(t, http.StatusOK, c.Get("/api/v1/me").Status)
	_, err = tenancytest.AdminConn(t, f.db).Exec(ctx,
		"UPDATE public.sessions SET expires_at = now() - interval '1 second' WHERE id_hash = $1",
		auth.HashToken(f.a.member.session.Value))
	require.NoError(t, err)
	requireError(t, c.Get("/api/v1/me"), http.StatusUnauthorized, "unauthorized")
	requireError(t, c.Get("/api/v1/collectors"), http.StatusUnauthorized, "unauthorized")
}

func TestBadTokens(t *testing.T) {
	t.Parallel()
	f := setup(t)
	sessionID, _ := auth.NewToken(auth.KindSession)
	unknown, _ := auth.NewToken(auth.KindPersonal)

	for name, header := range map[string]string{
		"garbage":              "Bearer garbage",
		"unknown token":        "Bearer " + unknown,
		"wrong prefix":         "Bearer xyz_pat_" + f.a.admin.token[len("xat_pat_"):],
		"session id as token":  "Bearer " + f.a.admin.session.Value,
		"other kind":           "Bearer " + sessionID,
		"truncated":            "Bearer " + f.a.admin.token[:len(f.a.admin.token)-1],
		"empty bearer":         "Bearer ",
		"basic scheme":         "Basic " + f.a.admin.token,
		"token without scheme": f.a.admin.token,
	} {
		res := f.client(t, f.a.host).WithHeader("Authorization", header).Get("/api/v1/me")
		requireError(t, res, http.StatusUnauthorized, "unauthorized")
		require.NotContains(t, string(res.Body), f.a.admin.Email, name)
	}

	// A personal token is no session id either.
	res := f.client(t, f.a.host).WithCookie(sessionCookie(f.a.admin.token)).Get("/api/v1/me")
	requireError(t, res, http.StatusUnauthorized, "unauthorized")
}

func TestRevokedToken(t *testing.T) {
	t.Parallel()
	f := setup(t)
	u := f.a.member

	// Another user cannot revoke it; its owner can.
	res := f.cookie(t, f.a.host, f.a.admin).Delete("/api/v1/tokens/" + itoa(u.tokenID))
	requireError(t, res, http.StatusNotFound, "not_found")
	require.Equal(t, http.StatusOK, f.bearer(t, f.a.host, u).Get("/api/v1/me").Status)

	res = f.cookie(t, f.a.host, u).Delete("/api/v1/tokens/" + itoa(u.tokenID))
	require.Equal(t, http.StatusNoContent, res.Status, "%s", res.Body)
	for _, path := range []string{"/api/v1/me", "/api/v1/collectors"} {
		requireError(t, f.bearer(t, f.a.host, u).Get(path), http.StatusUnauthorized, "unauthorized")
	}

	tokens := decode[tokenList](t, f.cookie(t, f.a.host, u).Get("/api/v1/tokens"), http.StatusOK)
	require.Len(t, tokens.Items, 1)
	require.NotNil(t, tokens.Items[0].RevokedAt)
}

func TestExpiringToken(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.listen(t)

	expires := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	body := obj{"name": "brief", "expires_at": expires}
	res := f.cookie(t, f.a.host, f.a.member).Post("/api/v1/tokens", body)
	tok := decode[struct {
		ID    int64  `json:"id"`
		Token string `json:"token"`
	}](t, res, http.StatusCreated)
	c := f.client(t, f.a.host).WithBearer(tok.Token)
	require.Equal(t, http.StatusOK, c.Get("/api/v1/me").Status)

	_, err := tenancytest.AdminConn(t, f.db).Exec(context.Background(),
		"UPDATE public.api_tokens SET expires_at = now() - interval '1 second' WHERE id = $1", tok.ID)
	require.NoError(t, err)
	// The change was made outside this server: its cached grant goes when
	// the database's notification arrives.
	require.Eventually(t, func() bool { return c.Get("/api/v1/me").Status == http.StatusUnauthorized },
		5*time.Second, 10*time.Millisecond)
	requireError(t, c.Get("/api/v1/me"), http.StatusUnauthorized, "unauthorized")
}

func TestRemovedMember(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.listen(t)
	u := f.a.member
	require.NoError(t, f.store.RemoveMember(context.Background(), f.a.tenant.ID, u.ID))
	require.Eventually(t, func() bool {
		return f.bearer(t, f.a.host, u).Get("/api/v1/me").Status == http.StatusForbidden
	}, 5*time.Second, 10*time.Millisecond)

	for _, c := range []client{f.bearer(t, f.a.host, u), f.cookie(t, f.a.host, u)} {
		requireError(t, c.Get("/api/v1/collectors"), http.StatusForbidden, "forbidden")
		requireError(t, c.Get("/api/v1/me"), http.StatusForbidden, "forbidden")
	}
	res := f.client(t, f.a.host).Post("/api/v1/auth/login", loginBody(u.Email, password))
	requireError(t, res, http.StatusUnauthorized, "invalid_credentials")
}

// TestDisabledAccount: disabling an account ends its session at the next
// request and its token once the change is announced.
func TestDisabledAccount(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.listen(t)
	u := f.a.member
	session, token := f.cookie(t, f.a.host, u), f.bearer(t, f.a.host, u)
	require.Equal(t, http.StatusOK, session.Get("/api/v1/me").Status)
	require.Equal(t, http.StatusOK, token.Get("/api/v1/me").Status)

	_, err := tenancytest.AdminConn(t, f.db).Exec(context.Background(),
		"UPDATE public.users SET disabled_at = now() WHERE id = $1", u.ID)
	require.NoError(t, err)
	requireError(t, session.Get("/api/v1/collectors"), http.StatusUnauthorized, "unauthorized")
	require.Eventually(t, func() bool { return token.Get("/api/v1/me").Status == http.StatusUnauthorized },
		5*time.Second, 10*time.Millisecond)
}

func TestLoginFailures(t *testing.T) {
	t.Parallel()
	f := setup(t)
	c := f.client(t, f.a.host)

	wrong := c.Post("/api/v1/auth/login", loginBody(f.a.admin.Email, "not the password"))
	requireError(t, wrong, http.StatusUnauthorized, "invalid_credentials")
	unknown := c.Post("/api/v1/auth/login", loginBody(uniqueEmail(), password))
	require.Equal(t, string(wrong.Body), string(unknown.Body))
	require.Nil(t, wrong.Cookie("xat_session"))

	// Members of B are not members of A, and only platform
	// administrators log in on the public host.
	notMember := c.Post("/api/v1/auth/login", loginBody(f.b.admin.Email, password))
	require.Equal(t, string(wrong.Body), string(notMember.Body))
	res := f.client(t, publicHost).Post("/api/v1/auth/login", loginBody(f.a.admin.Email, password))
	require.Equal(t, string(wrong.Body), string(res.Body))
	res = c.Post("/api/v1/auth/login", loginBody(f.admin.Email, password))
	require.Equal(t, string(wrong.Body), string(res.Body))

	// Emails are matched as accounts store them.
	res = c.Post("/api/v1/auth/login", loginBody("  "+f.a.admin.Email+" ", password))
	require.Equal(t, http.StatusOK, res.Status, "%s", res.Body)

	for name, body := range map[string]any{
		"no password": obj{"email": f.a.admin.Email},
		"no email":    obj{"password": password},
		"empty":       obj{},
	} {
		msg := requireError(t, c.Post("/api/v1/auth/login", body), http.StatusBadRequest, "bad_request")
		require.Contains(t, msg, "required", name)
	}

	events, _, err := f.store.AuditEvents(context.Background(), postgres.AuditFilter{
		TenantID: &f.a.tenant.ID,
		Kind:     postgres.AuditLoginFailure,
	}, postgres.Page{})
	require.NoError(t, err)
	require.Len(t, events, 4)
}

func TestLoginRateLimit(t *testing.T) {
	t.Parallel()
	f := setup(t)
	c := f.client(t, f.a.host)

	for range 10 {
		res := c.Post("/api/v1/auth/login", loginBody(f.a.member.Email, "not the password"))
		requireError(t, res, http.StatusUnauthorized, "invalid_credentials")
	}
	for _, pw := range []string{"not the password", password} {
		res := c.Post("/api/v1/auth/login", loginBody(f.a.member.Email, pw))
		requireError(t, res, http.StatusTooManyRequests, "rate_limited")
		secs, err := strconv.Atoi(res.Header.Get("Retry-After"))
		require.NoError(t, err)
		require.Positive(t, secs)
	}

	// The limit is the account's: others still log in from the same
	// address, and a success gives an account its allowance back.
	for range 12 {
		res := c.Post("/api/v1/auth/login", loginBody(f.a.admin.Email, password))
		require.Equal(t, http.StatusOK, res.Status, "%s", res.Body)
	}
}

// TestClientAddress checks which client address login limits and the
// audit trail see: the peer's, or behind a trusted proxy the one the proxy
// forwards.
// TestLoginLimitsShared: two servers over one database, as two instances
// behind a load balancer, count an account's and an address's login
// attempts together.
func TestLoginLimitsShared(t *testing.T) {
	t.Parallel()
	f := setup(t)
	other, _ := f.server(t, f.db, httpapi.Config{})
	instances := []http.Handler{f.handler, other}
	u := f.a.member

	for i := range 10 {
		res := newClient(t, instances[i%2], f.a.host).Post("/api/v1/auth/login", loginBody(u.Email, "not the password"))
		requireError(t, res, http.StatusUnauthorized, "invalid_credentials")
	}
	for _, h := range instances {
		res := newClient(t, h, f.a.host).Post("/api/v1/auth/login", loginBody(u.Email, password))
		requireError(t, res, http.StatusTooManyRequests, "rate_limited")
	}

	// By address: three attempts from one address, on any accounts and
	// any instance; another address goes on.
	limited := httpapi.Config{LoginLimits: httpapi.LoginLimits{PerAddr: 3}}
	one, _ := f.server(t, f.db, limited)
	two, _ := f.server(t, f.db, limited)
	addr := "[2001:db8::" + randomHex(2) + ":" + randomHex(2) + "]:40000"
	for i, h := range []http.Handler{one, two, one} {
		res := newClient(t, h, f.b.host).WithRemoteAddr(addr).
			Post("/api/v1/auth/login", loginBody(fmt.Sprintf("nobody-%d-%s@example.test", i, randomHex(3)), password))
		requireError(t, res, http.StatusUnauthorized, "invalid_credentials")
	}
	res := newClient(t, two, f.b.host).WithRemoteAddr(addr).Post("/api/v1/auth/login", loginBody(f.b.member.Email, password))
	requireError(t, res, http.StatusTooManyRequests, "rate_limited")
	res = newClient(t, two, f.b.host).Post("/api/v1/auth/login", loginBody(f.b.member.Email, password))
	require.Equal(t, http.StatusOK, res.Status, "%s", res.Body)
}

func TestClientAddress(t *testing.T) {
	t.Parallel()
	f := setup(t)
	cfg := httpapi.Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}
	proxied, _ := f.server(t, f.db, cfg)

	for _, tc := range []struct {
		name    string
		handler http.Handler
		remote  string
		xff     string
		want    string
	}{
		{"no proxy", f.handler, "198.51.100.7:1000", "203.0.113.5", "198.51.100.7"},
		{"trusted proxy", proxied, "192.0.2.10:1000", "203.0.113.5", "203.0.113.5"},
		{"proxy chain", proxied, "192.0.2.10:1000", "203.0.113.6, 192.0.2.11", "203.0.113.6"},
		{"spoofed hop", proxied, "192.0.2.10:1000", "10.9.9.9, 203.0.113.7", "203.0.113.7"},
		{"untrusted peer", proxied, "198.51.100.8:1000", "203.0.113.8", "198.51.100.8"},
	} {
		email := uniqueEmail()
		c := newClient(t, tc.handler, f.a.host).
			WithRemoteAddr(tc.remote).
			WithHeader("X-Forwarded-For", tc.xff)
		c.Post("/api/v1/auth/login", loginBody(email, password))

		events, _, err := f.store.AuditEvents(context.Background(), postgres.AuditFilter{
			TenantID: &f.a.tenant.ID,
			Kind:     postgres.AuditLoginFailure,
		}, postgres.Page{Limit: postgres.MaxLimit})
		require.NoError(t, err)
		var addr string
		for _, e := range events {
			if e.Actor == email {
				addr = e.ClientAddr
			}
		}
		require.Equal(t, tc.want, addr, tc.name)
	}
}

// TestCrossOriginWrites refuses state-changing browser requests from
// another origin, such as a page on another partner's host posting with
// the user's session cookie.
func TestCrossOriginWrites(t *testing.T) {
	t.Parallel()
	f := setup(t)
	c := f.cookie(t, f.a.host, f.a.admin)
	name := f.a.tenant.Schema + "-x"
	body := obj{"site_name": name, "machine_name": name, "platform_id": f.platform}

	for _, h := range [][2]string{
		{"Sec-Fetch-Site", "same-site"},
		{"Sec-Fetch-Site", "cross-site"},
		{"Origin", "https://" + f.b.host},
	} {
		res := c.WithHeader(h[0], h[1]).Post("/api/v1/collectors", body)
		requireError(t, res, http.StatusForbidden, "cross_origin")
	}
	res := c.WithHeader("Sec-Fetch-Site", "same-origin").Post("/api/v1/collectors", body)
	require.Equal(t, http.StatusCreated, res.Status, "%s", res.Body)
	res = c.WithHeader("Sec-Fetch-Site", "cross-site").Get("/api/v1/collectors")
	require.Equal(t, http.StatusOK, res.Status, "reads stay allowed")

	require.Len(t, collectors(t, f.bearer(t, f.a.host, f.a.admin)), 5)
}

// listen runs the fixture's resolver listener, as xat serve does, so that
// changes made outside the server reach its caches.
func (f *fixture) listen(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.resolver.Listen(ctx, tenancytest.ConnStringFor(t, f.db))
	}()
	t.Cleanup(func() { cancel(); <-done })
	require.Eventually(t, f.resolver.Listening, 5*time.Second, 5*time.Millisecond)
}
