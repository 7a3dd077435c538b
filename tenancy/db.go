package tenancy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DB is the tenancy entry point: the registry, provisioning, migrations and
// every scoped database access go through it. It holds two pools: one that
// logs in as the serving role for tenant and control-plane work, and one
// that logs in as the owner of the schemas for provisioning and migrations.
// A DB is safe for concurrent use.
type DB struct {
	serve     *pgxpool.Pool   // control-plane work, and tenant work without lanes
	lanes     []*pgxpool.Pool // tenant work, by tenant id; [serve] without lanes
	laneConns int             // each lane's size
	borrowed  []atomic.Int32  // by lane, its connections held by other lanes' tenants
	control   []setting       // settings of every control-plane statement
	admin     *pgxpool.Pool
	cfg       Config
	slots     *slots
	owned     bool
}

// New returns a DB over two pools the caller built: serve must log in as
// cfg.ServingRole (or as a role allowed to SET ROLE to it, see Connect);
// admin as the owner that creates roles and schemas. The same pool may be
// passed twice only in tests. New does not take ownership of the pools.
//
// With more than one lane (see Config.Lanes), New opens the lanes as pools
// of their own with serve's configuration, sharing serve's size between
// them, and serve is left to control-plane work, which holds few
// connections; Close closes the lanes.
func New(cfg Config, serve, admin *pgxpool.Pool) *DB {
	total := serve.Config().MaxConns
	if cfg.lanePool > 0 {
		total = cfg.lanePool
	}
	cfg = cfg.withDefaults(total)
	db := &DB{
		serve: serve,
		admin: admin,
		cfg:   cfg,
		slots: newSlots(cfg.MaxConnsPerTenant, cfg.TenantWait),
	}
	db.control = controlScope(cfg.AppName)
	db.lanes = openLanes(serve, cfg.Lanes, total, cfg.Logger)
	db.laneConns = int(total) / len(db.lanes)
	db.borrowed = make([]atomic.Int32, len(db.lanes))
	return db
}

// Config returns the configuration in force, defaults filled in.
func (db *DB) Config() Config { return db.cfg }

// ServePool returns the serving pool of control-plane work, for health
// checks and connection settings. Queries must go through InTenant, Read,
// Control or ControlQuery instead.
func (db *DB) ServePool() *pgxpool.Pool { return db.serve }

// setting is one transaction-local setting of a tenant scope.
type setting struct{ name, value string }

// scope returns the transaction-local settings that scope a transaction to
// t: search path, tenant and guard, then own, then the extra settings
// carried by ctx, checked by name.
func (db *DB) scope(ctx context.Context, t *Tenant, own ...setting) ([]setting, error) {
	extra := settingsFrom(ctx)
	s := make([]setting, 0, 3+len(own)+len(extra))
	s = append(s,
		setting{"search_path", quoteIdent(t.Schema) + ", public"},
		setting{TenantSetting, t.Schema},
	)
	if db.cfg.Guard == GuardRole {
		s = append(s, setting{"role", db.cfg.TenantRole(t.Schema)})
	}
	s = append(s, own...)
	for _, st := range extra {
		if !validSettingName(st.Name) {
			return nil, fmt.Errorf("scope setting %q: %w", st.Name, ErrInvalidSetting)
		}
		s = append(s, setting{st.Name, st.Value})
	}
	return s, nil
}

// setLocal renders settings as SET LOCAL statements, for a simple-protocol
// message. Schema and role names were validated when the tenant was
// created and are quoted all the same; other values are quoted literals.
func setLocal(settings []setting) string {
	var b strings.Builder
	for i, st := range settings {
		if i > 0 {
			b.WriteString("; ")
		}
		switch st.name {
		case "search_path": // a list of quoted identifiers already
			b.WriteString("SET LOCAL search_path = " + st.value)
		case "role":
			b.WriteString("SET LOCAL ROLE " + quoteIdent(st.value))
		default:
			b.WriteString("SET LOCAL " + st.name + " = " + quoteLiteral(st.value))
		}
	}
	return b.String()
}

