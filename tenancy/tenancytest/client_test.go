package tenancytest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/xatlabs/xat/tenancy/tenancytest"
)

// request is what the handler under test saw.
type request struct {
	Method, Host, URLHost, RequestURI, RemoteAddr string
	Auth, Cookie, ContentType, Body               string
}

var record = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	http.SetCookie(w, &http.Cookie{Name: "session", Value: "s1", Path: "/"})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	json.NewEncoder(w).Encode(request{
		Method:      r.Method,
		Host:        r.Host,
		URLHost:     r.URL.Host,
		RequestURI:  r.RequestURI,
		RemoteAddr:  r.RemoteAddr,
		Auth:        r.Header.Get("Authorization"),
		Cookie:      r.Header.Get("Cookie"),
		ContentType: r.Header.Get("Content-Type"),
		Body:        string(body),
	})
})

func TestClient(t *testing.T) {
	t.Parallel()
	c := tenancytest.NewClient(t, record, "acme.test:8443")

	resp := c.Do(http.MethodPost, "/api/v1/collectors?x=1", map[string]string{"site": "Lab"})
	require.Equal(t, http.StatusAccepted, resp.Status)
	var got request
	resp.JSON(t, &got)
	require.Equal(t, request{
		Method:      http.MethodPost,
		Host:        "acme.test:8443",
		RequestURI:  "/api/v1/collectors?x=1",
		RemoteAddr:  "192.0.2.1:1234",
		ContentType: "application/json",
		Body:        `{"site":"Lab"}`,
	}, got)
	require.Equal(t, "s1", resp.Cookie("session").Value)
	require.Nil(t, resp.Cookie("other"))

	// The With methods derive new clients; the base one is unchanged.
	user := c.WithBearer("tok").WithCookie(resp.Cookie("session")).WithRemoteAddr("10.0.0.1:9")
	user.Do(http.MethodGet, "/", nil).JSON(t, &got)
	require.Equal(t, "Bearer tok", got.Auth)
	require.Equal(t, "session=s1", got.Cookie)
	require.Equal(t, "10.0.0.1:9", got.RemoteAddr)
	require.Empty(t, got.Body)
	require.Empty(t, got.ContentType)

	c.Do(http.MethodGet, "/", nil).JSON(t, &got)
	require.Empty(t, got.Auth)
	require.Empty(t, got.Cookie)

	// A reader is sent as it is.
	csv := c.WithHeader("Content-Type", "text/csv")
	csv.Do(http.MethodPut, "/data", strings.NewReader("a,b\n")).JSON(t, &got)
	require.Equal(t, "a,b\n", got.Body)
	require.Equal(t, "text/csv", got.ContentType)
}
