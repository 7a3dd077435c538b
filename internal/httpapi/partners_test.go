package httpapi_test

import (
	"context"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/xatlabs/xat/internal/auth"
	"github.com/xatlabs/xat/internal/postgres"
	"github.com/xatlabs/xat/tenancy"
	"github.com/xatlabs/xat/tenancy/tenancytest"
)

// adminRoutes are the platform administration routes, with a request body
// where one is needed.
func adminRoutes(partnerID int64) []probe {
	p := "/api/v1/partners/" + itoa(partnerID)
	return []probe{
		{http.MethodGet, "/api/v1/partners", nil},
		{http.MethodPost, "/api/v1/partners", obj{"name": "x", "domain": "x.test"}},
		{http.MethodGet, p, nil},
		{http.MethodPatch, p, obj{"active": false}},
		{http.MethodDelete, p + "?drop=true", nil},
		{http.MethodGet, p + "/domains", nil},
		{http.MethodPost, p + "/domains", obj{"domain": "y.test"}},
		{http.MethodDelete, p + "/domains/y.test", nil},
		{http.MethodPost, p + "/domains/y.test/primary", nil},
		{http.MethodGet, p + "/members", nil},
		{http.MethodPost, p + "/members", obj{"email": "a@b.test", "role": "member"}},
		{http.MethodDelete, p + "/members/1", nil},
		{http.MethodGet, "/api/v1/users", nil},
		{http.MethodPost, "/api/v1/users", obj{"email": "a@b.test", "password": password}},
		{http.MethodGet, "/api/v1/platforms", nil},
		{http.MethodPost, "/api/v1/platforms", obj{"name": "x"}},
		{http.MethodGet, "/api/v1/audit-events", nil},
		{http.MethodGet, "/api/v1/reports/tenants", nil},
	}
}

func partnerPath(id int64) string { return "/api/v1/partners/" + itoa(id) }

func TestAdminAPIRefusesOthers(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	before := f.snapshot(t, f.a)

	// A public-host session of a user who is no platform administrator
	// (one cannot log in there, so it is made in the store), and one of an
	// administrator who was demoted after logging in.
	plain, hash := auth.NewToken(auth.KindSession)
	expires := time.Now().Add(time.Hour)
	require.NoError(t, f.store.CreateSession(ctx, hash, f.a.admin.ID, nil, expires, defaultAddr))
	demoted := f.newUser(t, true)
	demoted.session = login(t, f.handler, publicHost, demoted.Email)
	require.NoError(t, f.store.SetPlatformAdmin(ctx, demoted.ID, false))

	for _, p := range adminRoutes(f.a.tenant.ID) {
		res := f.client(t, publicHost).Do(p.method, p.path, p.body)
		requireError(t, res, http.StatusUnauthorized, "unauthorized")
		for _, c := range []client{
			f.client(t, publicHost).WithCookie(sessionCookie(plain)),
			f.cookie(t, publicHost, demoted),
		} {
			res := c.Do(p.method, p.path, p.body)
			requireError(t, res, http.StatusForbidden, "forbidden")
		}
	}
	require.Equal(t, before, f.snapshot(t, f.a))
	res := f.cookie(t, publicHost, f.admin).Get(partnerPath(f.a.tenant.ID))
	require.True(t, decode[tenancy.Tenant](t, res, http.StatusOK).Active)
}

