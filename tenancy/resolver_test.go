package tenancy_test

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/xatlabs/xat/tenancy"
	"github.com/xatlabs/xat/tenancy/tenancytest"
)

// waitFor is how long a change in the registry may take to reach a
// listening resolver in these tests.
const waitFor = 10 * time.Second

func randomName(prefix string) string {
	b := make([]byte, 5)
	crand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// domainOf returns the primary domain of tn.
func domainOf(t *testing.T, db *tenancy.DB, tn *tenancy.Tenant) string {
	t.Helper()
	domains, err := db.Domains(context.Background(), tn.Schema)
	require.NoError(t, err)
	require.NotEmpty(t, domains)
	return domains[0].Domain
}

// listenConnString names db's database on the test server, with an
// application_name that lets a test find the listener's backend.
func listenConnString(t *testing.T, db *tenancy.DB, appName string) string {
	t.Helper()
	base := tenancytest.ConnString(t)
	dbname := db.ServePool().Config().ConnConfig.Database
	if strings.HasPrefix(base, "postgres://") || strings.HasPrefix(base, "postgresql://") {
		u, err := url.Parse(base)
		require.NoError(t, err)
		u.Path, u.RawPath = "/"+dbname, ""
		q := u.Query()
		q.Set("application_name", appName)
		u.RawQuery = q.Encode()
		return u.String()
	}
	// In the keyword/value form a later keyword wins.
	return base + " dbname=" + dbname + " application_name=" + appName
}

// startListening runs rs.Listen until the test ends and waits until it
// listens.
func startListening(t *testing.T, rs *tenancy.Resolver, connString string) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- rs.Listen(t.Context(), connString) }()
	t.Cleanup(func() { require.NoError(t, <-done) })
	require.Eventually(t, rs.Listening, waitFor, 10*time.Millisecond)
}

func TestResolverResolve(t *testing.T) {
	t.Parallel()
	db := openDB(t, tenancy.GuardRole)
	ctx := t.Context()
	a := tenancytest.NewTenant(t, db)
	domain := domainOf(t, db, a)
	rs := tenancy.NewResolver(db, tenancy.ResolverConfig{
		PublicHosts: []string{"Platform.test.", "localhost", "127.0.0.1", "[::1]"},
	})

	t.Run("tenant", func(t *testing.T) {
		upper := strings.ToUpper(domain)
		hosts := []string{domain, upper, domain + ".", domain + ":8443", upper + ".:443", " " + domain}
		for _, host := range hosts {
			res, err := rs.Resolve(ctx, host)
			require.NoError(t, err, host)
			require.False(t, res.Public)
			require.Equal(t, a.ID, res.Tenant.ID, host)
			require.Equal(t, a.Schema, res.Tenant.Schema)
			require.Equal(t, domain, res.Host)
		}
	})

	t.Run("public", func(t *testing.T) {
		hosts := []string{
			"platform.test", "PLATFORM.test.:8080", "localhost:3000",
			"127.0.0.1", "127.0.0.1:8080", "[::1]:8080", "[::1]",
		}
		for _, host := range hosts {
			res, err := rs.Resolve(ctx, host)
			require.NoError(t, err, host)
			require.True(t, res.Public, host)
			require.Nil(t, res.Tenant)
		}
	})

	t.Run("unknown", func(t *testing.T) {
		for _, host := range []string{randomName("nobody-") + ".test", "sub." + domain, "test"} {
			_, err := rs.Resolve(ctx, host)
			require.ErrorIs(t, err, tenancy.ErrTenantNotFound, host)
		}
	})

	t.Run("malformed", func(t *testing.T) {
		long := strings.Repeat("a", 60) + "."
		for _, host := range []string{
			"bad host", "a..b", "", " ", ".", "-a.test", "a_b.test", "a/b.test", "a:b:c",
			strings.Repeat(long, 5) + "test",  // over 253 bytes
			strings.Repeat("a", 64) + ".test", // label over 63 bytes
			"10.0.0.1", "[2001:db8::1]:443",   // IPs that are not public hosts
			"acme.test\x00", "acme.test\r\nX: y", // control characters
		} {
			_, err := rs.Resolve(ctx, host)
			require.ErrorIs(t, err, tenancy.ErrMalformedHost, "%q", host)
			require.ErrorIs(t, err, tenancy.ErrInvalidDomain, "%q", host)
		}
	})
}

