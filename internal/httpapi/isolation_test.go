package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/xatlabs/xat/internal/httpapi"
	"github.com/xatlabs/xat/internal/postgres"
	"github.com/xatlabs/xat/tenancy"
	"github.com/xatlabs/xat/tenancy/tenancytest"
)

// probe is one request of the cross-tenant matrix.
type probe struct {
	method, path string
	body         any
}

func (p probe) String() string { return p.method + " " + p.path }

// objectProbes are the requests that name a collector and a token by id.
func objectProbes(collectorID, tokenID int64) []probe {
	c := "/api/v1/collectors/" + itoa(collectorID)
	return []probe{
		{http.MethodGet, c, nil},
		{http.MethodPatch, c, obj{"site_name": "taken over"}},
		{http.MethodDelete, c, nil},
		{http.MethodDelete, "/api/v1/tokens/" + itoa(tokenID), nil},
	}
}

// otherProbes are the partner routes that name no object.
func otherProbes(platformID int64) []probe {
	return []probe{
		{http.MethodGet, "/api/v1/collectors", nil},
		{http.MethodGet, "/api/v1/tokens", nil},
		{http.MethodGet, "/api/v1/platforms", nil},
		{http.MethodGet, "/api/v1/me", nil},
		{http.MethodPost, "/api/v1/tokens", obj{"name": "taken over"}},
		{http.MethodPost, "/api/v1/collectors", obj{
			"site_name": "taken over", "machine_name": "taken over", "platform_id": platformID,
		}},
	}
}

// credential is one way a user authenticates.
type credential struct {
	name string
	user *user
	via  string // "token" or "session", as the audit trail says
}

func (c credential) on(f *fixture, t *testing.T, host string) client {
	if c.via == "token" {
		return f.bearer(t, host, c.user)
	}
	return f.cookie(t, host, c.user)
}

func credentials(p *partner) []credential {
	return []credential{
		{"admin token", p.admin, "token"},
		{"admin session", p.admin, "session"},
		{"member token", p.member, "token"},
		{"member session", p.member, "session"},
	}
}

// snapshot is what partner p holds, seen through its administrator's
// token.
type snapshot struct {
	collectors []*postgres.Collector
	tokens     []*postgres.APIToken // last use left out: using a token sets it
}

func (f *fixture) snapshot(t *testing.T, p *partner) snapshot {
	t.Helper()
	var s snapshot
	res := f.bearer(t, p.host, p.admin).Get("/api/v1/collectors?limit=200")
	s.collectors = decode[collectorList](t, res, http.StatusOK).Items
	for _, u := range []*user{p.admin, p.member} {
		res := f.bearer(t, p.host, u).Get("/api/v1/tokens")
		for _, tok := range decode[tokenList](t, res, http.StatusOK).Items {
			tok.LastUsedAt = nil
			s.tokens = append(s.tokens, tok)
		}
	}
	return s
}