func TestCreatePartner(t *testing.T) {
	t.Parallel()
	f := setup(t)
	c := f.cookie(t, publicHost, f.admin)
	id := randomHex(5)
	schema, domain := "p_"+id, "p-"+id+".test"

	// Asked for before it exists, the domain is unknown; the answer must
	// not outlive the partner's creation.
	requireUnknownHost(t, f.client(t, domain))

	res := c.Post("/api/v1/partners", obj{
		"name":       "Partner " + id,
		"schema":     schema,
		"domain":     strings.ToUpper(domain) + ".",
		"info_url":   "https://example.test/" + id,
		"paid_until": "2031-02-28",
	})
	created := decode[tenancy.Tenant](t, res, http.StatusCreated)
	require.Equal(t, schema, created.Schema)
	require.True(t, created.Active)
	require.Equal(t, "2031-02-28", created.PaidUntil.Format(time.DateOnly))

	path := partnerPath(created.ID)
	require.Equal(t, created.ID, decode[tenancy.Tenant](t, c.Get(path), http.StatusOK).ID)
	domains := decode[list[tenancy.Domain]](t, c.Get(path+"/domains"), http.StatusOK)
	want := tenancy.Domain{Domain: domain, TenantID: created.ID, IsPrimary: true}
	require.Equal(t, []tenancy.Domain{want}, domains.Items)

	// The new partner is served at once, to a member added through the API.
	res = c.Post("/api/v1/users", loginBody(uniqueEmail(), password))
	u := decode[postgres.User](t, res, http.StatusCreated)
	res = c.Post(path+"/members", obj{"email": u.Email, "role": "admin"})
	require.Equal(t, http.StatusCreated, res.Status, "%s", res.Body)
	session := login(t, f.handler, domain, u.Email)
	res = f.client(t, domain).WithCookie(session).Get("/api/v1/collectors")
	require.Empty(t, decode[collectorList](t, res, http.StatusOK).Items)

	// Conflicts and bad names leave nothing behind.
	other, otherHost := "q_"+id, "q-"+id+".test"
	for _, tc := range []struct {
		name           string
		schema, domain string
		extra          obj
		status         int
	}{
		{"taken schema", schema, otherHost, nil, http.StatusConflict},
		{"taken domain", other, f.b.host, nil, http.StatusConflict},
		{"uppercase schema", "Q_" + id, otherHost, nil, http.StatusBadRequest},
		{"reserved schema", "pg_" + id, otherHost, nil, http.StatusBadRequest},
		{"public schema", "public", otherHost, nil, http.StatusBadRequest},
		{"long schema", "q" + strings.Repeat("x", 63), otherHost, nil, http.StatusBadRequest},
		{"quote in schema", `q"; drop schema public; --`, otherHost, nil, http.StatusBadRequest},
		{"bad domain", other, "bad domain", nil, http.StatusBadRequest},
		{"ip domain", other, "10.1.2.3", nil, http.StatusBadRequest},
		{"no domain", other, "", nil, http.StatusBadRequest},
		{"no name", other, otherHost, obj{"name": ""}, http.StatusBadRequest},
		{"bad paid_until", other, otherHost, obj{"paid_until": "31/12/2030"}, http.StatusBadRequest},
		{"bad info_url", other, otherHost, obj{"info_url": "javascript:alert(1)"}, http.StatusBadRequest},
		{"unknown field", other, otherHost, obj{"active": false}, http.StatusBadRequest},
	} {
		body := obj{"name": "x", "schema": tc.schema, "domain": tc.domain}
		maps.Copy(body, tc.extra)
		res := c.Post("/api/v1/partners", body)
		require.Equal(t, tc.status, res.Status, "%s: %s", tc.name, res.Body)
		_, err := f.db.Tenant(context.Background(), other)
		require.ErrorIs(t, err, tenancy.ErrTenantNotFound, tc.name)
		requireUnknownHost(t, f.client(t, otherHost))
	}
	// The partner that lost the domain race still has it.
	require.Equal(t, f.b.tenant.ID, requireMe(t, f.bearer(t, f.b.host, f.b.admin)).Partner.ID)
}