func TestResolverInactiveTenant(t *testing.T) {
	t.Parallel()
	db := openDB(t, tenancy.GuardRole)
	ctx := t.Context()
	a := tenancytest.NewTenant(t, db)
	_, err := db.SetActive(ctx, a.Schema, false)
	require.NoError(t, err)
	rs := tenancy.NewResolver(db, tenancy.ResolverConfig{})

	res, err := rs.Resolve(ctx, domainOf(t, db, a))
	require.ErrorIs(t, err, tenancy.ErrTenantInactive)
	require.Equal(t, a.ID, res.Tenant.ID, "the refused tenant is named")

	tn, err := rs.ResolveSchema(ctx, a.Schema)
	require.ErrorIs(t, err, tenancy.ErrTenantInactive)
	require.Equal(t, a.ID, tn.ID)
}

func TestResolverResolveSchema(t *testing.T) {
	t.Parallel()
	db := openDB(t, tenancy.GuardRole)
	ctx := t.Context()
	a := tenancytest.NewTenant(t, db)
	rs := tenancy.NewResolver(db, tenancy.ResolverConfig{})

	tn, err := rs.ResolveSchema(ctx, a.Schema)
	require.NoError(t, err)
	require.Equal(t, a.ID, tn.ID)

	for _, schema := range []string{"t_nobody_" + randomName(""), "public", "pg_catalog", "Bad!", ""} {
		_, err := rs.ResolveSchema(ctx, schema)
		require.ErrorIs(t, err, tenancy.ErrTenantNotFound, schema)
	}

	// The second answer came from the cache.
	_, err = rs.ResolveSchema(ctx, a.Schema)
	require.NoError(t, err)
	require.Equal(t, uint64(1), rs.Stats().Hits)
}

func TestResolverCache(t *testing.T) {
	t.Parallel()
	db := openDB(t, tenancy.GuardRole)
	ctx := t.Context()
	a := tenancytest.NewTenant(t, db)
	domain := domainOf(t, db, a)
	rs := tenancy.NewResolver(db, tenancy.ResolverConfig{})

	res, err := rs.Resolve(ctx, domain)
	require.NoError(t, err)
	require.Equal(t, tenancy.ResolverStats{Hits: 0, Misses: 1, Entries: 1}, rs.Stats())

	// The caller owns its copy: changing it changes no later answer.
	res.Tenant.Schema = "t_changed"
	res, err = rs.Resolve(ctx, strings.ToUpper(domain)+":443")
	require.NoError(t, err)
	require.Equal(t, a.Schema, res.Tenant.Schema)
	require.Equal(t, tenancy.ResolverStats{Hits: 1, Misses: 1, Entries: 1}, rs.Stats())

	// Negative answers are cached too; malformed and public hosts never
	// reach the cache.
	unknown := randomName("nobody-") + ".test"
	for range 2 {
		_, err = rs.Resolve(ctx, unknown)
		require.ErrorIs(t, err, tenancy.ErrTenantNotFound)
	}
	_, err = rs.Resolve(ctx, "a..b")
	require.ErrorIs(t, err, tenancy.ErrMalformedHost)
	require.Equal(t, tenancy.ResolverStats{Hits: 2, Misses: 2, Entries: 2}, rs.Stats())

	rs.Invalidate()
	require.Zero(t, rs.Stats().Entries)
	_, err = rs.Resolve(ctx, domain)
	require.NoError(t, err)
	require.Equal(t, uint64(3), rs.Stats().Misses)
}

