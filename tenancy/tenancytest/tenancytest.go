// Package tenancytest gives tests a real PostgreSQL and fresh tenants. A
// test package calls Run from TestMain; each test then asks Open for a
// migrated tenancy.DB and NewTenant for a tenant of its own, provisioned in
// milliseconds and removed when the test ends, so tests run in parallel
// without sharing data.
//
//	func TestMain(m *testing.M) { tenancytest.Run(m) }
//
//	func TestSomething(t *testing.T) {
//		t.Parallel()
//		db := tenancytest.Open(t, tenancytest.Options{Shared: shared, Tenant: tenant})
//		acme := tenancytest.NewTenant(t, db)
//		ctx := tenancy.WithTenant(context.Background(), acme)
//		...
//	}
//
// The database is the one XAT_TEST_DATABASE_URL names (a database is
// created on that server for each guard and dropped afterwards) or a
// throwaway local cluster started with pglocal. When neither can be had the
// tests fail under CI=true and are skipped otherwise.
package tenancytest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/xatlabs/xat/pglocal"
	"github.com/xatlabs/xat/tenancy"
)

// Options selects the migration sets and guard of a test DB.
type Options struct {
	Shared []tenancy.Migration
	Tenant []tenancy.Migration
	Guard  tenancy.Guard

	// Name distinguishes DBs with different migration sets in one test
	// binary; each distinct Name and Guard gets its own database.
	Name string
}

var env struct {
	once     sync.Once
	base     string // connection string of the binary's database
	err      error
	cleanup  func()
	rolePref string

	mu  sync.Mutex
	dbs map[string]*openDB
}

type openDB struct {
	db           *tenancy.DB
	serve, admin *pgxpool.Pool
	name         string
	err          error
}

// Run runs a package's tests and then tears down what they created: pools,
// test databases, roles and a local cluster. Call it from TestMain.
func Run(m *testing.M) {
	code := m.Run()
	teardown()
	os.Exit(code)
}

func start() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	env.base, env.cleanup, env.err = pglocal.ForTests(ctx, "tenancytest")
	env.rolePref = "t" + randomHex(4) + "_"
	env.dbs = make(map[string]*openDB)
}

func teardown() {
	env.mu.Lock()
	defer env.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, o := range env.dbs {
		if o.db != nil {
			o.db.Close() // its lanes, if any
		}
		if o.serve != nil {
			o.serve.Close()
		}
		if o.admin != nil {
			o.admin.Close()
		}
	}
	if env.base != "" {
		dropAll(ctx)
	}
	if env.cleanup != nil {
		env.cleanup()
	}
}

// dropAll drops the per-guard databases and every role this binary made;
// roles outlive databases, so a shared server would collect them otherwise.
func dropAll(ctx context.Context) {
	conn, err := pgx.Connect(ctx, env.base)
	if err != nil {
		return
	}
	defer conn.Close(ctx)
	for _, o := range env.dbs {
		conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{o.name}.Sanitize()+" WITH (FORCE)")
	}
	rows, err := conn.Query(ctx, "SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1)", env.rolePref)
	if err != nil {
		return
	}
	roles, _ := pgx.CollectRows(rows, pgx.RowTo[string])
	for _, r := range roles {
		conn.Exec(ctx, "DROP ROLE IF EXISTS "+pgx.Identifier{r}.Sanitize())
	}
}

// need fails or skips tb when no PostgreSQL could be had.
func need(tb testing.TB) {
	tb.Helper()
	env.once.Do(start)
	if env.err == nil {
		return
	}
	if os.Getenv("CI") != "" {
		tb.Fatalf("PostgreSQL is required under CI: %v", env.err)
	}
	tb.Skipf("no PostgreSQL for tests (set XAT_TEST_DATABASE_URL or install the server): %v", env.err)
}

// ConnString returns the connection string of the binary's base database
// as its owner, for tests that need a raw connection.
func ConnString(tb testing.TB) string {
	tb.Helper()
	need(tb)
	return env.base
}

// RolePrefix returns the role prefix of this test binary's DBs.
func RolePrefix(guard tenancy.Guard) string {
	return env.rolePref + guard.String()[:1] + "_"
}

// Open returns a tenancy.DB over a database of this test binary, migrated
// with opts' sets. DBs are shared by every test asking for the same Name and
// Guard; they live until Run tears down.
func Open(tb testing.TB, opts Options) *tenancy.DB {
	tb.Helper()
	need(tb)
	key := opts.Name + "/" + opts.Guard.String()

	env.mu.Lock()
	o := env.dbs[key]
	if o == nil {
		o = openNew(opts)
		env.dbs[key] = o
	}
	env.mu.Unlock()
	if o.err != nil {
		tb.Fatalf("open test database %s: %v", key, o.err)
	}
	return o.db
}