// TestCrossTenantMatrix uses every credential of partner B on every
// partner route, against A's objects: on B's own host, where A's ids must
// look like ids that do not exist, and on A's host, where B's credentials
// must be refused and the refusal audited. A's data must come out as it
// went in.
func TestCrossTenantMatrix(t *testing.T) {
	t.Parallel()
	forGuards(t, func(t *testing.T, guard tenancy.Guard) {
		f := setupGuard(t, guard)
		a, b := f.a, f.b

		// A's collectors so far share their ids with B's (each schema
		// counts from 1); these two have ids B's schema does not hold yet,
		// so an answer about them on B's host can only be about A's rows.
		// Token ids are global.
		targets := []struct{ collector, token int64 }{
			{f.newCollector(t, a, a.admin, "target-admin").ID, a.admin.tokenID},
			{f.newCollector(t, a, a.member, "target-member").ID, a.member.tokenID},
		}
		before := f.snapshot(t, a)
		const missing = 1 << 40

		t.Run("B's host, A's ids", func(t *testing.T) {
			for _, cred := range credentials(b) {
				for _, target := range targets {
					for i, p := range objectProbes(target.collector, target.token) {
						got := cred.on(f, t, b.host).Do(p.method, p.path, p.body)
						absent := objectProbes(missing, missing)[i]
						want := cred.on(f, t, b.host).Do(absent.method, absent.path, absent.body)
						require.Equal(t, http.StatusNotFound, got.Status, "%s with %s: %s", p, cred.name, got.Body)
						require.Equal(t, want.Status, got.Status, "%s with %s", p, cred.name)
						require.Equal(t, string(want.Body), string(got.Body), "%s with %s", p, cred.name)
					}
				}
			}
		})

		t.Run("B's host, lists", func(t *testing.T) {
			for _, cred := range credentials(b) {
				for _, p := range otherProbes(f.platform) {
					res := cred.on(f, t, b.host).Do(p.method, p.path, p.body)
					require.Less(t, res.Status, 300, "%s with %s: %s", p, cred.name, res.Body)
					require.NotContains(t, string(res.Body), a.tenant.Schema, "%s with %s", p, cred.name)
					require.NotContains(t, string(res.Body), a.admin.Email, "%s with %s", p, cred.name)
				}
				tokens := decode[tokenList](t, cred.on(f, t, b.host).Get("/api/v1/tokens"), http.StatusOK)
				for _, tok := range tokens.Items {
					require.Equal(t, b.tenant.ID, tok.TenantID)
					require.Equal(t, cred.user.ID, tok.UserID)
				}
			}
		})

		t.Run("A's host", func(t *testing.T) {
			var probes []probe
			for _, target := range targets {
				probes = append(probes, objectProbes(target.collector, target.token)...)
			}
			probes = append(probes, objectProbes(missing, missing)...)
			probes = append(probes, otherProbes(f.platform)...)

			for _, cred := range credentials(b) {
				var first *tenancytest.Response
				for _, p := range probes {
					res := cred.on(f, t, a.host).Do(p.method, p.path, p.body)
					requireError(t, res, http.StatusForbidden, "forbidden")
					// Every refusal reads the same, whether the id exists or not.
					if first == nil {
						first = res
					}
					require.Equal(t, string(first.Body), string(res.Body), "%s with %s", p, cred.name)
				}
				f.requireDenial(t, a.tenant.ID, cred.user.ID, a.host, defaultAddr, cred.via)
			}
		})

		require.Equal(t, before, f.snapshot(t, a), "A's data changed")
		for _, u := range []*user{a.admin, a.member} {
			require.Equal(t, u.ID, requireMe(t, f.bearer(t, a.host, u)).User.ID, "A's tokens work")
		}
	})
}

