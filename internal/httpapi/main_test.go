package httpapi_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/xatlabs/xat/internal/auth"
	"github.com/xatlabs/xat/internal/httpapi"
	"github.com/xatlabs/xat/internal/postgres"
	"github.com/xatlabs/xat/migrations"
	"github.com/xatlabs/xat/tenancy"
	"github.com/xatlabs/xat/tenancy/tenancytest"
)

func TestMain(m *testing.M) { tenancytest.Run(m) }

// publicHost is the platform's own host in every test server.
const publicHost = "admin.xat.test"

// password is every test user's password.
const password = "a test password"

// passwordHash is password hashed cheaply, as the test servers verify it.
var passwordHash = func() string {
	h, err := auth.TestHasher.Hash(password)
	if err != nil {
		panic(err)
	}
	return h
}()

var guards = []tenancy.Guard{tenancy.GuardRole, tenancy.GuardPolicy}

// forGuards runs test once under each database guard, in parallel.
func forGuards(t *testing.T, test func(t *testing.T, guard tenancy.Guard)) {
	for _, g := range guards {
		t.Run(g.String(), func(t *testing.T) {
			t.Parallel()
			test(t, g)
		})
	}
}

// fixture is what most tests start from: a server over a real database,
// two partners A and B of the test's own, each with an administrator and a
// member, and a platform administrator.
type fixture struct {
	db       *tenancy.DB
	store    *postgres.Store
	handler  http.Handler
	resolver *tenancy.Resolver
	platform int64 // a platform id for new collectors

	a, b  *partner
	admin *user // platform administrator; its session is for the public host

	logs io.Writer // if set, servers built later also log JSON lines here
}

// partner is a partner of a fixture, with its users.
type partner struct {
	tenant        *tenancy.Tenant
	host          string
	admin, member *user
}

// user is a test user. On a partner, it has a token and a session for that
// partner and the collectors it made there, named after the partner's
// schema so that any response can be checked for other partners' data.
type user struct {
	*postgres.User
	token      string
	tokenID    int64
	session    *http.Cookie
	collectors []*postgres.Collector
}

func setup(t *testing.T) *fixture {
	t.Helper()
	return setupGuard(t, tenancy.GuardRole)
}

func setupGuard(t *testing.T, guard tenancy.Guard) *fixture {
	t.Helper()
	db := openDB(t, guard)
	f := &fixture{db: db, store: postgres.New(db)}
	f.handler, f.resolver = f.server(t, db, httpapi.Config{})

	platforms, err := f.store.Platforms(context.Background())
	require.NoError(t, err)
	require.NotEmpty(t, platforms)
	f.platform = platforms[0].ID

	f.a, f.b = f.newPartner(t), f.newPartner(t)
	f.admin = f.newUser(t, true)
	f.admin.session = login(t, f.handler, publicHost, f.admin.Email)
	return f
}

// openDB returns the test database migrated with XAT's migrations, shared
// by every test of the binary that asks for the same guard.
func openDB(t *testing.T, guard tenancy.Guard) *tenancy.DB {
	t.Helper()
	shared, err := migrations.Shared()
	require.NoError(t, err)
	tenant, err := migrations.Tenant()
	require.NoError(t, err)
	return tenancytest.Open(t, tenancytest.Options{
		Shared: shared,
		Tenant: tenant,
		Guard:  guard,
		Name:   "xat",
	})
}

// server builds an API server over db with its own resolver and login
// limits. Logins hash cheaply. The server's log goes to the test's output,
// and a test fails if the server logged an error: no test expects a 500.
func (f *fixture) server(
	t *testing.T,
	db *tenancy.DB,
	cfg httpapi.Config,
) (http.Handler, *tenancy.Resolver) {
	t.Helper()
	if cfg.Hasher == nil {
		cfg.Hasher = &auth.TestHasher
	}
	if cfg.LoginLimits.PerAddr == 0 {
		// Every test logs in from the test client's one address, and the
		// database counts for all servers: without this, the whole run
		// would share one address's allowance.
		cfg.LoginLimits.PerAddr = 1_000_000
	}
	var h slog.Handler = slog.NewTextHandler(t.Output(), nil)
	if f.logs != nil {
		h = slog.NewMultiHandler(h, slog.NewJSONHandler(f.logs, nil))
	}
	errs := &errorCounter{Handler: h, n: new(atomic.Int64)}
	t.Cleanup(func() {
		if n := errs.n.Load(); n > 0 {
			t.Errorf("the server logged %d errors", n)
		}
	})
	res := tenancy.NewResolver(db, tenancy.ResolverConfig{PublicHosts: []string{publicHost}})
	return httpapi.New(cfg, db, postgres.New(db), res, slog.New(errs)), res
}

// errorCounter counts the error records that pass through it, in n.
type errorCounter struct {
	slog.Handler
	n *atomic.Int64
}

