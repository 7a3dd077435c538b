package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/xatlabs/xat/internal/httpapi"
	"github.com/xatlabs/xat/tenancy"
)

func TestHostSpellings(t *testing.T) {
	t.Parallel()
	f := setup(t)

	for _, host := range []string{
		f.a.host,
		strings.ToUpper(f.a.host),
		f.a.host + ".",
		f.a.host + ":8443",
		strings.ToUpper(f.a.host) + ".:443",
	} {
		for _, c := range []client{f.bearer(t, host, f.a.admin), f.cookie(t, host, f.a.admin)} {
			got := requireMe(t, c)
			require.Equal(t, f.a.tenant.ID, got.Partner.ID, host)
		}
	}
}

func TestUnknownAndMalformedHosts(t *testing.T) {
	t.Parallel()
	f := setup(t)

	unknown := "nobody-" + randomHex(4) + ".test"
	for _, host := range []string{unknown, "sub." + f.a.host, "x" + f.a.host} {
		res := f.bearer(t, host, f.a.admin).Get("/api/v1/collectors")
		requireError(t, res, http.StatusNotFound, tenancy.CodeUnknownHost)
		require.Contains(t, res.Header.Get("Content-Type"), "application/json")
	}
	for _, host := range []string{"bad host", "a..b", "10.0.0.1", ""} {
		res := f.bearer(t, host, f.a.admin).Get("/api/v1/collectors")
		requireError(t, res, http.StatusBadRequest, tenancy.CodeBadHost)
	}
}

// rawGet sends GET target to a real server running h, as raw bytes with
// one Host header per host and the bearer token, for requests no
// http.Client would send.
func rawGet(t *testing.T, h http.Handler, target, token string, hosts ...string) *http.Response {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))

	var req strings.Builder
	fmt.Fprintf(&req, "GET %s HTTP/1.1\r\n", target)
	for _, host := range hosts {
		fmt.Fprintf(&req, "Host: %s\r\n", host)
	}
	fmt.Fprintf(&req, "Authorization: Bearer %s\r\nConnection: close\r\n\r\n", token)
	_, err = conn.Write([]byte(req.String()))
	require.NoError(t, err)

	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	t.Cleanup(func() { res.Body.Close() })
	return res
}

func TestTwoHostHeaders(t *testing.T) {
	t.Parallel()
	f := setup(t)

	res := rawGet(t, f.handler, "/api/v1/collectors", f.a.admin.token, f.b.host, f.a.host)
	require.Equal(t, http.StatusBadRequest, res.StatusCode)
}

// TestAbsoluteFormURI sends a request line naming one partner's host with
// a Host header naming another: the request line wins, as HTTP requires,
// and the credential is checked against that partner.
func TestAbsoluteFormURI(t *testing.T) {
	t.Parallel()
	f := setup(t)
	target := "http://" + f.b.host + "/api/v1/collectors"

	res := rawGet(t, f.handler, target, f.a.admin.token, f.a.host)
	require.Equal(t, http.StatusForbidden, res.StatusCode)
	f.requireDenial(t, f.b.tenant.ID, f.a.admin.ID, f.b.host, "127.0.0.1", "token")

	res = rawGet(t, f.handler, target, f.b.admin.token, f.a.host)
	require.Equal(t, http.StatusOK, res.StatusCode)
	var list collectorList
	require.NoError(t, json.NewDecoder(res.Body).Decode(&list))
	want := slices.Concat(f.b.admin.collectors, f.b.member.collectors)
	require.Equal(t, ids(want), ids(list.Items))
}

func TestForwardedHost(t *testing.T) {
	t.Parallel()
	f := setup(t)

	t.Run("ignored without trusted proxies", func(t *testing.T) {
		c := f.client(t, f.a.host).WithHeader("X-Forwarded-Host", f.b.host)
		res := c.WithBearer(f.b.admin.token).Get("/api/v1/collectors")
		requireError(t, res, http.StatusForbidden, "forbidden")
		got := requireMe(t, c.WithBearer(f.a.admin.token))
		require.Equal(t, f.a.tenant.ID, got.Partner.ID)
	})

	t.Run("honoured from a trusted proxy", func(t *testing.T) {
		cfg := httpapi.Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}
		h, _ := f.server(t, f.db, cfg)
		c := newClient(t, h, f.a.host).WithHeader("X-Forwarded-Host", f.b.host)

		got := requireMe(t, c.WithBearer(f.b.admin.token))
		require.Equal(t, f.b.tenant.ID, got.Partner.ID)
		res := c.WithBearer(f.a.admin.token).Get("/api/v1/collectors")
		requireError(t, res, http.StatusForbidden, "forbidden")

		// The same header from a peer that is not a trusted proxy.
		untrusted := c.WithRemoteAddr("198.51.100.7:40000")
		res = untrusted.WithBearer(f.b.admin.token).Get("/api/v1/collectors")
		requireError(t, res, http.StatusForbidden, "forbidden")
		got = requireMe(t, untrusted.WithBearer(f.a.admin.token))
		require.Equal(t, f.a.tenant.ID, got.Partner.ID)
	})
}

