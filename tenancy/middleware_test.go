package tenancy_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/xatlabs/xat/tenancy"
	"github.com/xatlabs/xat/tenancy/tenancytest"
)

const publicHost = "platform.test"

// seen is what the handler behind the middleware saw.
type seen struct {
	Tenant   string `json:"tenant"`
	Public   bool   `json:"public"`
	Host     string `json:"host"`
	URLHost  string `json:"url_host"`
	Path     string `json:"path"`
	RawPath  string `json:"raw_path"`
	Query    string `json:"query"`
	BasePath string `json:"base_path"`
}

// echo answers with what it saw of the request and its context.
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	s := seen{
		Public:   tenancy.IsPublic(r.Context()),
		Host:     r.Host,
		URLHost:  r.URL.Host,
		Path:     r.URL.Path,
		RawPath:  r.URL.RawPath,
		Query:    r.URL.RawQuery,
		BasePath: tenancy.BasePath(r.Context()),
	}
	if tn, ok := tenancy.FromContext(r.Context()); ok {
		s.Tenant = tn.Schema
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(s)
})

type middlewareFixture struct {
	db           *tenancy.DB
	a, b         *tenancy.Tenant
	aHost, bHost string
	handler      http.Handler
}

// setupMiddleware returns two tenants and echo behind a fresh resolver's
// middleware.
func setupMiddleware(t *testing.T, opts tenancy.MiddlewareOptions) *middlewareFixture {
	t.Helper()
	db := openDB(t, tenancy.GuardRole)
	f := &middlewareFixture{db: db}
	f.a, f.b = tenancytest.NewTenant(t, db), tenancytest.NewTenant(t, db)
	f.aHost, f.bHost = domainOf(t, db, f.a), domainOf(t, db, f.b)
	rs := tenancy.NewResolver(db, tenancy.ResolverConfig{PublicHosts: []string{publicHost}})
	f.handler = rs.Middleware(opts)(echo)
	return f
}