func (h *errorCounter) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		h.n.Add(1)
	}
	return h.Handler.Handle(ctx, r)
}

func (h *errorCounter) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &errorCounter{Handler: h.Handler.WithAttrs(attrs), n: h.n}
}

func (h *errorCounter) WithGroup(name string) slog.Handler {
	return &errorCounter{Handler: h.Handler.WithGroup(name), n: h.n}
}

// newPartner provisions a partner with an administrator and a member.
func (f *fixture) newPartner(t *testing.T) *partner {
	t.Helper()
	p := &partner{}
	p.tenant, p.host = newTenant(t, f.db)
	p.admin = f.addUser(t, p, postgres.RoleAdmin)
	p.member = f.addUser(t, p, postgres.RoleMember)
	return p
}

// newTenant provisions a partner for one test and returns it with its
// domain. Unlike tenancytest.NewTenant it leaves the partner in place when
// the test ends; the test database goes when the binary's tests are done.
//
// TODO: dropping a partner's schema locks public.users and
// public.platforms, which its tables reference, and deadlocks with other
// partners' writes that check those references; tests that delete a
// partner therefore run alone, not in parallel.
//
// TODO: under the role guard, a partner's first requests after it is
// provisioned while other partners are served can fail with "permission
// denied to set role" (a 500, which fails the test): some pooled backends
// keep a role membership list that lacks the new role. Rare, and seen
// mostly under -race.
func newTenant(t *testing.T, db *tenancy.DB) (*tenancy.Tenant, string) {
	t.Helper()
	id := randomHex(5)
	domain := "t-" + id + ".test"
	tn, err := db.CreateTenant(context.Background(), tenancy.NewTenant{
		Name:   "Test " + id,
		Schema: db.Config().SchemaPrefix + "t_" + id,
		Domain: domain,
	})
	require.NoError(t, err)
	return tn, domain
}

// newUser creates an account with the test password.
func (f *fixture) newUser(t *testing.T, platformAdmin bool) *user {
	t.Helper()
	u, err := f.store.CreateUser(context.Background(), uniqueEmail(), passwordHash, platformAdmin)
	require.NoError(t, err)
	return &user{User: u}
}

// addUser makes a new user a member of p in role, logs it in on p's host,
// has it create a personal token and two collectors there.
func (f *fixture) addUser(t *testing.T, p *partner, role string) *user {
	t.Helper()
	u := f.newUser(t, false)
	require.NoError(t, f.store.AddMember(context.Background(), p.tenant.ID, u.ID, role))
	u.session = login(t, f.handler, p.host, u.Email)

	res := f.cookie(t, p.host, u).Post("/api/v1/tokens", obj{"name": "test"})
	require.Equal(t, http.StatusCreated, res.Status, "%s", res.Body)
	var tok struct {
		ID    int64  `json:"id"`
		Token string `json:"token"`
	}
	res.JSON(t, &tok)
	u.token, u.tokenID = tok.Token, tok.ID

	for i := range 2 {
		u.collectors = append(u.collectors, f.newCollector(t, p, u, fmt.Sprintf("%s-%d", role, i)))
	}
	return u
}

// newCollector creates a collector of u on p, its names marked with p's
// schema.
func (f *fixture) newCollector(t *testing.T, p *partner, u *user, name string) *postgres.Collector {
	t.Helper()
	res := f.bearer(t, p.host, u).Post("/api/v1/collectors", obj{
		"site_name":    p.tenant.Schema + "-site",
		"machine_name": p.tenant.Schema + "-" + name,
		"platform_id":  f.platform,
	})
	require.Equal(t, http.StatusCreated, res.Status, "%s", res.Body)
	var c postgres.Collector
	res.JSON(t, &c)
	return &c
}

// obj is a JSON object, for request bodies.
type obj = map[string]any

// client is a tenancytest.Client with a shorthand for each method.
type client struct{ *tenancytest.Client }

func newClient(t *testing.T, h http.Handler, host string) client {
	return client{tenancytest.NewClient(t, h, host)}
}

func (c client) Get(path string) *tenancytest.Response {
	return c.Do(http.MethodGet, path, nil)
}

func (c client) Delete(path string) *tenancytest.Response {
	return c.Do(http.MethodDelete, path, nil)
}

func (c client) Post(path string, body any) *tenancytest.Response {
	return c.Do(http.MethodPost, path, body)
}

func (c client) Patch(path string, body any) *tenancytest.Response {
	return c.Do(http.MethodPatch, path, body)
}

func (c client) WithBearer(token string) client    { return client{c.Client.WithBearer(token)} }
func (c client) WithCookie(ck *http.Cookie) client { return client{c.Client.WithCookie(ck)} }
func (c client) WithRemoteAddr(a string) client    { return client{c.Client.WithRemoteAddr(a)} }

