package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/xatlabs/xat/pglocal"
)

// testDB is the database the commands under test work on: a throwaway one
// from pglocal.ForTests, installed and migrated once by TestMain. Its roles
// carry a prefix of their own, since roles are global to a cluster.
var testDB struct {
	url        string
	rolePrefix string
	err        error
}

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	url, cleanup, err := pglocal.ForTests(ctx, "cli")
	defer cleanup()
	testDB.url, testDB.err = url, err
	testDB.rolePrefix = "xt" + randomHex(4) + "_"
	if err != nil && os.Getenv("CI") == "true" {
		fmt.Fprintf(os.Stderr, "PostgreSQL is required under CI: %v\n", err)
		return 1
	}

	if err == nil {
		defer dropRoles(testDB.rolePrefix)
		var out, errs bytes.Buffer
		if code := Run(ctx, []string{"migrate"}, testEnv(&out, &errs, nil)); code != 0 {
			fmt.Fprintf(os.Stderr, "migrate the test database: exit %d\n%s%s", code, &out, &errs)
			return 1
		}
	}
	return m.Run()
}

// dropRoles drops the roles the tests created. On a throwaway cluster they
// go with it; on the server XAT_TEST_DATABASE_URL names they would stay
// behind after the test database is dropped.
func dropRoles(prefix string) {
	server := os.Getenv(pglocal.TestDatabaseURLEnv)
	if server == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// The test database still exists here and the roles own objects in it.
	conn, err := pgx.Connect(ctx, testDB.url)
	if err != nil {
		return
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1)", prefix)
	if err != nil {
		return
	}
	roles, _ := pgx.CollectRows(rows, pgx.RowTo[string])
	for _, r := range roles {
		role := pgx.Identifier{r}.Sanitize()
		_, _ = conn.Exec(ctx, "DROP OWNED BY "+role+"; DROP ROLE "+role)
	}
}

// testEnv returns the environment of a command run against the test
// database, with extra variables on top.
func testEnv(stdout, stderr io.Writer, extra map[string]string) Env {
	vars := map[string]string{
		"DATABASE_URL":    testDB.url,
		"XAT_ROLE_PREFIX": testDB.rolePrefix,
		"XAT_POOL_SIZE":   "4",
		"XAT_LOG_LEVEL":   "warn",
	}
	for k, v := range extra {
		vars[k] = v
	}
	return Env{
		Stdout: stdout,
		Stderr: stderr,
		LookupEnv: func(k string) (string, bool) {
			v, ok := vars[k]
			return v, ok
		},
	}
}

// result is what one run of the command left behind.
type result struct {
	code           int
	stdout, stderr string
}

// needDB skips the test when no PostgreSQL could be had; under CI=true
// TestMain has already failed the run.
func needDB(t *testing.T) {
	t.Helper()
	if testDB.err != nil {
		t.Skipf("no PostgreSQL for tests (install the server or set %s): %v",
			pglocal.TestDatabaseURLEnv, testDB.err)
	}
}

// xat runs the command in-process against the test database.
func xat(t *testing.T, args ...string) result {
	t.Helper()
	return xatWith(t, nil, "", args...)
}

// xatWith runs the command with extra environment variables and stdin.
func xatWith(t *testing.T, extra map[string]string, stdin string, args ...string) result {
	t.Helper()
	var out, errs bytes.Buffer
	env := testEnv(&out, &errs, extra)
	env.Stdin = strings.NewReader(stdin)
	code := Run(context.Background(), args, env)
	return result{code: code, stdout: out.String(), stderr: errs.String()}
}

// testTenant is a tenant created for one test.
type testTenant struct {
	name, schema, domain string
}

// newTenant creates a tenant through the command and deletes it, schema
// and role included, when the test ends.
func newTenant(t *testing.T) testTenant {
	t.Helper()
	id := randomHex(4)
	tt := testTenant{
		name:   "Test " + id,
		schema: "tenant_test_" + id,
		domain: "t-" + id + ".test",
	}
	r := xat(t, "tenant", "create", tt.name, "--domain", tt.domain)
	if r.code != 0 {
		t.Fatalf("create tenant: exit %d: %s", r.code, r.stderr)
	}
	t.Cleanup(func() {
		// A test may have deleted it already; that is not a failure.
		if r := xat(t, "tenant", "show", tt.schema); r.code != 0 {
			return
		}
		if r := xat(t, "tenant", "deactivate", tt.schema); r.code != 0 {
			t.Errorf("deactivate %s: %s", tt.schema, r.stderr)
		}
		if r := xat(t, "tenant", "delete", tt.schema, "--drop", "--yes"); r.code != 0 {
			t.Errorf("delete %s: %s", tt.schema, r.stderr)
		}
	})
	return tt
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}
