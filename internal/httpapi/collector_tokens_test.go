package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/xatlabs/xat/internal/httpapi"
	"github.com/xatlabs/xat/internal/postgres"
	"github.com/xatlabs/xat/tenancy"
	"github.com/xatlabs/xat/tenancy/tenancytest"
)

func tokensPath(collector int64) string { return collectorPath(collector) + "/tokens" }

// collectorTokenList is the body of GET /api/v1/collectors/{id}/tokens.
type collectorTokenList struct {
	Items []*postgres.CollectorToken `json:"items"`
	Next  *string                    `json:"next"`
}

// newCollectorToken makes a token for a collector as c and returns it with
// its plain text.
func newCollectorToken(t *testing.T, c client, collector int64) (*postgres.CollectorToken, string) {
	t.Helper()
	var tok struct {
		postgres.CollectorToken
		Token string `json:"token"`
	}
	res := c.Post(tokensPath(collector), obj{"name": "agent"})
	require.Equal(t, http.StatusCreated, res.Status, "%s", res.Body)
	res.JSON(t, &tok)
	require.True(t, strings.HasPrefix(tok.Token, "xat_col_"), tok.Token)
	return &tok.CollectorToken, tok.Token
}

// TestCollectorTokens manages a collector's tokens and uploads with one:
// a token uploads for its own collector, on its own partner's host, and
// does nothing else.
func TestCollectorTokens(t *testing.T) {
	t.Parallel()
	forGuards(t, func(t *testing.T, guard tenancy.Guard) {
		f := setupData(t, guard, httpapi.Config{})
		a := f.a
		member := f.as(t, a, a.member)
		col, sibling := a.member.collectors[0], a.member.collectors[1]
		tok, plain := newCollectorToken(t, member, col.ID)
		require.Equal(t, col.ID, tok.CollectorID)
		require.Equal(t, "agent", tok.Name)

		list := decode[collectorTokenList](t, member.Get(tokensPath(col.ID)), http.StatusOK)
		require.Len(t, list.Items, 1)
		require.Equal(t, tok.ID, list.Items[0].ID)
		require.NotContains(t, string(member.Get(tokensPath(col.ID)).Body), plain)

		// The token uploads for its collector, in the name of the
		// collector's owner, and the collector is seen.
		agent := newClient(t, f.handler, a.host).WithBearer(plain)
		res := upload(agent.WithHeader("X-File-Name", "capture.csv"), col.ID, strings.NewReader("t,h\n"))
		d := decode[postgres.CollectedData](t, res, http.StatusCreated)
		require.Equal(t, a.member.ID, d.OwnerID)
		require.Equal(t, col.ID, d.CollectorID)
		seen := decode[postgres.Collector](t, member.Get(collectorPath(col.ID)), http.StatusOK)
		require.NotNil(t, seen.LastSeenAt)
		used := decode[collectorTokenList](t, member.Get(tokensPath(col.ID)), http.StatusOK)
		require.NotNil(t, used.Items[0].LastUsedAt)

		// Another collector of the partner, existing or not: 403.
		for _, id := range []int64{sibling.ID, a.admin.collectors[0].ID, 999999} {
			res := upload(agent, id, strings.NewReader("x"))
			requireError(t, res, http.StatusForbidden, "forbidden")
		}
		// Another partner's host does not know the token: 401.
		for _, host := range []string{f.b.host} {
			res := upload(newClient(t, f.handler, host).WithBearer(plain), f.b.member.collectors[0].ID, strings.NewReader("x"))
			requireError(t, res, http.StatusUnauthorized, "unauthorized")
		}
		// Nothing but uploads, even with a member's cookie alongside.
		for _, c := range []client{agent, agent.WithCookie(a.member.session)} {
			for _, res := range []*tenancytest.Response{
				c.Get("/api/v1/collectors"),
				c.Get(collectorPath(col.ID)),
				c.Get(uploadPath(col.ID)),
				c.Get(dataPath(d.ID)),
				c.Get(dataPath(d.ID) + "/content"),
				c.Delete(dataPath(d.ID)),
				c.Post("/api/v1/analyses", obj{"data_id": d.ID}),
				c.Get(tokensPath(col.ID)),
				c.Post(tokensPath(col.ID), obj{}),
				c.Get("/api/v1/me"),
			} {
				requireError(t, res, http.StatusUnauthorized, "unauthorized")
			}
		}
		require.Len(t, f.storedFiles(t), 1, "refused uploads store nothing")

		// Only those who see the collector manage its tokens. (Another
		// partner has its own collectors under the same ids; its tokens
		// are its own, as its host's refusal above shows.)
		c := f.as(t, a, f.addUser(t, a, postgres.RoleMember))
		requireError(t, c.Get(tokensPath(col.ID)), http.StatusNotFound, "not_found")
		requireError(t, c.Post(tokensPath(col.ID), obj{}), http.StatusNotFound, "not_found")
		requireError(t, c.Delete(tokensPath(col.ID)+"/"+itoa(tok.ID)), http.StatusNotFound, "not_found")
		admin := decode[collectorTokenList](t, f.as(t, a, a.admin).Get(tokensPath(col.ID)), http.StatusOK)
		require.Len(t, admin.Items, 1)
		requireError(t, member.Delete(tokensPath(sibling.ID)+"/"+itoa(tok.ID)), http.StatusNotFound, "not_found")

		// Revoked, the token is refused.
		require.Equal(t, http.StatusNoContent, member.Delete(tokensPath(col.ID)+"/"+itoa(tok.ID)).Status)
		requireError(t, upload(agent, col.ID, strings.NewReader("x")), http.StatusUnauthorized, "unauthorized")
		revoked := decode[collectorTokenList](t, member.Get(tokensPath(col.ID)), http.StatusOK)
		require.NotNil(t, revoked.Items[0].RevokedAt)
		require.Equal(t, http.StatusNoContent, member.Delete(tokensPath(col.ID)+"/"+itoa(tok.ID)).Status)

		// A malformed token of the collector kind is refused like any.
		res = upload(newClient(t, f.handler, a.host).WithBearer("xat_col_short"), col.ID, strings.NewReader("x"))
		requireError(t, res, http.StatusUnauthorized, "unauthorized")
	})
}

// TestCollectorTokenPathPrefix uploads with a collector token under a
// partner's path prefix on a public host.
func TestCollectorTokenPathPrefix(t *testing.T) {
	t.Parallel()
	f := setupData(t, tenancy.GuardRole, httpapi.Config{PathPrefix: true})
	col := f.a.member.collectors[0]
	_, plain := newCollectorToken(t, f.as(t, f.a, f.a.member), col.ID)

	agent := newClient(t, f.handler, publicHost).WithBearer(plain)
	res := agent.Post("/t/"+f.a.tenant.Schema+uploadPath(col.ID), strings.NewReader("x"))
	require.Equal(t, http.StatusCreated, res.Status, "%s", res.Body)
	res = agent.Post("/t/"+f.b.tenant.Schema+uploadPath(col.ID), strings.NewReader("x"))
	requireError(t, res, http.StatusUnauthorized, "unauthorized")
}