func TestListPartners(t *testing.T) {
	t.Parallel()
	f := setup(t)
	c := f.cookie(t, publicHost, f.admin)

	var seen []int64
	path := "/api/v1/partners?limit=2"
	for {
		page := decode[list[*tenancy.Tenant]](t, c.Get(path), http.StatusOK)
		require.LessOrEqual(t, len(page.Items), 2)
		for _, p := range page.Items {
			seen = append(seen, p.ID)
		}
		if page.Next == nil {
			break
		}
		path = "/api/v1/partners?limit=2&cursor=" + url.QueryEscape(*page.Next)
	}
	require.Contains(t, seen, f.a.tenant.ID)
	require.Contains(t, seen, f.b.tenant.ID)
	require.IsIncreasing(t, seen)

	requireError(t, c.Get("/api/v1/partners?cursor=zz"), http.StatusBadRequest, "invalid_input")
	requireError(t, c.Get("/api/v1/partners?limit=500"), http.StatusBadRequest, "bad_request")
	for _, id := range []string{"999999999", "abc", "-1"} {
		requireError(t, c.Get("/api/v1/partners/"+id), http.StatusNotFound, "not_found")
	}
}

func TestUpdatePartner(t *testing.T) {
	t.Parallel()
	f := setup(t)
	c := f.cookie(t, publicHost, f.admin)
	path := partnerPath(f.a.tenant.ID)
	info := "https://a.example.test/info"
	update := func(body obj) tenancy.Tenant {
		t.Helper()
		return decode[tenancy.Tenant](t, c.Patch(path, body), http.StatusOK)
	}

	got := update(obj{"info_url": info, "paid_until": "2030-12-31"})
	require.Equal(t, info, got.InfoURL)
	require.Equal(t, "2030-12-31", got.PaidUntil.Format(time.DateOnly))
	require.True(t, got.Active)

	// The partner's own view follows.
	require.Equal(t, info, requireMe(t, f.bearer(t, f.a.host, f.a.admin)).Partner.InfoURL)

	// Deactivation takes effect at the next request.
	require.False(t, update(obj{"active": false}).Active)
	res := f.bearer(t, f.a.host, f.a.admin).Get("/api/v1/collectors")
	require.Equal(t, http.StatusForbidden, res.Status)
	require.JSONEq(t, inactiveBody, string(res.Body))
	require.Equal(t, http.StatusOK, f.bearer(t, f.b.host, f.b.admin).Get("/api/v1/collectors").Status)

	require.True(t, update(obj{"active": true}).Active)
	require.Equal(t, http.StatusOK, f.bearer(t, f.a.host, f.a.admin).Get("/api/v1/collectors").Status)

	// Clearing the date and the link.
	got = update(obj{"info_url": "", "paid_until": ""})
	require.Empty(t, got.InfoURL)
	require.Nil(t, got.PaidUntil)

	for name, body := range map[string]obj{
		"bad date":      {"paid_until": "2030-02-30"},
		"bad link":      {"info_url": "ftp://example.test"},
		"relative link": {"info_url": "/info"},
		"bad active":    {"active": "no"},
		"renaming":      {"schema": "other"},
	} {
		res := c.Patch(path, body)
		require.Equal(t, http.StatusBadRequest, res.Status, "%s: %s", name, res.Body)
	}
	res = c.Patch(partnerPath(999999999), obj{"active": false})
	requireError(t, res, http.StatusNotFound, "not_found")
}

// inactiveBody is the answer to every request for an inactive partner.
const inactiveBody = `{"error":{"code":"tenant_inactive","message":"partner is inactive"}}`

// TestDeletePartner runs alone: dropping a schema while other tests write
// can deadlock them (see newTenant).
func TestDeletePartner(t *testing.T) {
	f := setup(t)
	c := f.cookie(t, publicHost, f.admin)
	path := partnerPath(f.a.tenant.ID)

	requireError(t, c.Delete(path+"?drop=true"), http.StatusConflict, "conflict")
	require.Equal(t, f.a.tenant.ID, decode[tenancy.Tenant](t, c.Get(path), http.StatusOK).ID)

	require.Equal(t, http.StatusOK, c.Patch(path, obj{"active": false}).Status)
	for _, q := range []string{"", "?drop=1", "?drop=yes"} {
		requireError(t, c.Delete(path+q), http.StatusBadRequest, "bad_request")
	}
	_, err := f.db.Tenant(context.Background(), f.a.tenant.Schema)
	require.NoError(t, err, "refused deletes keep the partner")

	require.Equal(t, http.StatusNoContent, c.Delete(path+"?drop=true").Status)
	requireError(t, c.Get(path), http.StatusNotFound, "not_found")
	requireError(t, c.Delete(path+"?drop=true"), http.StatusNotFound, "not_found")
	requireUnknownHost(t, f.bearer(t, f.a.host, f.a.admin))

	// Its neighbour is untouched.
	res := f.bearer(t, f.b.host, f.b.admin).Get("/api/v1/collectors")
	require.Len(t, decode[collectorList](t, res, http.StatusOK).Items, 4)
}