// get serves a GET with exactly this Host, which a client could not always
// send, and returns the response.
func get(h http.Handler, host, target string) *tenancytest.Response {
	req := httptest.NewRequest(http.MethodGet, target, nil)
	req.Host = host
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return &tenancytest.Response{Status: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
}

func decodeSeen(t *testing.T, resp *tenancytest.Response) seen {
	t.Helper()
	require.Equal(t, http.StatusOK, resp.Status, string(resp.Body))
	var s seen
	resp.JSON(t, &s)
	return s
}

// requireRefused checks a refusal's status and JSON body.
func requireRefused(t *testing.T, resp *tenancytest.Response, status int, code string) {
	t.Helper()
	require.Equal(t, status, resp.Status, string(resp.Body))
	require.Equal(t, "application/json; charset=utf-8", resp.Header.Get("Content-Type"))
	var e struct {
		Error struct{ Code, Message string }
	}
	resp.JSON(t, &e)
	require.Equal(t, code, e.Error.Code)
	require.NotEmpty(t, e.Error.Message)
}

func TestMiddlewareRoutes(t *testing.T) {
	t.Parallel()
	f := setupMiddleware(t, tenancy.MiddlewareOptions{})

	client := func(host string) *tenancytest.Client { return tenancytest.NewClient(t, f.handler, host) }

	s := decodeSeen(t, client(f.aHost).Do(http.MethodGet, "/api/v1/me?x=1", nil))
	require.Equal(t, seen{Tenant: f.a.Schema, Host: f.aHost, Path: "/api/v1/me", Query: "x=1"}, s)

	s = decodeSeen(t, client(strings.ToUpper(f.bHost)+".:8443").Do(http.MethodGet, "/", nil))
	require.Equal(t, f.b.Schema, s.Tenant)

	s = decodeSeen(t, client(publicHost+":8080").Do(http.MethodGet, "/healthz", nil))
	require.True(t, s.Public)
	require.Empty(t, s.Tenant)
}

func TestMiddlewareRefusals(t *testing.T) {
	t.Parallel()
	f := setupMiddleware(t, tenancy.MiddlewareOptions{})
	inactive := tenancytest.NewTenant(t, f.db)
	_, err := f.db.SetActive(t.Context(), inactive.Schema, false)
	require.NoError(t, err)

	tests := []struct {
		host   string
		status int
		code   string
	}{
		{randomName("nobody-") + ".test", http.StatusNotFound, tenancy.CodeUnknownHost},
		{"sub." + f.aHost, http.StatusNotFound, tenancy.CodeUnknownHost},
		{"bad host", http.StatusBadRequest, tenancy.CodeBadHost},
		{"a..b", http.StatusBadRequest, tenancy.CodeBadHost},
		{"", http.StatusBadRequest, tenancy.CodeBadHost},
		{strings.Repeat("a", 300) + ".test", http.StatusBadRequest, tenancy.CodeBadHost},
		{"10.0.0.1:8080", http.StatusBadRequest, tenancy.CodeBadHost},
		{domainOf(t, f.db, inactive), http.StatusForbidden, tenancy.CodeTenantInactive},
	}
	for _, tt := range tests {
		requireRefused(t, get(f.handler, tt.host, "/api/v1/me"), tt.status, tt.code)
	}
}

func TestMiddlewareWriteError(t *testing.T) {
	t.Parallel()
	var got []string
	f := setupMiddleware(t, tenancy.MiddlewareOptions{
		WriteError: func(w http.ResponseWriter, r *http.Request, status int, code, message string) {
			got = append(got, fmt.Sprintf("%d %s", status, code))
			http.Error(w, "partner says no", status)
		},
	})
	resp := get(f.handler, "unknown-"+randomName("")+".test", "/")
	require.Equal(t, http.StatusNotFound, resp.Status)
	require.Equal(t, "partner says no\n", string(resp.Body))
	require.Equal(t, []string{"404 unknown_host"}, got)
}

func TestMiddlewareForwardedHost(t *testing.T) {
	t.Parallel()
	f := setupMiddleware(t, tenancy.MiddlewareOptions{
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
	})
	client := tenancytest.NewClient(t, f.handler, f.aHost)

	// From an untrusted peer the header is ignored.
	s := decodeSeen(t, client.WithHeader("X-Forwarded-Host", f.bHost).Do(http.MethodGet, "/", nil))
	require.Equal(t, f.a.Schema, s.Tenant)
	require.Equal(t, f.aHost, s.Host)

	// From a trusted peer its last value names the host, which the next
	// handler then sees as the request's host.
	proxy := client.WithRemoteAddr("10.1.2.3:40000")
	forwarded := proxy.WithHeader("X-Forwarded-Host", f.aHost+", "+f.bHost)
	s = decodeSeen(t, forwarded.Do(http.MethodGet, "/", nil))
	require.Equal(t, f.b.Schema, s.Tenant)
	require.Equal(t, f.bHost, s.Host)

	s = decodeSeen(t, proxy.Do(http.MethodGet, "/", nil))
	require.Equal(t, f.a.Schema, s.Tenant, "without the header the Host header counts")

	mapped := client.WithRemoteAddr("[::ffff:10.1.2.3]:40000").
		WithHeader("X-Forwarded-Host", f.bHost)
	require.Equal(t, f.b.Schema, decodeSeen(t, mapped.Do(http.MethodGet, "/", nil)).Tenant)

	// Several header lines: the last line's last value.
	req := httptest.NewRequest(http.MethodGet, "http://proxy.internal/", nil)
	req.RemoteAddr = "10.9.9.9:1"
	req.Header.Add("X-Forwarded-Host", f.aHost)
	req.Header.Add("X-Forwarded-Host", "evil.test, "+f.bHost)
	rec := httptest.NewRecorder()
	f.handler.ServeHTTP(rec, req)
	var got seen
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got), rec.Body.String())
	require.Equal(t, f.b.Schema, got.Tenant)

	// A trusted but empty value is a malformed host, not a fallback.
	resp := proxy.WithHeader("X-Forwarded-Host", f.bHost+", ").Do(http.MethodGet, "/", nil)
	requireRefused(t, resp, http.StatusBadRequest, tenancy.CodeBadHost)
}

