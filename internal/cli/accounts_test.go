package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestAccounts walks the account commands: a user is created with a
// password from the environment, made a member, given a token, and
// removed again; each bad argument is refused.
func TestAccounts(t *testing.T) {
	tt := newTenant(t)
	email := "user-" + randomHex(4) + "@example.test"
	pw := map[string]string{"XAT_PASSWORD": "a long enough password"}

	requireOK(t, xatWith(t, pw, "", "user", "create", email))
	requireFails(t, xatWith(t, pw, "", "user", "create", email), 1, "exists")
	requireFails(t, xatWith(t, nil, "short\n", "user", "create", "other-"+email), 2, "")
	requireFails(t, xatWith(t, pw, "", "user", "create", "not-an-email"), 2, "")

	requireFails(t, xat(t, "token", "create", email, "--tenant", tt.schema), 1, "not a member")
	requireFails(t, xat(t, "member", "add", email, "--tenant", tt.schema, "--role", "owner"), 2, "--role")
	requireFails(t, xat(t, "member", "add", email), 2, "--tenant is required")
	requireFails(t, xat(t, "member", "add", "nobody@example.test", "--tenant", tt.schema), 1, "no user")

	r := xat(t, "member", "add", email, "--tenant", tt.schema, "--role", "admin")
	requireOK(t, r)
	require.Contains(t, r.stdout, "is now admin of "+tt.schema)

	r = xat(t, "token", "create", email, "--tenant", tt.schema)
	requireOK(t, r)
	require.True(t, strings.HasPrefix(r.stdout, "xat_pat_"), r.stdout)

	r = xat(t, "member", "remove", email, "--tenant", tt.schema)
	requireOK(t, r)
	require.Contains(t, r.stdout, "no longer a member")
	requireFails(t, xat(t, "token", "create", email, "--tenant", tt.schema), 1, "not a member")
}

// TestReportAndAudit runs the report and the audit on a healthy database.
func TestReportAndAudit(t *testing.T) {
	tt := newTenant(t)

	r := xat(t, "report", "tenants", "--json")
	requireOK(t, r)
	var rows []struct {
		Schema     string `json:"schema"`
		Collectors int64  `json:"collectors"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rows))
	found := false
	for _, row := range rows {
		if row.Schema == tt.schema {
			found = true
			require.Zero(t, row.Collectors)
		}
	}
	require.True(t, found, r.stdout)

	r = xat(t, "audit")
	requireOK(t, r)
	require.Contains(t, r.stdout, "0 finding(s)")

	r = xat(t, "tenant", "resolve", strings.ToUpper(tt.domain)+".:8080")
	requireOK(t, r)
	require.Contains(t, r.stdout, tt.schema)
	r = xat(t, "tenant", "resolve", "unknown.example.test")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stdout, "404 unknown_host")
}