// TestConcurrentPartners sends many requests at once, for many partners
// and users, each with its own credential on its own host: every answer
// holds only that partner's data, and a member's only its own.
func TestConcurrentPartners(t *testing.T) {
	t.Parallel()
	forGuards(t, func(t *testing.T, guard tenancy.Guard) {
		f := setupGuard(t, guard)
		partners := []*partner{f.a, f.b}
		for len(partners) < 8 {
			partners = append(partners, f.newPartner(t))
		}

		// visible is what each user may see: its own collectors, or for an
		// administrator all of its partner's.
		type seat struct {
			p       *partner
			u       *user
			visible []int64
		}
		var seats []seat
		for _, p := range partners {
			all := slices.Concat(p.admin.collectors, p.member.collectors)
			seats = append(seats,
				seat{p, p.admin, ids(all)},
				seat{p, p.member, ids(p.member.collectors)})
		}

		const workers, requests = 32, 25
		errs := make(chan error, workers*requests)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(w), 0))
				for range requests {
					s := seats[rng.IntN(len(seats))]
					if err := checkSeat(f, t, s.p, s.u, s.visible, rng); err != nil {
						errs <- err
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
}

// checkSeat sends one random request as u on p's host and checks that the
// answer holds exactly what u may see of p. It reports instead of failing,
// since it runs outside the test's goroutine.
func checkSeat(
	f *fixture,
	t *testing.T,
	p *partner,
	u *user,
	visible []int64,
	rng *rand.Rand,
) error {
	c := f.bearer(t, p.host, u)
	if rng.IntN(2) == 0 {
		c = f.cookie(t, p.host, u)
	}
	var items []*postgres.Collector
	if rng.IntN(2) == 0 {
		res := c.Get("/api/v1/collectors")
		if res.Status != http.StatusOK {
			return fmt.Errorf("list on %s: %d %s", p.tenant.Schema, res.Status, res.Body)
		}
		var list collectorList
		if err := json.Unmarshal(res.Body, &list); err != nil {
			return err
		}
		items = list.Items
		if got := ids(items); !slices.Equal(got, visible) {
			return fmt.Errorf("list on %s as %d: ids %v, want %v", p.tenant.Schema, u.ID, got, visible)
		}
	} else {
		id := visible[rng.IntN(len(visible))]
		res := c.Get("/api/v1/collectors/" + itoa(id))
		if res.Status != http.StatusOK {
			return fmt.Errorf("get %d on %s: %d %s", id, p.tenant.Schema, res.Status, res.Body)
		}
		var one postgres.Collector
		if err := json.Unmarshal(res.Body, &one); err != nil {
			return err
		}
		items = []*postgres.Collector{&one}
	}
	for _, it := range items {
		if !strings.HasPrefix(it.MachineName, p.tenant.Schema+"-") {
			return fmt.Errorf("%s served collector %q", p.tenant.Schema, it.MachineName)
		}
	}
	return nil
}

func ids(cs []*postgres.Collector) []int64 {
	out := make([]int64, len(cs))
	for i, c := range cs {
		out[i] = c.ID
	}
	slices.Sort(out)
	return out
}

// TestTenantPoolShare fills one partner's share of the connection pool and
// checks that its next request is told to come back later while another
// partner is served as usual.
func TestTenantPoolShare(t *testing.T) {
	t.Parallel()
	f := setup(t)

	// A DB over the same pools, with a share of one connection per partner
	// and a short wait for it.
	cfg := f.db.Config()
	cfg.MaxConnsPerTenant = 1
	cfg.TenantWait = 100 * time.Millisecond
	small := tenancy.New(cfg, f.db.ServePool(), adminPool(t, f.db))
	t.Cleanup(small.Close) // its lanes
	handler, _ := f.server(t, small, httpapi.Config{RetryAfter: 3 * time.Second})

	entered, release, done := make(chan struct{}), make(chan struct{}), make(chan error)
	go func() {
		ctx := tenancy.WithTenant(context.Background(), f.a.tenant)
		done <- small.InTenant(ctx, func(context.Context, pgx.Tx) error {
			close(entered)
			<-release
			return nil
		})
	}()
	<-entered

	a := newClient(t, handler, f.a.host).WithBearer(f.a.admin.token)
	b := newClient(t, handler, f.b.host).WithBearer(f.b.admin.token)
	res := a.Get("/api/v1/collectors")
	requireError(t, res, http.StatusServiceUnavailable, "busy")
	require.Equal(t, "3", res.Header.Get("Retry-After"))
	require.Equal(t, http.StatusOK, b.Get("/api/v1/collectors").Status)

	close(release)
	require.NoError(t, <-done)
	require.Equal(t, http.StatusOK, a.Get("/api/v1/collectors").Status)
}

// adminPool opens a pool on db's database as its owner. tenancytest hands
// out only single admin connections, so the pool is built from their
// settings.
func adminPool(t *testing.T, db *tenancy.DB) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(tenancytest.ConnString(t))
	require.NoError(t, err)
	cfg.ConnConfig.Database = tenancytest.AdminConn(t, db).Config().Database
	cfg.MaxConns = 2
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}