func TestPartnerDomains(t *testing.T) {
	t.Parallel()
	f := setup(t)
	c := f.cookie(t, publicHost, f.admin)
	a, b := f.a.tenant.ID, f.b.tenant.ID
	base := partnerPath(a) + "/domains"
	extra := "x-" + randomHex(5) + ".test"
	domains := func(res *tenancytest.Response, status int) []tenancy.Domain {
		t.Helper()
		return decode[list[tenancy.Domain]](t, res, status).Items
	}

	requireUnknownHost(t, f.bearer(t, extra, f.a.admin))
	require.Equal(t, []tenancy.Domain{
		{Domain: f.a.host, TenantID: a, IsPrimary: true},
		{Domain: extra, TenantID: a},
	}, domains(c.Post(base, obj{"domain": extra}), http.StatusCreated))
	require.Equal(t, a, requireMe(t, f.bearer(t, extra, f.a.admin)).Partner.ID)

	requireError(t, c.Post(base, obj{"domain": f.b.host}), http.StatusConflict, "conflict")
	requireError(t, c.Post(base, obj{"domain": "bad_domain"}), http.StatusBadRequest, "bad_request")
	requireError(t, c.Post(base, obj{}), http.StatusBadRequest, "bad_request")
	res := c.Post(partnerPath(999999999)+"/domains", obj{"domain": "z-" + randomHex(4) + ".test"})
	requireError(t, res, http.StatusNotFound, "not_found")

	// Another partner's domain cannot be reached through this partner's
	// URL, nor an unknown one.
	for _, d := range []string{f.b.host, "nobody-" + randomHex(4) + ".test"} {
		requireError(t, c.Delete(base+"/"+d), http.StatusNotFound, "not_found")
		requireError(t, c.Post(base+"/"+d+"/primary", nil), http.StatusNotFound, "not_found")
	}
	require.Equal(t, b, requireMe(t, f.bearer(t, f.b.host, f.b.admin)).Partner.ID)
	require.Equal(t, []tenancy.Domain{{Domain: f.b.host, TenantID: b, IsPrimary: true}},
		domains(c.Get(partnerPath(b)+"/domains"), http.StatusOK))

	require.Equal(t, []tenancy.Domain{
		{Domain: extra, TenantID: a, IsPrimary: true},
		{Domain: f.a.host, TenantID: a},
	}, domains(c.Post(base+"/"+strings.ToUpper(extra)+"/primary", nil), http.StatusOK))

	requireError(t, c.Delete(base+"/"+extra), http.StatusConflict, "conflict")
	require.Equal(t, http.StatusNoContent, c.Delete(base+"/"+f.a.host).Status)
	requireUnknownHost(t, f.bearer(t, f.a.host, f.a.admin))
	require.Equal(t, a, requireMe(t, f.bearer(t, extra, f.a.admin)).Partner.ID)
}

