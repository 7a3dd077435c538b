package tenancytest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Client sends requests through an http.Handler as a client of one host
// would: each request has that Host, so the handler's tenant middleware
// resolves the host's tenant exactly as in production. Requests run in
// process through httptest.NewRecorder, with the RemoteAddr httptest gives
// (192.0.2.1:1234) unless WithRemoteAddr says otherwise.
//
// The With methods return a new Client and leave the receiver as it was,
// so one client per host can fan out into one per user. A Client reports
// failures to the test it was made for; make one in each test or subtest.
// Cookies that responses set are not kept: pass the ones a test needs on
// with WithCookie (see Response.Cookie).
type Client struct {
	tb      testing.TB
	handler http.Handler
	host    string
	remote  string
	header  http.Header
	cookies []*http.Cookie
}

// NewClient returns a Client that sends requests for host (a domain,
// optionally with a port) through handler.
func NewClient(tb testing.TB, handler http.Handler, host string) *Client {
	tb.Helper()
	return &Client{tb: tb, handler: handler, host: host, header: make(http.Header)}
}

func (c *Client) clone() *Client {
	n := *c
	n.header = c.header.Clone()
	n.cookies = append([]*http.Cookie(nil), c.cookies...)
	return &n
}

// WithBearer returns a Client that authenticates with the bearer token.
func (c *Client) WithBearer(token string) *Client {
	return c.WithHeader("Authorization", "Bearer "+token)
}

// WithCookie returns a Client that also sends cookie.
func (c *Client) WithCookie(cookie *http.Cookie) *Client {
	n := c.clone()
	n.cookies = append(n.cookies, cookie)
	return n
}

// WithHeader returns a Client that sends the header key with value,
// replacing any value it sent before.
func (c *Client) WithHeader(key, value string) *Client {
	n := c.clone()
	n.header.Set(key, value)
	return n
}

// WithRemoteAddr returns a Client whose requests come from addr
// ("ip:port"), for tests of proxy trust or per-address limits.
func (c *Client) WithRemoteAddr(addr string) *Client {
	n := c.clone()
	n.remote = addr
	return n
}

// Response is what the handler answered.
type Response struct {
	Status int
	Header http.Header
	Body   []byte

	cookies []*http.Cookie
}

// Do sends a request for path (which may hold a query) and returns the
// response. A nil body sends none; an io.Reader is sent as it is; any other
// value is sent as JSON with Content-Type application/json.
func (c *Client) Do(method, path string, body any) *Response {
	c.tb.Helper()
	var rd io.Reader
	isJSON := false
	switch b := body.(type) {
	case nil:
	case io.Reader:
		rd = b
	default:
		data, err := json.Marshal(b)
		require.NoError(c.tb, err, "encode request body")
		rd, isJSON = bytes.NewReader(data), true
	}
	if !strings.HasPrefix(path, "/") {
		c.tb.Fatalf("tenancytest.Client: path %q must start with /", path)
	}

	// An origin-form target, as a server receives from a client: the host
	// travels in Host alone and the URL has none.
	req := httptest.NewRequestWithContext(c.tb.Context(), method, path, rd)
	req.Host = c.host
	for k, v := range c.header {
		req.Header[k] = append([]string(nil), v...)
	}
	if isJSON {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, ck := range c.cookies {
		req.AddCookie(ck)
	}
	if c.remote != "" {
		req.RemoteAddr = c.remote
	}

	rec := httptest.NewRecorder()
	c.handler.ServeHTTP(rec, req)
	res := rec.Result()
	data, err := io.ReadAll(res.Body)
	require.NoError(c.tb, err)
	return &Response{Status: res.StatusCode, Header: res.Header, Body: data, cookies: res.Cookies()}
}

// JSON decodes the body into v, failing tb when it is not valid JSON for
// v.
func (r *Response) JSON(tb testing.TB, v any) {
	tb.Helper()
	require.NoError(tb, json.Unmarshal(r.Body, v), "decode response body: %s", r.Body)
}

// Cookie returns the cookie the response set under name, or nil.
func (r *Response) Cookie(name string) *http.Cookie {
	for _, c := range r.cookies {
		if c.Name == name {
			return c
		}
	}
	return nil
}