func TestResolverCacheBounded(t *testing.T) {
	t.Parallel()
	db := openDB(t, tenancy.GuardRole)
	ctx := t.Context()
	a := tenancytest.NewTenant(t, db)
	domain := domainOf(t, db, a)
	const size = 16
	rs := tenancy.NewResolver(db, tenancy.ResolverConfig{CacheSize: size})

	_, err := rs.Resolve(ctx, domain)
	require.NoError(t, err)
	prefix := randomName("flood-")
	for i := range 300 {
		_, err := rs.Resolve(ctx, fmt.Sprintf("%s-%d.test", prefix, i))
		require.ErrorIs(t, err, tenancy.ErrTenantNotFound)
		require.LessOrEqual(t, rs.Stats().Entries, size)
	}

	// The flood of unknown hosts did not push the known tenant out.
	hits := rs.Stats().Hits
	_, err = rs.Resolve(ctx, domain)
	require.NoError(t, err)
	require.Equal(t, hits+1, rs.Stats().Hits)
}

// TestResolverListen plays two instances that serve the same registry:
// each caches, the registry changes through db, and both see the change
// soon after, while a resolver that does not listen keeps its stale
// answer until its TTL.
func TestResolverListen(t *testing.T) {
	t.Parallel()
	db := openDB(t, tenancy.GuardRole)
	ctx := t.Context()
	a := tenancytest.NewTenant(t, db)
	connString := listenConnString(t, db, randomName("listen_"))

	instances := []*tenancy.Resolver{
		tenancy.NewResolver(db, tenancy.ResolverConfig{TTL: time.Hour}),
		tenancy.NewResolver(db, tenancy.ResolverConfig{TTL: time.Hour}),
	}
	for _, rs := range instances {
		startListening(t, rs, connString)
	}
	deaf := tenancy.NewResolver(db, tenancy.ResolverConfig{TTL: time.Hour})

	// eventually waits until every instance resolves host as check wants.
	eventually := func(host string, check func(tenancy.Resolution, error) bool) {
		t.Helper()
		for _, rs := range instances {
			require.Eventually(t, func() bool {
				res, err := rs.Resolve(ctx, host)
				return check(res, err)
			}, waitFor, 10*time.Millisecond)
		}
	}
	isTenant := func(res tenancy.Resolution, err error) bool {
		return err == nil && res.Tenant.ID == a.ID
	}
	is := func(target error) func(tenancy.Resolution, error) bool {
		return func(_ tenancy.Resolution, err error) bool { return errors.Is(err, target) }
	}

	extra := randomName("extra-") + ".test"
	for _, rs := range append(instances, deaf) {
		_, err := rs.Resolve(ctx, extra)
		require.ErrorIs(t, err, tenancy.ErrTenantNotFound)
	}

	require.NoError(t, db.AddDomain(ctx, a.Schema, extra, false))
	eventually(extra, isTenant)
	_, err := deaf.Resolve(ctx, extra)
	require.ErrorIs(t, err, tenancy.ErrTenantNotFound,
		"the resolver that does not listen still has its cached answer")

	require.NoError(t, db.RemoveDomain(ctx, extra))
	eventually(extra, is(tenancy.ErrTenantNotFound))

	domain := domainOf(t, db, a)
	_, err = db.SetActive(ctx, a.Schema, false)
	require.NoError(t, err)
	eventually(domain, is(tenancy.ErrTenantInactive))
	_, err = db.SetActive(ctx, a.Schema, true)
	require.NoError(t, err)
	eventually(domain, isTenant)
}