func (c client) WithHeader(key, value string) client {
	return client{c.Client.WithHeader(key, value)}
}

// client returns an anonymous client of host.
func (f *fixture) client(t *testing.T, host string) client {
	return newClient(t, f.handler, host)
}

// bearer returns a client of host that sends u's personal token.
func (f *fixture) bearer(t *testing.T, host string, u *user) client {
	return f.client(t, host).WithBearer(u.token)
}

// cookie returns a client of host that sends u's session cookie.
func (f *fixture) cookie(t *testing.T, host string, u *user) client {
	return f.client(t, host).WithCookie(u.session)
}

// login logs email in on host and returns the session cookie.
func login(t *testing.T, h http.Handler, host, email string) *http.Cookie {
	t.Helper()
	res := newClient(t, h, host).Post("/api/v1/auth/login", loginBody(email, password))
	require.Equal(t, http.StatusOK, res.Status, "login on %s: %s", host, res.Body)
	c := res.Cookie("xat_session")
	require.NotNil(t, c)
	return &http.Cookie{Name: c.Name, Value: c.Value}
}

func loginBody(email, pw string) obj {
	return obj{"email": email, "password": pw}
}

// sessionCookie returns a cookie carrying a session id.
func sessionCookie(value string) *http.Cookie {
	return &http.Cookie{Name: "xat_session", Value: value}
}

// list is the body of every list response.
type list[T any] struct {
	Items []T     `json:"items"`
	Next  *string `json:"next"`
}

type (
	collectorList = list[*postgres.Collector]
	tokenList     = list[*postgres.APIToken]
)

// errorBody is the body of every API error.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// requireError checks that res is an API error with status and code, and
// returns its message.
func requireError(t *testing.T, res *tenancytest.Response, status int, code string) string {
	t.Helper()
	require.Equal(t, status, res.Status, "body: %s", res.Body)
	var body errorBody
	res.JSON(t, &body)
	require.Equal(t, code, body.Error.Code, "body: %s", res.Body)
	require.NotEmpty(t, body.Error.Message)
	return body.Error.Message
}

// decode returns the JSON body of a response with status want.
func decode[T any](t *testing.T, res *tenancytest.Response, want int) T {
	t.Helper()
	require.Equal(t, want, res.Status, "body: %s", res.Body)
	var v T
	res.JSON(t, &v)
	return v
}

// collectors returns the first page of collectors c sees.
func collectors(t *testing.T, c client) []*postgres.Collector {
	t.Helper()
	return decode[collectorList](t, c.Get("/api/v1/collectors"), http.StatusOK).Items
}

// requireMe returns who c is, as GET /api/v1/me says.
func requireMe(t *testing.T, c client) me {
	t.Helper()
	return decode[me](t, c.Get("/api/v1/me"), http.StatusOK)
}

// requireUnknownHost checks that c's host serves no partner.
func requireUnknownHost(t *testing.T, c client) {
	t.Helper()
	requireError(t, c.Get("/api/v1/me"), http.StatusNotFound, tenancy.CodeUnknownHost)
}

// me is the body of GET /api/v1/me.
type me struct {
	User struct {
		ID    int64  `json:"id"`
		Email string `json:"email"`
	} `json:"user"`
	Partner *tenancy.Tenant `json:"partner"`
	Role    string          `json:"role"`
}

// crossTenantDenials returns the cross-tenant refusals recorded for the
// partner with id tenantID.
func (f *fixture) crossTenantDenials(t *testing.T, tenantID int64) []*postgres.AuditEvent {
	t.Helper()
	events, _, err := f.store.AuditEvents(context.Background(), postgres.AuditFilter{
		TenantID: &tenantID,
		Kind:     postgres.AuditCrossTenantDenied,
	}, postgres.Page{Limit: postgres.MaxLimit})
	require.NoError(t, err)
	return events
}

// requireDenial checks that the audit trail holds a cross-tenant refusal
// of a user's credential (via "token" or "session") on the partner with id
// tenantID, at host, from client address addr.
func (f *fixture) requireDenial(t *testing.T, tenantID, userID int64, host, addr, via string) {
	t.Helper()
	for _, e := range f.crossTenantDenials(t, tenantID) {
		if e.UserID != nil && *e.UserID == userID && e.Host == host &&
			e.ClientAddr == addr && e.Detail["via"] == via {
			return
		}
	}
	t.Fatalf("no refusal of user %d via %s at %s from %s", userID, via, host, addr)
}

func uniqueEmail() string {
	return "user-" + randomHex(6) + "@example.test"
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func itoa(id int64) string { return strconv.FormatInt(id, 10) }

// defaultAddr is the client address of tenancytest's in-process requests.
const defaultAddr = "192.0.2.1"