// setConfig returns one statement that applies settings as
// transaction-local settings, with its arguments. Names and values travel
// as parameters, so the text depends only on how many settings there are:
// a connection prepares it once for every tenant.
func setConfig(settings []setting) (string, []any) {
	args := make([]any, 0, 2*len(settings))
	for _, st := range settings {
		args = append(args, st.name, st.value)
	}
	if len(settings) < len(setConfigTexts) {
		return setConfigTexts[len(settings)], args
	}
	return setConfigText(len(settings)), args
}

var setConfigTexts = func() (texts [12]string) {
	for i := range texts {
		texts[i] = setConfigText(i)
	}
	return texts
}()

func setConfigText(n int) string {
	var b strings.Builder
	b.WriteString("SELECT")
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, " set_config($%d, $%d, true)", 2*i+1, 2*i+2)
	}
	return b.String()
}

// ErrInvalidSetting is returned when a scope setting's name is not a custom
// setting of the form prefix.name, or uses the reserved tenancy prefix.
var ErrInvalidSetting = errors.New("invalid scope setting")

func (db *DB) scopedTenant(ctx context.Context) (*Tenant, error) {
	t, err := tenantFrom(ctx)
	if err != nil {
		return nil, err
	}
	if err := ValidateSchemaName(t.Schema, ""); err != nil {
		return nil, fmt.Errorf("scope tenant %d: %w", t.ID, err)
	}
	return t, nil
}

// InTenant runs fn in a transaction scoped to the tenant carried by ctx: the
// search path is the tenant's schema then public, the guard is in force and
// application_name names the tenant (in pg_stat_activity), all as
// transaction-local settings, so the connection returns to the pool clean.
// The transaction commits when fn returns nil and rolls back otherwise.
// Without a tenant in ctx it returns ErrNoTenant; when the tenant already
// holds its share of the pool for longer than Config.TenantWait it returns
// ErrTenantBusy.
func (db *DB) InTenant(ctx context.Context, fn func(ctx context.Context, tx pgx.Tx) error) error {
	t, err := db.scopedTenant(ctx)
	if err != nil {
		return err
	}
	release, held, err := db.slots.acquire(ctx, t.Schema)
	if err != nil {
		return err
	}
	defer release()

	settings, err := db.scope(ctx, t, setting{"application_name", db.cfg.AppName + ":" + t.Schema})
	if err != nil {
		return err
	}
	// The BEGIN and the settings travel as one simple-protocol message.
	begin := "BEGIN; " + setLocal(settings)
	for attempt := 0; ; attempt++ {
		conn, err := db.acquire(ctx, t, held)
		if err != nil {
			return fmt.Errorf("acquire connection: %w", err)
		}
		tx, err := conn.BeginTx(ctx, pgx.TxOptions{BeginQuery: begin})
		if err != nil {
			retry := attempt == 0 && db.staleRole(ctx, conn, t, err)
			db.release(ctx, conn, t.Schema)
			if retry {
				continue
			}
			return fmt.Errorf("scope transaction: %w", err)
		}
		err = runTx(ctx, tx, fn)
		db.release(ctx, conn, t.Schema)
		return err
	}
}