// rawRequest writes raw to a connection to srv and reads the response.
func rawRequest(t *testing.T, srv *httptest.Server, raw string) (int, []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	_, err = io.WriteString(conn, raw)
	require.NoError(t, err)

	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, body
}

func TestMiddlewareTwoHostHeaders(t *testing.T) {
	t.Parallel()
	f := setupMiddleware(t, tenancy.MiddlewareOptions{})
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		f.handler.ServeHTTP(w, r)
	}))
	defer srv.Close()

	status, _ := rawRequest(t, srv, "GET / HTTP/1.1\r\n"+
		"Host: "+f.aHost+"\r\n"+
		"Connection: close\r\n\r\n")
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, int32(1), calls.Load())

	status, body := rawRequest(t, srv, "GET / HTTP/1.1\r\n"+
		"Host: "+f.aHost+"\r\n"+
		"Host: "+f.bHost+"\r\n"+
		"Connection: close\r\n\r\n")
	require.Equal(t, http.StatusBadRequest, status, string(body))
	require.Equal(t, int32(1), calls.Load(), "the server refuses before any handler runs")
}

// TestMiddlewareAbsoluteForm sends a request line with an absolute URI and
// a Host header naming another tenant: net/http takes the host from the URI
// and the tenant follows it, with r.Host and r.URL.Host in agreement.
func TestMiddlewareAbsoluteForm(t *testing.T) {
	t.Parallel()
	f := setupMiddleware(t, tenancy.MiddlewareOptions{})
	srv := httptest.NewServer(f.handler)
	defer srv.Close()

	status, body := rawRequest(t, srv, "GET http://"+f.bHost+"/who?x=1 HTTP/1.1\r\n"+
		"Host: "+f.aHost+"\r\n"+
		"Connection: close\r\n\r\n")
	require.Equal(t, http.StatusOK, status, string(body))
	var s seen
	require.NoError(t, json.Unmarshal(body, &s))
	want := seen{Tenant: f.b.Schema, Host: f.bHost, URLHost: f.bHost, Path: "/who", Query: "x=1"}
	require.Equal(t, want, s)

	// An unknown host in the URI is refused even with a valid Host header.
	status, _ = rawRequest(t, srv, "GET http://"+randomName("nobody-")+".test/ HTTP/1.1\r\n"+
		"Host: "+f.aHost+"\r\n"+
		"Connection: close\r\n\r\n")
	require.Equal(t, http.StatusNotFound, status)
}

