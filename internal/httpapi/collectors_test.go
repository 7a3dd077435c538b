package httpapi_test

import (
	"bytes"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/xatlabs/xat/internal/postgres"
	"github.com/xatlabs/xat/tenancy"
	"github.com/xatlabs/xat/tenancy/tenancytest"
)

// TestMemberVisibility checks the owner rule: a member sees and changes
// only its own collectors, and another's look like ones that do not exist;
// a partner administrator sees and changes all of them.
func TestMemberVisibility(t *testing.T) {
	t.Parallel()
	forGuards(t, func(t *testing.T, guard tenancy.Guard) {
		f := setupGuard(t, guard)
		a := f.a
		other := f.addUser(t, a, postgres.RoleMember)
		all := slices.Concat(a.admin.collectors, a.member.collectors, other.collectors)
		theirs := slices.Concat(a.admin.collectors, other.collectors)

		for via, c := range map[string]client{
			"token":   f.bearer(t, a.host, a.member),
			"session": f.cookie(t, a.host, a.member),
		} {
			list := decode[collectorList](t, c.Get("/api/v1/collectors"), http.StatusOK)
			require.Equal(t, ids(a.member.collectors), ids(list.Items), via)

			missing := c.Get(collectorPath(999999))
			requireError(t, missing, http.StatusNotFound, "not_found")
			for _, col := range theirs {
				path := collectorPath(col.ID)
				for _, res := range []*tenancytest.Response{
					c.Get(path),
					c.Patch(path, obj{"site_name": "mine now"}),
					c.Delete(path),
				} {
					require.Equal(t, missing.Status, res.Status, "%s via %s", path, via)
					require.Equal(t, string(missing.Body), string(res.Body), "%s via %s", path, via)
				}
			}
			own := a.member.collectors[0]
			res := c.Get(collectorPath(own.ID))
			require.Equal(t, *own, decode[postgres.Collector](t, res, http.StatusOK))
		}

		// The administrator sees everything, unchanged by the member's tries.
		admin := f.bearer(t, a.host, a.admin)
		list := decode[collectorList](t, admin.Get("/api/v1/collectors"), http.StatusOK)
		require.Equal(t, all, list.Items)
		col := other.collectors[0]
		res := admin.Get(collectorPath(col.ID))
		require.Equal(t, *col, decode[postgres.Collector](t, res, http.StatusOK))

		res = admin.Patch(collectorPath(col.ID), obj{"site_name": "renamed by admin"})
		got := decode[postgres.Collector](t, res, http.StatusOK)
		require.Equal(t, "renamed by admin", got.SiteName)
		require.Equal(t, other.ID, got.OwnerID, "an administrator's change keeps the owner")
		gone := other.collectors[1].ID
		require.Equal(t, http.StatusNoContent, admin.Delete(collectorPath(gone)).Status)
		res = f.bearer(t, a.host, other).Get(collectorPath(gone))
		requireError(t, res, http.StatusNotFound, "not_found")

		// A member's new collector is its own.
		mine := f.newCollector(t, a, a.member, "new")
		require.Equal(t, a.member.ID, mine.OwnerID)
		name := a.tenant.Schema + "-renamed"
		res = f.bearer(t, a.host, a.member).Patch(collectorPath(mine.ID), obj{"machine_name": name})
		require.Equal(t, name, decode[postgres.Collector](t, res, http.StatusOK).MachineName)
	})
}

func collectorPath(id int64) string { return "/api/v1/collectors/" + itoa(id) }

func TestPagination(t *testing.T) {
	t.Parallel()
	f := setup(t)
	c := f.bearer(t, f.a.host, f.a.admin)

	var seen []*postgres.Collector
	path := "/api/v1/collectors?limit=3"
	for {
		page := decode[collectorList](t, c.Get(path), http.StatusOK)
		require.LessOrEqual(t, len(page.Items), 3)
		seen = append(seen, page.Items...)
		if page.Next == nil {
			break
		}
		path = "/api/v1/collectors?limit=3&cursor=" + *page.Next
	}
	require.Equal(t, ids(append(f.a.admin.collectors, f.a.member.collectors...)), ids(seen))
}