// syncBuffer is a log sink that tests read while handlers write.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestResolverListenReconnects kills the listener's backend: the resolver
// logs a warning, reconnects by itself and sees later changes again.
func TestResolverListenReconnects(t *testing.T) {
	t.Parallel()
	db := openDB(t, tenancy.GuardRole)
	ctx := t.Context()
	a := tenancytest.NewTenant(t, db)
	appName := randomName("listen_")
	logs := &syncBuffer{}
	rs := tenancy.NewResolver(db, tenancy.ResolverConfig{
		TTL:    time.Hour,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	startListening(t, rs, listenConnString(t, db, appName))

	extra := randomName("extra-") + ".test"
	_, err := rs.Resolve(ctx, extra)
	require.ErrorIs(t, err, tenancy.ErrTenantNotFound)

	var killed int
	err = tenancytest.AdminConn(t, db).QueryRow(ctx, `
		SELECT count(*)::int FROM (
			SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1) k`,
		appName).Scan(&killed)
	require.NoError(t, err)
	require.Equal(t, 1, killed)

	require.Eventually(t, func() bool {
		return strings.Contains(logs.String(), "level=WARN msg=\"Registry listener failed")
	}, waitFor, 10*time.Millisecond)
	require.Eventually(t, rs.Listening, waitFor, 10*time.Millisecond)

	require.NoError(t, db.AddDomain(ctx, a.Schema, extra, false))
	require.Eventually(t, func() bool {
		res, err := rs.Resolve(ctx, extra)
		return err == nil && res.Tenant.ID == a.ID
	}, waitFor, 10*time.Millisecond)
}

func TestResolverListenBadConnString(t *testing.T) {
	t.Parallel()
	rs := tenancy.NewResolver(&tenancy.DB{}, tenancy.ResolverConfig{})
	err := rs.Listen(t.Context(), "postgres://%zz")
	require.Error(t, err)
	require.False(t, rs.Listening())
}

// TestResolverConcurrent resolves many hosts of many tenants from many
// goroutines, through a cache too small to hold them and while the cache
// is invalidated now and then: every answer names the host's own tenant.
func TestResolverConcurrent(t *testing.T) {
	t.Parallel()
	db := openDB(t, tenancy.GuardRole)
	ctx := t.Context()
	hosts := manyTenantHosts(t, db, 6, 3)
	rs := tenancy.NewResolver(db, tenancy.ResolverConfig{CacheSize: 8})

	stop := make(chan struct{})
	var invalidations sync.WaitGroup
	invalidations.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
				rs.Invalidate()
			}
		}
	})

	const workers, rounds = 48, 200
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range rounds {
				host, want := pickHost(hosts)
				res, err := rs.Resolve(ctx, host)
				switch {
				case want == 0 && !errors.Is(err, tenancy.ErrTenantNotFound):
					errs <- fmt.Errorf("%s: want not found, got %v", host, err)
					return
				case want != 0 && (err != nil || res.Tenant.ID != want):
					errs <- fmt.Errorf("%s: want tenant %d, got %+v, %v", host, want, res.Tenant, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	invalidations.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	st := rs.Stats()
	require.Equal(t, uint64(workers*rounds), st.Hits+st.Misses)
	require.LessOrEqual(t, st.Entries, 8)
}

// manyTenantHosts creates n tenants with perTenant domains each and returns
// every domain with its tenant's id.
func manyTenantHosts(t *testing.T, db *tenancy.DB, n, perTenant int) map[string]int64 {
	t.Helper()
	hosts := make(map[string]int64)
	for range n {
		tn := tenancytest.NewTenant(t, db)
		hosts[domainOf(t, db, tn)] = tn.ID
		for i := 1; i < perTenant; i++ {
			h := randomName("alias-") + ".test"
			require.NoError(t, db.AddDomain(t.Context(), tn.Schema, h, false))
			hosts[h] = tn.ID
		}
	}
	return hosts
}

// pickHost returns a random host among hosts, spelled in one of the ways a
// Host header may spell it, or now and then an unknown host (want 0).
func pickHost(hosts map[string]int64) (host string, want int64) {
	i := rand.IntN(len(hosts) + 1)
	if i == len(hosts) {
		return fmt.Sprintf("unknown-%d.test", rand.IntN(50)), 0
	}
	for h, id := range hosts {
		if i--; i < 0 {
			host, want = h, id
			break
		}
	}
	switch rand.IntN(3) {
	case 1:
		host = strings.ToUpper(host) + "."
	case 2:
		host += ":8443"
	}
	return host, want
}