func openNew(opts Options) *openDB {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	o := &openDB{name: "xt_" + strings.TrimSuffix(env.rolePref, "_") + "_" + sanitize(opts.Name) + opts.Guard.String()}

	base, err := pgx.ParseConfig(env.base)
	if err != nil {
		o.err = err
		return o
	}
	conn, err := pgx.ConnectConfig(ctx, base)
	if err != nil {
		o.err = err
		return o
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{o.name}.Sanitize())
	conn.Close(ctx)
	if err != nil {
		o.err = fmt.Errorf("create database: %w", err)
		return o
	}

	cfg := tenancy.Config{
		RolePrefix:       RolePrefix(opts.Guard),
		Guard:            opts.Guard,
		SharedMigrations: opts.Shared,
		TenantMigrations: opts.Tenant,
		TenantWait:       10 * time.Second,
	}
	o.admin, err = pool(ctx, env.base, o.name, "", 8)
	if err != nil {
		o.err = err
		return o
	}
	// Install creates the serving role before the serving pool can log in.
	o.db = tenancy.New(cfg, o.admin, o.admin)
	if _, err := o.db.Migrate(ctx, tenancy.MigrateOptions{Shared: true}); err != nil {
		o.err = err
		return o
	}
	o.serve, err = pool(ctx, env.base, o.name, o.db.Config().ServingRole, 16)
	if err != nil {
		o.err = err
		return o
	}
	o.db = tenancy.New(cfg, o.serve, o.admin)
	o.err = o.db.CheckServing(ctx)
	return o
}

// pool opens a pool on database dbname of the server base names, logging in
// as user when set (trust or the same password as base).
func pool(ctx context.Context, base, dbname, user string, size int32) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(base)
	if err != nil {
		return nil, err
	}
	cfg.ConnConfig.Database = dbname
	if user != "" {
		cfg.ConnConfig.User = user
	}
	cfg.MaxConns = size
	tenancy.TunePool(cfg)
	return pgxpool.NewWithConfig(ctx, cfg)
}

// NewTenant provisions a tenant with a random schema and domain in db and
// removes it, schema and role included, when the test ends.
func NewTenant(tb testing.TB, db *tenancy.DB) *tenancy.Tenant {
	tb.Helper()
	id := randomHex(5)
	t, err := db.CreateTenant(context.Background(), tenancy.NewTenant{
		Name:   "Test " + id,
		Schema: db.Config().SchemaPrefix + "t_" + id,
		Domain: "t-" + id + ".test",
	})
	if err != nil {
		tb.Fatalf("create test tenant: %v", err)
	}
	tb.Cleanup(func() {
		ctx := context.Background()
		if _, err := db.SetActive(ctx, t.Schema, false); err != nil {
			tb.Errorf("deactivate test tenant %s: %v", t.Schema, err)
			return
		}
		if err := db.DeleteTenant(ctx, t.Schema); err != nil {
			tb.Errorf("delete test tenant %s: %v", t.Schema, err)
		}
	})
	return t
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func sanitize(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	if b.Len() > 0 {
		b.WriteByte('_')
	}
	return b.String()
}

// AdminConn connects to db's database as its owner, for tests that must act
// outside every guard (planting a conflicting table, inspecting catalogs).
// The connection closes when the test ends.
func AdminConn(tb testing.TB, db *tenancy.DB) *pgx.Conn {
	tb.Helper()
	env.mu.Lock()
	var name string
	for _, o := range env.dbs {
		if o.serve != nil && o.serve == db.ServePool() {
			name = o.name
		}
	}
	env.mu.Unlock()
	if name == "" {
		tb.Fatalf("AdminConn: db was not opened by tenancytest")
	}
	cfg, err := pgx.ParseConfig(env.base)
	if err != nil {
		tb.Fatalf("AdminConn: %v", err)
	}
	cfg.Database = name
	conn, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("AdminConn: %v", err)
	}
	tb.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// ConnStringFor returns a connection string, as the database owner, for
// db's own database: what a listener (Resolver.Listen) needs, since
// notifications do not cross databases.
func ConnStringFor(tb testing.TB, db *tenancy.DB) string {
	tb.Helper()
	need(tb)
	name := db.ServePool().Config().ConnConfig.Database
	if u, err := url.Parse(env.base); err == nil && u.Scheme != "" {
		u.Path = "/" + name
		return u.String()
	}
	return env.base + " dbname=" + name
}

// Reconfigured returns a DB over db's database with a serving pool of its
// own, of size connections, and db's configuration changed by edit (when
// not nil). The pool closes when the test ends. Tests of what happens on
// one pooled connection use it with size 1.
func Reconfigured(tb testing.TB, db *tenancy.DB, size int32, edit func(*tenancy.Config)) *tenancy.DB {
	tb.Helper()
	env.mu.Lock()
	var o *openDB
	for _, c := range env.dbs {
		if c.serve != nil && c.serve == db.ServePool() {
			o = c
		}
	}
	env.mu.Unlock()
	if o == nil {
		tb.Fatalf("Reconfigured: db was not opened by tenancytest")
	}
	cfg := db.Config()
	cfg.Lanes = 0 // by default, as many as suit size
	if edit != nil {
		edit(&cfg)
	}
	serve, err := pool(context.Background(), env.base, o.name, cfg.ServingRole, size)
	if err != nil {
		tb.Fatalf("Reconfigured: %v", err)
	}
	tb.Cleanup(serve.Close)
	d := tenancy.New(cfg, serve, o.admin)
	tb.Cleanup(d.Close) // its lanes, if any
	return d
}