// TestBadInput sends malformed requests: each gets a 4xx JSON error that
// says what is wrong, none a 500, and nothing stored changes.
func TestBadInput(t *testing.T) {
	t.Parallel()
	f := setup(t)
	c := f.bearer(t, f.a.host, f.a.admin)
	const col = "/api/v1/collectors"
	one := collectorPath(f.a.admin.collectors[0].ID)
	platform := itoa(f.platform)
	fields := func(site, machine, platform string) string {
		return `{"site_name":` + site + `,"machine_name":` + machine + `,"platform_id":` + platform + `}`
	}
	valid := fields(`"s"`, `"m"`, platform)
	huge := strings.Repeat("x", 2<<20)
	long := `"` + strings.Repeat("é", 201) + `"`

	for _, tc := range []struct {
		method, path, body string
		status             int
		message            string // part of the error message
	}{
		{"POST", col, ``, 400, "JSON object"},
		{"POST", col, `{`, 400, "invalid JSON"},
		{"POST", col, `{"site_name":`, 400, "invalid JSON"},
		{"POST", col, `not json`, 400, "invalid JSON"},
		{"POST", col, `[]`, 400, "JSON object"},
		{"POST", col, `"text"`, 400, "JSON object"},
		{"POST", col, `null`, 400, "site_name is required"},
		{"POST", col, `{}`, 400, "site_name is required"},
		{"POST", col, `{"site_name":"s","machine_name":"m"}`, 400, "platform_id is required"},
		{"POST", col, valid[:len(valid)-1] + `,"owner_id":1}`, 400, `unknown field "owner_id"`},
		{"POST", col, valid + ` {}`, 400, "after the JSON value"},
		{"POST", col, valid + `}`, 400, "after the JSON value"},
		{"POST", col, valid + huge, 400, "after the JSON value"},
		{"POST", col, valid + ` "` + huge + `"`, 413, "too large"},
		{"POST", col, `{"site_name":"` + huge + `"}`, 413, "too large"},
		{"POST", col, fields(`5`, `"m"`, platform), 400, "site_name must be a string"},
		{"POST", col, fields(`"s"`, `"m"`, `"1"`), 400, "platform_id must be a whole number"},
		{"POST", col, fields(`"s"`, `"m"`, `1e40`), 400, "platform_id must be a whole number"},
		{"POST", col, fields(`" "`, `"m"`, platform), 400, "site_name"},
		{"POST", col, fields(long, `"m"`, platform), 400, "site_name"},
		{"POST", col, fields(`"s"`, `""`, platform), 400, "machine_name"},
		{"POST", col, fields(`"s"`, `"m"`, `999999`), 400, "platform_id"},
		{"POST", col, fields(`"s"`, `"m"`, `-1`), 400, "platform_id"},
		{"PATCH", one, `{"site_name":""}`, 400, "site_name"},
		{"PATCH", one, `{"platform_id":0}`, 400, "platform_id"},
		{"PATCH", one, `{"id":7}`, 400, `unknown field "id"`},
		{"PATCH", one, `{`, 400, "invalid JSON"},
		{"GET", col + "/abc", ``, 404, "not found"},
		{"GET", col + "/-1", ``, 404, "not found"},
		{"GET", col + "/0", ``, 404, "not found"},
		{"GET", col + "/1.5", ``, 404, "not found"},
		{"GET", col + "/99999999999999999999999", ``, 404, "not found"},
		{"GET", col + "/9223372036854775807", ``, 404, "not found"},
		{"GET", col + "/0x10", ``, 404, "not found"},
		{"PATCH", col + "/abc", `{}`, 404, "not found"},
		{"DELETE", col + "/-5", ``, 404, "not found"},
		{"DELETE", "/api/v1/tokens/abc", ``, 404, "not found"},
		{"DELETE", "/api/v1/tokens/99999999999999999999", ``, 404, "not found"},
		{"GET", col + "?limit=0", ``, 400, "limit"},
		{"GET", col + "?limit=201", ``, 400, "limit"},
		{"GET", col + "?limit=-1", ``, 400, "limit"},
		{"GET", col + "?limit=abc", ``, 400, "limit"},
		{"GET", col + "?cursor=abc", ``, 400, "cursor"},
		{"GET", col + "?cursor=%00%ff", ``, 400, "cursor"},
		{"GET", col + "?cursor=aTA", ``, 400, "cursor"},
		{"POST", "/api/v1/tokens", `{"name":"` + strings.Repeat("n", 101) + `"}`, 400, "name"},
		{"POST", "/api/v1/tokens", `{"expires_at":"tomorrow"}`, 400, "invalid JSON"},
		{"POST", "/api/v1/tokens", `{"expires_at":"2001-01-01T00:00:00Z"}`, 400, "expires_at"},
		{"POST", "/api/v1/auth/login", `{"email":1}`, 400, "email must be a string"},
		{"POST", "/api/v1/auth/login", `{"email":"a@b.c","password":"x","a":1}`, 400, "unknown field"},
	} {
		res := c.Do(tc.method, tc.path, bytes.NewReader([]byte(tc.body)))
		name := tc.method + " " + tc.path + " " + truncate(tc.body)
		require.Equal(t, tc.status, res.Status, "%s: %s", name, res.Body)
		var body errorBody
		res.JSON(t, &body)
		require.Contains(t, body.Error.Message, tc.message, name)
		require.NotContains(t, body.Error.Message, "httpapi", name)
		require.NotContains(t, body.Error.Message, "collectorInput", name)
	}

	list := decode[collectorList](t, c.Get("/api/v1/collectors"), http.StatusOK)
	require.Equal(t, append(f.a.admin.collectors, f.a.member.collectors...), list.Items)
}

func truncate(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}