func TestInactivePartner(t *testing.T) {
	t.Parallel()
	f := setup(t)

	_, err := f.db.SetActive(context.Background(), f.a.tenant.Schema, false)
	require.NoError(t, err)
	f.resolver.Invalidate()

	for _, c := range []client{
		f.bearer(t, f.a.host, f.a.admin),
		f.cookie(t, f.a.host, f.a.member),
		f.client(t, f.a.host),
	} {
		res := c.Get("/api/v1/collectors")
		require.Equal(t, http.StatusForbidden, res.Status)
		require.JSONEq(t, inactiveBody, string(res.Body))
	}
	res := f.client(t, f.a.host).Post("/api/v1/auth/login",
		loginBody(f.a.admin.Email, password))
	require.Equal(t, http.StatusForbidden, res.Status)

	// Its data is kept: reactivated, the partner is served again.
	_, err = f.db.SetActive(context.Background(), f.a.tenant.Schema, true)
	require.NoError(t, err)
	f.resolver.Invalidate()
	require.Len(t, collectors(t, f.bearer(t, f.a.host, f.a.admin)), 4)
}

// TestRoutesByHost checks that a public host serves the platform API and
// no partner routes, and a partner host the reverse, with JSON errors.
func TestRoutesByHost(t *testing.T) {
	t.Parallel()
	f := setup(t)

	admin := f.cookie(t, publicHost, f.admin)
	require.Equal(t, http.StatusOK, admin.Get("/api/v1/partners").Status)
	for _, path := range []string{"/api/v1/collectors", "/api/v1/collectors/1", "/api/v1/tokens"} {
		requireError(t, admin.Get(path), http.StatusNotFound, "not_found")
	}

	for _, c := range []client{f.bearer(t, f.a.host, f.a.admin), f.cookie(t, f.a.host, f.a.admin)} {
		for _, path := range []string{
			"/api/v1/partners", "/api/v1/users", "/api/v1/audit-events", "/api/v1/nothing", "/",
		} {
			requireError(t, c.Get(path), http.StatusNotFound, "not_found")
		}
		requireError(t, c.Post("/api/v1/partners", obj{"name": "x"}), http.StatusNotFound, "not_found")

		res := c.Do(http.MethodPut, "/api/v1/collectors", nil)
		requireError(t, res, http.StatusMethodNotAllowed, "method_not_allowed")
		require.Contains(t, res.Header.Get("Allow"), http.MethodGet)
	}
}

func TestPathPrefixMode(t *testing.T) {
	t.Parallel()
	f := setup(t)
	h, _ := f.server(t, f.db, httpapi.Config{PathPrefix: true})
	c := newClient(t, h, publicHost)
	base := "/t/" + f.a.tenant.Schema

	res := c.Post(base+"/api/v1/auth/login", loginBody(f.a.admin.Email, password))
	require.Equal(t, http.StatusOK, res.Status, "%s", res.Body)
	cookie := res.Cookie("xat_session")
	require.NotNil(t, cookie)
	require.Equal(t, base, cookie.Path, "a partner's cookie must stay under its own prefix")

	session := c.WithCookie(sessionCookie(cookie.Value))
	got := decode[me](t, session.Get(base+"/api/v1/me"), http.StatusOK)
	require.Equal(t, f.a.tenant.ID, got.Partner.ID)

	res = session.Get("/t/" + f.b.tenant.Schema + "/api/v1/collectors")
	requireError(t, res, http.StatusForbidden, "forbidden")
	f.requireDenial(t, f.b.tenant.ID, f.a.admin.ID, publicHost, defaultAddr, "session")
}