// runTx runs fn in tx and commits, or rolls back when fn fails or panics.
func runTx(ctx context.Context, tx pgx.Tx, fn func(ctx context.Context, tx pgx.Tx) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			tx.Rollback(context.WithoutCancel(ctx))
			panic(p)
		}
		if err != nil {
			tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	if err = fn(ctx, tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// staleRole reports whether err is PostgreSQL refusing SET ROLE to a
// tenant role the serving role was granted, and if so closes the
// connection so that the pool replaces it.
//
// TODO: under the role guard, a backend occasionally refuses SET ROLE to a
// tenant role granted moments before by a concurrent provisioning, although
// the grant committed before the scope began; the backend's role membership
// cache is the suspect. Such a connection is closed and the call retried
// once on another; a second refusal is returned to the caller.
func (db *DB) staleRole(ctx context.Context, conn *pgxpool.Conn, t *Tenant, err error) bool {
	var pg *pgconn.PgError
	if !errors.As(err, &pg) || pg.Code != "42501" || !strings.Contains(pg.Message, "set role") {
		return false
	}
	db.cfg.Logger.WarnContext(ctx, "Tenant role refused on a pooled connection; retrying on another",
		slog.Int64("tenant_id", t.ID), slog.String("schema", t.Schema))
	conn.Conn().Close(context.WithoutCancel(ctx))
	return true
}

// Read runs one query scoped to the tenant carried by ctx, read-only, and
// hands its rows to scan. The scoping settings (see DB.scoping) and the
// query travel in one pipeline, so the whole read costs one network round
// trip. From its second read in a schema on a connection, the query runs as
// a statement prepared for that schema (see conns.go); preparing it costs
// two more round trips, once. Either way its text starts with a comment
// naming the tenant's schema, which is how pg_stat_activity shows the
// tenant of a read (transactions of InTenant set application_name too).
// scan must read the rows it needs and not keep them.
//
// TODO: a lane's connections still serve every tenant of the lane: over a
// thousand partners each backend warms and keeps hundreds of schemas'
// catalog entries and plans, and reads there stay dearer than over ten
// partners (docs/benchmarks.md). More lanes divide that further but cap a
// busy tenant at fewer connections. Tenants are placed by id, never moved
// by load, so two busy tenants may share a lane.
func (db *DB) Read(ctx context.Context, scan func(pgx.Rows) error, sql string, args ...any) error {
	t, err := db.scopedTenant(ctx)
	if err != nil {
		return err
	}
	var own []setting
	if db.cfg.Guard == GuardRole {
		// No BEGIN READ ONLY opens the read (see DB.scoping).
		own = []setting{{"transaction_read_only", "on"}}
	}
	settings, err := db.scope(ctx, t, own...)
	if err != nil {
		return err
	}
	release, held, err := db.slots.acquire(ctx, t.Schema)
	if err != nil {
		return err
	}
	defer release()

	r := &read{t: t, held: held, settings: settings, sql: sql, args: args, scan: scan}
	for attempt := 0; ; attempt++ {
		retry, err := db.readOnce(ctx, r, attempt == 0)
		if !retry {
			return err
		}
	}
}

// read is one scoped read: its tenant, scoping settings, query and scanner.
type read struct {
	t        *Tenant
	held     int // connections the tenant holds, this read's included
	settings []setting
	sql      string
	args     []any
	scan     func(pgx.Rows) error
}

// readOnce runs r on one pooled connection. It reports whether the read
// should be tried again: on another connection when this one refused the
// tenant's role (see staleRole), or on the same one when the prepared
// statement went stale (see stalePlan) and was dropped.
func (db *DB) readOnce(ctx context.Context, r *read, mayRetry bool) (bool, error) {
	conn, err := db.acquire(ctx, r.t, r.held)
	if err != nil {
		return false, fmt.Errorf("acquire connection: %w", err)
	}
	defer db.release(ctx, conn, r.t.Schema)
	c := conn.Conn()

	scoping, explicit := db.scoping(r.settings)
	text := preparedText(r.t.Schema, r.sql)
	prepared, err := db.prepare(ctx, c, scoping, &stateOf(c).queries, db.cfg.StatementsPerConn,
		beginRead+"; "+setLocal(r.settings), text)
	if err == nil {
		err = runScoped(ctx, c, scoping, explicit, text, r.args, r.scan)
	}
	if err == nil {
		return false, nil
	}
	db.rollback(ctx, c)
	switch {
	case mayRetry && db.staleRole(ctx, conn, r.t, err):
		return true, err
	case mayRetry && db.recoverStatements(ctx, c, &stateOf(c).queries, db.cfg.StatementsPerConn, prepared, text, err,
		slog.Int64("tenant_id", r.t.ID), slog.String("schema", r.t.Schema)):
		return true, err
	}
	return false, err
}

const beginRead = "BEGIN READ ONLY"

// scoping returns the statements that scope a read with settings, and
// whether they open a transaction block that a COMMIT must close.
//
// Under the role guard one SELECT of set_config calls, whose text names no
// tenant, applies the settings, transaction_read_only among them, and no
// BEGIN is sent: the statements of one pipeline up to its Sync run in one
// implicit transaction, which ends, settings and all, at the Sync, or at
// the first error, when the rest of the pipeline is skipped. That saves
// PostgreSQL two statements per read.
//
// Under the policy guard, meant for Citus, the read is a transaction block
// of SET LOCAL statements, one per setting and tenant, because Citus
// passes SET LOCAL on to its workers and not set_config (see
// docs/scale-out.md).
func (db *DB) scoping(settings []setting) (qs []*pgx.QueuedQuery, explicit bool) {
	if db.cfg.Guard == GuardRole {
		text, args := setConfig(settings)
		return []*pgx.QueuedQuery{{SQL: text, Arguments: args}}, false
	}
	qs = make([]*pgx.QueuedQuery, 1, 1+len(settings))
	qs[0] = &pgx.QueuedQuery{SQL: beginRead}
	for _, st := range settings {
		qs = append(qs, &pgx.QueuedQuery{SQL: setLocal([]setting{st})})
	}
	return qs, true
}

// prepareScoping prepares, on the idle connection c, the statements that
// open, scope and close a read: scoping, then COMMIT. Under the role guard
// none of them names a tenant, so they are prepared on first use and a
// connection keeps a handful however many tenants it serves. Under the
// policy guard each tenant has its own SET LOCAL statements: they are
// prepared on their second read, like queries, within a budget of
// scopingPerStatement per query a connection may keep.
func (db *DB) prepareScoping(ctx context.Context, c *pgx.Conn, scoping []*pgx.QueuedQuery) error {
	if db.cfg.StatementsPerConn < 0 {
		return nil
	}
	st := stateOf(c)
	perTenant := db.cfg.Guard != GuardRole
	capacity := scopingStatements
	if perTenant {
		capacity = db.cfg.StatementsPerConn * scopingPerStatement
	}
	for i := 0; i <= len(scoping); i++ {
		s := "COMMIT"
		if i < len(scoping) {
			s = scoping[i].SQL
		}
		if st.scoping.use(s) || perTenant && !st.scoping.secondSight(s, capacity) {
			continue
		}
		if err := st.scoping.prepare(ctx, c, s, capacity); err != nil {
			return fmt.Errorf("prepare scope statement: %w", err)
		}
	}
	return nil
}

const (
	// scopingStatements bounds the scoping statements a connection keeps
	// prepared under the role guard: COMMIT and one settings statement per
	// number of settings in use.
	scopingStatements = 16
	// scopingPerStatement is how many scoping statements a connection may
	// keep prepared under the policy guard for each query it may keep.
	scopingPerStatement = 4
)

// prepare prepares on the idle connection c the statements in scoping
// (see prepareScoping) and reports whether text runs on c as a prepared
// statement of set, which keeps at most capacity. On text's second use on
// c, prepare opens the scoped transaction with begin and prepares text
// there, where the search path is the one text runs under, leaving the
// transaction open for it (see runScoped).
func (db *DB) prepare(ctx context.Context, c *pgx.Conn, scoping []*pgx.QueuedQuery, set *stmtSet, capacity int,
	begin, text string) (bool, error) {
	if err := db.prepareScoping(ctx, c, scoping); err != nil {
		return false, err
	}
	if db.cfg.StatementsPerConn < 0 {
		return false, nil
	}
	if set.use(text) {
		return true, nil
	}
	if !set.secondSight(text, capacity) {
		return false, nil
	}
	if _, err := c.Exec(ctx, begin); err != nil {
		return true, fmt.Errorf("scope transaction: %w", err)
	}
	if err := set.prepare(ctx, c, text, capacity); err != nil {
		return true, err
	}
	return true, nil
}

// runScoped runs text with args on c, scoped by scoping (which opens a
// transaction block when explicit), and hands its rows to scan, all in one
// round trip. When prepare left the scoped transaction open, text runs in
// it and a COMMIT closes it.
func runScoped(ctx context.Context, c *pgx.Conn, scoping []*pgx.QueuedQuery, explicit bool, text string, args []any,
	scan func(pgx.Rows) error) error {
	b := &pgx.Batch{}
	open := c.PgConn().TxStatus() != 'I'
	if !open {
		for _, q := range scoping {
			b.Queue(q.SQL, q.Arguments...)
		}
	}
	query := b.Len()
	b.Queue(text, args...)
	if open || explicit {
		b.Queue("COMMIT")
	}
	return runRead(ctx, c, b, query, scan)
}

// recoverStatements reports whether a statement that failed with err on c
// may be tried again on c, after putting the connection's statements
// right: a prepared statement whose plan went stale (see stalePlan) is
// dropped from set and prepared again on its next read; when the server
// lost every statement of the connection (see lostStatements), all are
// forgotten. attrs name the work in the log.
func (db *DB) recoverStatements(ctx context.Context, c *pgx.Conn, set *stmtSet, capacity int, prepared bool,
	text string, err error, attrs ...any) bool {
	if c.IsClosed() {
		return false
	}
	switch {
	case prepared && stalePlan(err):
		db.cfg.Logger.InfoContext(ctx, "Prepared statement went stale; preparing it again",
			append(attrs, slog.String("error", err.Error()))...)
		if ferr := set.forget(ctx, c, text, capacity); ferr != nil {
			c.Close(context.WithoutCancel(ctx))
		}
		return true
	case lostStatements(err):
		db.cfg.Logger.WarnContext(ctx, "The server lost the statements prepared on a connection; preparing them again",
			append(attrs, slog.String("error", err.Error()))...)
		stateOf(c).reset()
		if ferr := c.DeallocateAll(ctx); ferr != nil {
			c.Close(context.WithoutCancel(ctx))
		}
		return true
	}
	return false
}

// rollback ends a transaction a failed read left open; a failed statement
// leaves it aborted. A connection that cannot roll back is closed, and the
// pool replaces it.
func (db *DB) rollback(ctx context.Context, c *pgx.Conn) {
	if c.IsClosed() || c.PgConn().TxStatus() == 'I' {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := c.Exec(rctx, "ROLLBACK"); err != nil {
		c.Close(rctx)
	}
}

// release returns conn to the pool after it served schema, closing it
// instead once it has served more than Config.SchemasPerConn schemas or
// MaxConnUses scopes.
func (db *DB) release(ctx context.Context, conn *pgxpool.Conn, schema string) {
	c := conn.Conn()
	st := stateOf(c)
	db.giveBack(st)
	if c.IsClosed() {
		conn.Release()
		return
	}
	st.uses++
	if st.touch(schema) > db.cfg.SchemasPerConn || st.uses >= MaxConnUses {
		db.cfg.Logger.DebugContext(ctx, "Retiring a pooled connection",
			slog.Int("schemas", len(st.schemas)), slog.Int("uses", st.uses))
		c.Close(context.WithoutCancel(ctx))
	}
	conn.Release()
}

// runRead sends b, whose statement at index query is the query, and hands
// the query's rows to scan.
func runRead(ctx context.Context, c *pgx.Conn, b *pgx.Batch, query int, scan func(pgx.Rows) error) error {
	br := c.SendBatch(ctx, b)
	for range query {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return fmt.Errorf("scope transaction: %w", err)
		}
	}
	rows, err := br.Query()
	if err != nil {
		br.Close()
		return err
	}
	err = scan(rows)
	rows.Close()
	if err == nil {
		err = rows.Err()
	}
	if err != nil {
		br.Close()
		return err
	}
	for range b.Len() - query - 1 {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return fmt.Errorf("commit: %w", err)
		}
	}
	return br.Close()
}

// ErrTenantBusy is returned when a tenant already holds its whole share of
// the connection pool and none of its slots freed up in time.
var ErrTenantBusy = errors.New("tenant has too many concurrent database calls")

// Rows collects every row of a tenant-scoped query, in one round trip.
func Rows[T any](ctx context.Context, db *DB, fn pgx.RowToFunc[T], sql string, args ...any) ([]T, error) {
	var out []T
	err := db.Read(ctx, func(rows pgx.Rows) error {
		var err error
		out, err = pgx.CollectRows(rows, fn)
		return err
	}, sql, args...)
	return out, err
}

// Row returns the single row of a tenant-scoped query, in one round trip.
// It returns pgx.ErrNoRows when there is none.
func Row[T any](ctx context.Context, db *DB, fn pgx.RowToFunc[T], sql string, args ...any) (T, error) {
	var out T
	err := db.Read(ctx, func(rows pgx.Rows) error {
		var err error
		out, err = pgx.CollectExactlyOneRow(rows, fn)
		return err
	}, sql, args...)
	return out, err
}

// WithMigrations returns a DB that shares db's pools and settings but runs
// other migration sets, as a newer release of the program would.
func (db *DB) WithMigrations(shared, tenant []Migration) *DB {
	c := *db
	c.cfg.SharedMigrations = shared
	c.cfg.TenantMigrations = tenant
	c.owned = false
	return &c
}