func TestMiddlewarePathPrefix(t *testing.T) {
	t.Parallel()
	f := setupMiddleware(t, tenancy.MiddlewareOptions{PathPrefix: true})
	inactive := tenancytest.NewTenant(t, f.db)
	_, err := f.db.SetActive(t.Context(), inactive.Schema, false)
	require.NoError(t, err)
	public := tenancytest.NewClient(t, f.handler, publicHost)
	base := "/t/" + f.a.Schema

	t.Run("rewrite", func(t *testing.T) {
		s := decodeSeen(t, public.Do(http.MethodGet, base+"/api/v1/me?x=1", nil))
		want := seen{Tenant: f.a.Schema, Host: publicHost, Path: "/api/v1/me", Query: "x=1", BasePath: base}
		require.Equal(t, want, s)

		for _, p := range []string{base, base + "/"} {
			s = decodeSeen(t, public.Do(http.MethodGet, p, nil))
			require.Equal(t, f.a.Schema, s.Tenant)
			require.Equal(t, "/", s.Path)
		}

		s = decodeSeen(t, public.Do(http.MethodGet, base+"/files/a%2Fb", nil))
		require.Equal(t, "/files/a/b", s.Path)
		require.Equal(t, "/files/a%2Fb", s.RawPath)
	})

	t.Run("refused", func(t *testing.T) {
		tests := []struct {
			path   string
			status int
			code   string
		}{
			{"/t/t_nobody_" + randomName("") + "/x", http.StatusNotFound, tenancy.CodeUnknownTenant},
			{"/t/Bad!/x", http.StatusNotFound, tenancy.CodeUnknownTenant},
			{"/t/public/x", http.StatusNotFound, tenancy.CodeUnknownTenant},
			{"/t/../api/v1/me", http.StatusNotFound, tenancy.CodeUnknownTenant},
			{"/t/" + f.a.Schema + "%2Fx/y", http.StatusNotFound, tenancy.CodeUnknownTenant},
			{"/t/", http.StatusNotFound, tenancy.CodeUnknownTenant},
			{"/t", http.StatusNotFound, tenancy.CodeUnknownTenant},
			{"/t//api/v1/me", http.StatusNotFound, tenancy.CodeUnknownTenant},
			{"/t/" + inactive.Schema + "/x", http.StatusForbidden, tenancy.CodeTenantInactive},
		}
		for _, tt := range tests {
			requireRefused(t, public.Do(http.MethodGet, tt.path, nil), tt.status, tt.code)
		}
	})

	t.Run("public routes", func(t *testing.T) {
		s := decodeSeen(t, public.Do(http.MethodGet, "/api/v1/partners", nil))
		require.True(t, s.Public)
		require.Empty(t, s.Tenant)
		require.Equal(t, "/api/v1/partners", s.Path)
	})

	t.Run("tenant host", func(t *testing.T) {
		p := "/t/" + f.b.Schema + "/x"
		s := decodeSeen(t, tenancytest.NewClient(t, f.handler, f.aHost).Do(http.MethodGet, p, nil))
		require.Equal(t, f.a.Schema, s.Tenant, "on a tenant host /t/ names nothing")
		require.Equal(t, p, s.Path)
		require.Empty(t, s.BasePath)
	})
}

func TestMiddlewarePathPrefixOff(t *testing.T) {
	t.Parallel()
	f := setupMiddleware(t, tenancy.MiddlewareOptions{})
	p := "/t/" + f.a.Schema + "/x"
	s := decodeSeen(t, tenancytest.NewClient(t, f.handler, publicHost).Do(http.MethodGet, p, nil))
	require.True(t, s.Public)
	require.Empty(t, s.Tenant)
	require.Equal(t, p, s.Path)
}

// TestMiddlewareConcurrent serves many requests for many hosts of many
// tenants at once: each handler sees its own host's tenant.
func TestMiddlewareConcurrent(t *testing.T) {
	t.Parallel()
	db := openDB(t, tenancy.GuardRole)
	hosts := manyTenantHosts(t, db, 5, 3)
	schemas := make(map[int64]string)
	tenants, err := db.Tenants(t.Context())
	require.NoError(t, err)
	for _, tn := range tenants {
		schemas[tn.ID] = tn.Schema
	}
	rs := tenancy.NewResolver(db, tenancy.ResolverConfig{
		CacheSize:   8,
		PublicHosts: []string{publicHost},
	})
	handler := rs.Middleware(tenancy.MiddlewareOptions{})(echo)

	const workers, rounds = 32, 100
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range rounds {
				host, want := pickHost(hosts)
				resp := get(handler, host, "/")
				var s seen
				json.Unmarshal(resp.Body, &s)
				switch {
				case want == 0 && resp.Status != http.StatusNotFound:
					errs <- fmt.Errorf("%s: want 404, got %d", host, resp.Status)
					return
				case want != 0 && (resp.Status != http.StatusOK || s.Tenant != schemas[want]):
					errs <- fmt.Errorf("%s: want %s, got %d %s", host, schemas[want], resp.Status, resp.Body)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}
