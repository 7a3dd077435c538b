package httpapi_test

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/xatlabs/xat/internal/httpapi"
	"github.com/xatlabs/xat/internal/postgres"
	"github.com/xatlabs/xat/tenancy"
	"github.com/xatlabs/xat/tenancy/cache"
	"github.com/xatlabs/xat/tenancy/tenancytest"
)

type platformList = list[*postgres.Platform]

func platformNames(t *testing.T, c client) []string {
	t.Helper()
	var names []string
	for _, p := range decode[platformList](t, c.Get("/api/v1/platforms"), http.StatusOK).Items {
		names = append(names, p.Name)
	}
	return names
}

// TestPlatformsCached checks that the platform list is served from the
// shared cache, on public and partner hosts alike, and refreshed when a
// platform is created through the API.
func TestPlatformsCached(t *testing.T) {
	t.Parallel()
	f := setup(t)
	h, _ := f.server(t, f.db, httpapi.Config{Cache: cache.NewMemory(cache.MemoryConfig{})})
	admin := newClient(t, h, publicHost).WithCookie(f.admin.session)
	member := newClient(t, h, f.a.host).WithBearer(f.a.member.token)

	before := platformNames(t, admin)
	require.Equal(t, before, platformNames(t, member))

	// Written behind the API's back: the cached list does not show it.
	direct := "Direct " + randomHex(4)
	_, err := f.store.CreatePlatform(context.Background(), direct)
	require.NoError(t, err)
	require.NotContains(t, platformNames(t, admin), direct)
	require.NotContains(t, platformNames(t, member), direct)

	viaAPI := "API " + randomHex(4)
	res := admin.Post("/api/v1/platforms", obj{"name": viaAPI})
	require.Equal(t, http.StatusCreated, res.Status, "%s", res.Body)
	for _, c := range []client{admin, member} {
		names := platformNames(t, c)
		require.Contains(t, names, direct)
		require.Contains(t, names, viaAPI)
	}
}

// TestAnalysisCache checks that a cached analysis is served only to those
// who may see it: never on another partner's host for the same id, never
// to another member of the partner, and not once it is deleted.
func TestAnalysisCache(t *testing.T) {
	t.Parallel()
	f := setupData(t, tenancy.GuardRole, httpapi.Config{Cache: cache.NewMemory(cache.MemoryConfig{})})
	f.worker(t)
	good, err := os.ReadFile("../capture/testdata/two_hosts.csv.gz")
	require.NoError(t, err)
	analyse := func(p *partner) *postgres.Analysis {
		c := f.as(t, p, p.member)
		d := decode[postgres.CollectedData](t, c.Post(uploadPath(p.member.collectors[0].ID), unsized{bytes.NewReader(good)}), http.StatusCreated)
		an := decode[postgres.Analysis](t, c.Post("/api/v1/analyses", obj{"data_id": d.ID}), http.StatusAccepted)
		done := finished(t, c, an.ID)
		require.Equal(t, postgres.AnalysisDone, done.Status, "error: %v", done.Error)
		return done
	}
	a, b := f.a, f.b
	anA := analyse(a)

	// Changed behind the API's back, the result still reads as cached.
	conn := tenancytest.AdminConn(t, f.db)
	_, err = conn.Exec(context.Background(),
		`UPDATE `+a.tenant.Schema+`.capture_analyses SET result = '{"changed": true}' WHERE id = $1`, anA.ID)
	require.NoError(t, err)
	for _, u := range []*user{a.member, a.admin} {
		got := decode[postgres.Analysis](t, f.as(t, a, u).Get(analysisPath(anA.ID)), http.StatusOK)
		require.JSONEq(t, string(anA.Result), string(got.Result))
	}

	// Another member of A, and B with the same id, get what a missing
	// analysis gets.
	other := f.addUser(t, a, postgres.RoleMember)
	requireError(t, f.as(t, a, other).Get(analysisPath(anA.ID)), http.StatusNotFound, "not_found")
	for _, u := range []*user{b.admin, b.member} {
		requireError(t, f.as(t, b, u).Get(analysisPath(anA.ID)), http.StatusNotFound, "not_found")
	}

	// B's own analysis with that id is B's, and A's stays A's.
	anB := analyse(b)
	require.Equal(t, anA.ID, anB.ID, "both partners number their analyses from 1")
	got := decode[postgres.Analysis](t, f.as(t, b, b.admin).Get(analysisPath(anB.ID)), http.StatusOK)
	require.Equal(t, b.member.ID, got.OwnerID)
	got = decode[postgres.Analysis](t, f.as(t, a, a.admin).Get(analysisPath(anA.ID)), http.StatusOK)
	require.Equal(t, a.member.ID, got.OwnerID)

	// Deleting the data deletes the analysis, cached or not.
	res := f.as(t, a, a.member).Delete(dataPath(anA.DataID))
	require.Equal(t, http.StatusNoContent, res.Status, "%s", res.Body)
	requireError(t, f.as(t, a, a.member).Get(analysisPath(anA.ID)), http.StatusNotFound, "not_found")
}