func TestUsersAndMembers(t *testing.T) {
	t.Parallel()
	f := setup(t)
	c := f.cookie(t, publicHost, f.admin)
	email := uniqueEmail()

	res := c.Post("/api/v1/users", loginBody(strings.ToUpper(email), password))
	u := decode[postgres.User](t, res, http.StatusCreated)
	require.Equal(t, email, u.Email)
	require.False(t, u.IsPlatformAdmin)
	res = c.Post("/api/v1/users", loginBody(email, password))
	requireError(t, res, http.StatusConflict, "conflict")
	for name, body := range map[string]obj{
		"bad email":      loginBody("not an email", password),
		"display name":   loginBody("Someone <"+uniqueEmail()+">", password),
		"short password": loginBody(uniqueEmail(), "short"),
		"no password":    {"email": uniqueEmail()},
		"hash given":     {"email": uniqueEmail(), "password_hash": "x"},
	} {
		res := c.Post("/api/v1/users", body)
		require.Equal(t, http.StatusBadRequest, res.Status, "%s: %s", name, res.Body)
		require.NotContains(t, string(res.Body), "argon2", name)
	}
	require.True(t, pages(t, c, "/api/v1/users", func(item obj) bool {
		return item["email"] == email
	}))

	members := partnerPath(f.a.tenant.ID) + "/members"
	res = c.Post(members, obj{"email": email, "role": "member"})
	require.Equal(t, http.StatusCreated, res.Status, "%s", res.Body)
	require.True(t, pages(t, c, members, func(item obj) bool {
		return item["email"] == email && item["role"] == "member"
	}))
	require.False(t, pages(t, c, partnerPath(f.b.tenant.ID)+"/members", func(item obj) bool {
		return item["email"] == email
	}))
	session := f.client(t, f.a.host).WithCookie(login(t, f.handler, f.a.host, email))
	require.Equal(t, http.StatusOK, session.Get("/api/v1/collectors").Status)

	for name, body := range map[string]obj{
		"bad role":      {"email": email, "role": "owner"},
		"no role":       {"email": email},
		"unknown email": {"email": uniqueEmail(), "role": "member"},
	} {
		res := c.Post(members, body)
		require.Equal(t, http.StatusBadRequest, res.Status, "%s: %s", name, res.Body)
	}
	res = c.Post(partnerPath(999999999)+"/members", obj{"email": email, "role": "member"})
	requireError(t, res, http.StatusNotFound, "not_found")

	require.Equal(t, http.StatusNoContent, c.Delete(members+"/"+itoa(u.ID)).Status)
	requireError(t, c.Delete(members+"/"+itoa(u.ID)), http.StatusNotFound, "not_found")
	requireError(t, c.Delete(members+"/abc"), http.StatusNotFound, "not_found")
	requireError(t, session.Get("/api/v1/collectors"), http.StatusForbidden, "forbidden")
}

// pages walks every page of a list and reports whether an item matched.
func pages(t *testing.T, c client, path string, match func(obj) bool) bool {
	t.Helper()
	found := false
	next := ""
	for {
		p := path + "?limit=200"
		if next != "" {
			p += "&cursor=" + url.QueryEscape(next)
		}
		page := decode[list[obj]](t, c.Get(p), http.StatusOK)
		for _, item := range page.Items {
			found = found || match(item)
		}
		if page.Next == nil {
			return found
		}
		next = *page.Next
	}
}

func TestPlatforms(t *testing.T) {
	t.Parallel()
	f := setup(t)
	c := f.cookie(t, publicHost, f.admin)
	name := "Platform " + randomHex(4)

	res := c.Post("/api/v1/platforms", obj{"name": "  " + name + " "})
	require.Equal(t, name, decode[postgres.Platform](t, res, http.StatusCreated).Name)
	requireError(t, c.Post("/api/v1/platforms", obj{"name": name}), http.StatusConflict, "conflict")
	for _, bad := range []string{"", "   ", strings.Repeat("p", 101)} {
		res := c.Post("/api/v1/platforms", obj{"name": bad})
		requireError(t, res, http.StatusBadRequest, "bad_request")
	}

	names := func(c client) []string {
		t.Helper()
		var out []string
		res := c.Get("/api/v1/platforms")
		for _, p := range decode[list[postgres.Platform]](t, res, http.StatusOK).Items {
			out = append(out, p.Name)
		}
		return out
	}
	require.Contains(t, names(c), name)
	member := f.bearer(t, f.a.host, f.a.member)
	require.Contains(t, names(member), name, "partners share the reference data")

	// Partners read it but cannot add to it.
	res = f.bearer(t, f.a.host, f.a.admin).Post("/api/v1/platforms", obj{"name": "mine"})
	requireError(t, res, http.StatusMethodNotAllowed, "method_not_allowed")
}

