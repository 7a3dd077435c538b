package httpapi_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/xatlabs/xat/internal/httpapi"
)

// logLines collects a server's JSON log lines.
type logLines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// records returns the lines logged so far with message msg, decoded.
func (l *logLines) records(t *testing.T, msg string) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range bytes.Split(l.buf.Bytes(), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var rec map[string]any
		require.NoError(t, json.Unmarshal(line, &rec), "%s", line)
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// byRequest returns the record of recs with request id id.
func byRequest(t *testing.T, recs []map[string]any, id string) map[string]any {
	t.Helper()
	for _, r := range recs {
		if r["request_id"] == id {
			return r
		}
	}
	require.FailNow(t, "no log line of request "+id)
	return nil
}

// TestRequestLogs checks what a request's log lines say about it: the
// access line carries the request id, route, status, tenant and user; a
// handler's own line carries the request id and tenant too; and under
// concurrency no line names another request's tenant or user.
func TestRequestLogs(t *testing.T) {
	t.Parallel()
	f := setup(t)
	logs := &logLines{}
	f.logs = logs
	f.handler, _ = f.server(t, f.db, httpapi.Config{})
	num := func(v int64) float64 { return float64(v) }

	res := f.bearer(t, f.a.host, f.a.member).Get("/api/v1/collectors")
	require.Equal(t, http.StatusOK, res.Status, "%s", res.Body)
	id := res.Header.Get("X-Request-Id")
	require.NotEmpty(t, id)
	access := byRequest(t, logs.records(t, "Request"), id)
	require.Equal(t, "GET /api/v1/collectors", access["route"])
	require.Equal(t, num(http.StatusOK), access["status"])
	require.Equal(t, num(f.a.tenant.ID), access["tenant_id"])
	require.Equal(t, f.a.tenant.Schema, access["schema"])
	require.Equal(t, num(f.a.member.ID), access["user_id"])

	// A refused login is logged by its handler, with the request's tenant.
	res = f.client(t, f.a.host).Post("/api/v1/auth/login", loginBody(f.a.member.Email, "wrong password"))
	require.Equal(t, http.StatusUnauthorized, res.Status, "%s", res.Body)
	id = res.Header.Get("X-Request-Id")
	refused := byRequest(t, logs.records(t, "Login refused"), id)
	require.Equal(t, num(f.a.tenant.ID), refused["tenant_id"])
	require.Equal(t, f.a.tenant.Schema, refused["schema"])
	require.NotContains(t, refused, "user_id")
	access = byRequest(t, logs.records(t, "Request"), id)
	require.Equal(t, num(http.StatusUnauthorized), access["status"])

	// B's token on A's host is refused; the line names A's tenant and no
	// user, since no one was authenticated.
	res = f.bearer(t, f.a.host, f.b.member).Get("/api/v1/collectors")
	require.Equal(t, http.StatusForbidden, res.Status, "%s", res.Body)
	access = byRequest(t, logs.records(t, "Request"), res.Header.Get("X-Request-Id"))
	require.Equal(t, num(f.a.tenant.ID), access["tenant_id"])
	require.NotContains(t, access, "user_id")

	// Concurrent requests of both partners: each line is its own request's.
	type sent struct {
		id     string
		tenant int64
		user   int64
	}
	var (
		mu   sync.Mutex
		all  []sent
		wg   sync.WaitGroup
		errs = make(chan string, 200)
	)
	for i := range 200 {
		p := f.a
		if i%2 == 1 {
			p = f.b
		}
		wg.Go(func() {
			res := f.bearer(t, p.host, p.member).Get("/api/v1/me")
			if res.Status != http.StatusOK {
				errs <- strconv.Itoa(res.Status) + ": " + string(res.Body)
				return
			}
			mu.Lock()
			all = append(all, sent{res.Header.Get("X-Request-Id"), p.tenant.ID, p.member.ID})
			mu.Unlock()
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	recs := logs.records(t, "Request")
	for _, s := range all {
		r := byRequest(t, recs, s.id)
		require.Equal(t, num(s.tenant), r["tenant_id"], "request %s", s.id)
		require.Equal(t, num(s.user), r["user_id"], "request %s", s.id)
	}
}
