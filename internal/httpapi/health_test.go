package httpapi_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/xatlabs/xat/internal/httpapi"
	"github.com/xatlabs/xat/migrations"
	"github.com/xatlabs/xat/tenancy"
)

func TestProbes(t *testing.T) {
	t.Parallel()
	f := setup(t)

	unknown := "nobody-" + randomHex(4) + ".test"
	for _, host := range []string{f.a.host, publicHost, unknown, "bad host"} {
		res := f.client(t, host).Get("/healthz")
		require.Equal(t, http.StatusOK, res.Status, host)
		require.JSONEq(t, `{"status":"ok"}`, string(res.Body))
	}
	res := f.client(t, publicHost).Get("/readyz")
	require.Equal(t, http.StatusOK, res.Status, "%s", res.Body)
	require.JSONEq(t, `{"status":"ready"}`, string(res.Body))

	// A newer release, with a tenant migration the database lacks, is not
	// ready for traffic.
	shared, err := migrations.Shared()
	require.NoError(t, err)
	tenant, err := migrations.Tenant()
	require.NoError(t, err)
	next := append(tenant, tenancy.Migration{Version: len(tenant) + 1, Name: "next", SQL: "SELECT 1"})
	newer, _ := f.server(t, f.db.WithMigrations(shared, next), httpapi.Config{})
	res = newClient(t, newer, publicHost).Get("/readyz")
	requireError(t, res, http.StatusServiceUnavailable, "migrations_pending")
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	f := setup(t)
	id := itoa(f.a.admin.collectors[0].ID)
	c := f.bearer(t, f.a.host, f.a.admin)
	require.Equal(t, http.StatusOK, c.Get("/api/v1/collectors/"+id).Status)
	require.Equal(t, http.StatusNotFound, c.Get("/api/v1/collectors/999999").Status)
	res := f.client(t, "nobody.test").Get("/api/v1/collectors/" + id)
	require.Equal(t, http.StatusNotFound, res.Status)

	res = f.client(t, f.a.host).Get("/metrics")
	require.Equal(t, http.StatusOK, res.Status)
	body := string(res.Body)

	for _, want := range []string{
		`xat_http_requests_total{method="GET",route="GET /api/v1/collectors/{id}",status="200"} 1`,
		`xat_http_requests_total{method="GET",route="GET /api/v1/collectors/{id}",status="404"} 1`,
		`xat_http_requests_total{method="POST",route="POST /api/v1/auth/login",status="200"}`,
		`xat_http_requests_total{method="GET",route="unmatched",status="404"} 1`,
		`xat_http_request_duration_seconds_bucket{method="GET",route="GET /api/v1/collectors/{id}"`,
		"xat_db_pool_total_conns ",
		"xat_db_pool_acquired_conns ",
		"xat_db_pool_max_conns ",
		"xat_db_pool_acquire_total ",
		"xat_tenant_cache_hits_total ",
		"xat_tenant_cache_misses_total ",
		"xat_tenant_cache_entries ",
	} {
		require.Contains(t, body, want)
	}

	// Labels are route patterns: no raw path, id, host or schema.
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, "xat_http_") {
			continue
		}
		require.NotRegexp(t, regexp.MustCompile(`route="[^"]*/[0-9]`), line)
		require.NotContains(t, line, f.a.tenant.Schema)
		require.NotContains(t, line, f.a.host)
	}
}