func TestAuditEvents(t *testing.T) {
	t.Parallel()
	f := setup(t)
	c := f.cookie(t, publicHost, f.admin)
	start := time.Now().Add(-time.Second).UTC()

	// Three refusals on A: B's token, B's session, the platform session.
	f.bearer(t, f.a.host, f.b.admin).Get("/api/v1/me")
	f.cookie(t, f.a.host, f.b.member).Get("/api/v1/me")
	f.cookie(t, f.a.host, f.admin).Get("/api/v1/me")

	type events = list[*postgres.AuditEvent]
	query := "/api/v1/audit-events?tenant_id=" + itoa(f.a.tenant.ID)
	filter := query + "&kind=cross_tenant.denied"

	all := decode[events](t, c.Get(filter), http.StatusOK)
	require.Len(t, all.Items, 3)
	require.Nil(t, all.Next)
	var users []int64
	for _, e := range all.Items {
		require.Equal(t, postgres.AuditCrossTenantDenied, e.Kind)
		require.Equal(t, f.a.tenant.ID, *e.TenantID)
		require.Equal(t, f.a.host, e.Host)
		require.Equal(t, defaultAddr, e.ClientAddr)
		users = append(users, *e.UserID)
	}
	require.Equal(t, []int64{f.admin.ID, f.b.member.ID, f.b.admin.ID}, users, "newest first")

	// One at a time, the pages hold the same events.
	var paged []*postgres.AuditEvent
	path := filter + "&limit=1"
	for {
		page := decode[events](t, c.Get(path), http.StatusOK)
		paged = append(paged, page.Items...)
		if page.Next == nil {
			break
		}
		path = filter + "&limit=1&cursor=" + url.QueryEscape(*page.Next)
	}
	require.Equal(t, all.Items, paged)

	// Time bounds.
	since := url.QueryEscape(start.Format(time.RFC3339))
	require.Len(t, decode[events](t, c.Get(filter+"&since="+since), http.StatusOK).Items, 3)
	require.Empty(t, decode[events](t, c.Get(filter+"&until="+since), http.StatusOK).Items)

	// Other kinds of A's events are there too.
	logins := decode[events](t, c.Get(query+"&kind=login.success"), http.StatusOK)
	require.Len(t, logins.Items, 2)

	for _, q := range []string{
		"since=yesterday", "until=2030-01-01", "tenant_id=abc", "cursor=abc", "limit=0", "limit=x",
	} {
		res := c.Get("/api/v1/audit-events?" + q)
		require.Equal(t, http.StatusBadRequest, res.Status, "%s: %s", q, res.Body)
	}
}

// TestTenantReport checks the usage report: platform administrators see
// each partner's own counts, and no partner host serves it, whatever the
// credential.
func TestTenantReport(t *testing.T) {
	t.Parallel()
	f := setup(t)

	type usage struct {
		PartnerID  int64 `json:"partner_id"`
		Collectors int64 `json:"collectors"`
	}
	res := f.cookie(t, publicHost, f.admin).Get("/api/v1/reports/tenants")
	list := decode[struct{ Items []usage }](t, res, http.StatusOK)
	counts := map[int64]int64{}
	for _, u := range list.Items {
		counts[u.PartnerID] = u.Collectors
	}
	for _, p := range []*partner{f.a, f.b} {
		all := decode[collectorList](t, f.bearer(t, p.host, p.admin).Get("/api/v1/collectors?limit=200"), http.StatusOK)
		require.Equal(t, int64(len(all.Items)), counts[p.tenant.ID], p.tenant.Schema)
	}

	for _, c := range []client{f.bearer(t, f.a.host, f.a.admin), f.cookie(t, f.a.host, f.a.admin), f.cookie(t, f.b.host, f.b.member)} {
		requireError(t, c.Get("/api/v1/reports/tenants"), http.StatusNotFound, "not_found")
	}
}
