package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/xatlabs/xat/internal/auth"
	"github.com/xatlabs/xat/internal/postgres"
	"github.com/xatlabs/xat/migrations"
	"github.com/xatlabs/xat/tenancy"
	"github.com/xatlabs/xat/tenancy/tenancytest"
)

func TestMain(m *testing.M) { tenancytest.Run(m) }

var guards = []tenancy.Guard{tenancy.GuardRole, tenancy.GuardPolicy}

// openDB returns the test database migrated with XAT's migrations, shared
// by every test of this binary that asks for the same guard.
func openDB(t *testing.T, guard tenancy.Guard) *tenancy.DB {
	t.Helper()
	shared, err := migrations.Shared()
	require.NoError(t, err)
	tenant, err := migrations.Tenant()
	require.NoError(t, err)
	return tenancytest.Open(t, tenancytest.Options{Shared: shared, Tenant: tenant, Guard: guard, Name: "xat"})
}

// fixture is what most tests start from: a store and a partner of their
// own, with ctx scoped to that partner.
type fixture struct {
	db     *tenancy.DB
	store  *postgres.Store
	tenant *tenancy.Tenant
	ctx    context.Context
}

func setup(t *testing.T) *fixture {
	t.Helper()
	return setupGuard(t, tenancy.GuardRole)
}

func setupGuard(t *testing.T, guard tenancy.Guard) *fixture {
	t.Helper()
	db := openDB(t, guard)
	tn := newTenant(t, db)
	return &fixture{
		db:     db,
		store:  postgres.New(db),
		tenant: tn,
		ctx:    tenancy.WithTenant(context.Background(), tn),
	}
}

// newTenant provisions a partner for one test. Unlike tenancytest.NewTenant
// it leaves the partner in place when the test ends; the whole test
// database goes when the binary's tests are done, and TestDeleteTenant
// covers deletion on its own.
func newTenant(t *testing.T, db *tenancy.DB) *tenancy.Tenant {
	t.Helper()
	id := hex.EncodeToString(randomBytes(5))
	tn, err := db.CreateTenant(context.Background(), tenancy.NewTenant{
		Name:   "Test " + id,
		Schema: db.Config().SchemaPrefix + "t_" + id,
		Domain: "t-" + id + ".test",
	})
	require.NoError(t, err)
	return tn
}

// forGuards runs test once under each database guard.
func forGuards(t *testing.T, test func(t *testing.T, f *fixture)) {
	for _, g := range guards {
		t.Run(g.String(), func(t *testing.T) {
			t.Parallel()
			test(t, setupGuard(t, g))
		})
	}
}

// testHash is a password hash made cheaply, for users whose password no
// test checks.
var testHash = func() string {
	h, err := auth.TestHasher.Hash("a test password")
	if err != nil {
		panic(err)
	}
	return h
}()

// uniqueEmail returns an address no other test uses: users are shared by
// every test of the binary.
func uniqueEmail(prefix string) string {
	return prefix + "-" + hex.EncodeToString(randomBytes(6)) + "@example.test"
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func newUser(t *testing.T, s *postgres.Store) *postgres.User {
	t.Helper()
	u, err := s.CreateUser(context.Background(), uniqueEmail("user"), testHash, false)
	require.NoError(t, err)
	return u
}

// memberOfTwo returns a new user who is a member of the fixture's partner
// in role and of another partner in otherRole, so that a lookup can be
// seen to return the role on the right one.
func memberOfTwo(t *testing.T, f *fixture, role, otherRole string) *postgres.User {
	t.Helper()
	ctx := context.Background()
	u := newUser(t, f.store)
	require.NoError(t, f.store.AddMember(ctx, f.tenant.ID, u.ID, role))
	require.NoError(t, f.store.AddMember(ctx, newTenant(t, f.db).ID, u.ID, otherRole))
	return u
}

// expel removes u from the fixture's partner and disables the account.
func expel(t *testing.T, f *fixture, u *postgres.User) {
	t.Helper()
	require.NoError(t, f.store.RemoveMember(context.Background(), f.tenant.ID, u.ID))
	adminExec(t, f.db, "UPDATE public.users SET disabled_at = now() WHERE id = $1", u.ID)
}

// adminExec runs SQL as the database owner, outside every guard, to set up
// states the store does not produce (a backdated timestamp).
func adminExec(t *testing.T, db *tenancy.DB, sql string, args ...any) {
	t.Helper()
	_, err := tenancytest.AdminConn(t, db).Exec(context.Background(), sql, args...)
	require.NoError(t, err)
}

func ptr[T any](v T) *T { return &v }

// count runs a raw count under the partner's scope with extra settings.
func count(t *testing.T, f *fixture, sql string, settings ...tenancy.Setting) int {
	t.Helper()
	n, err := tenancy.Row(tenancy.WithSettings(f.ctx, settings...), f.db, pgx.RowTo[int], sql)
	require.NoError(t, err)
	return n
}

// randomID returns an id no other test uses, for columns without a foreign
// key (the audit trail's tenant_id).
func randomID() int64 {
	var n int64
	for _, c := range randomBytes(6) {
		n = n<<8 | int64(c)
	}
	return n + 1_000_000
}
