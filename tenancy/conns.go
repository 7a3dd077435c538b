package tenancy

import (
	"container/list"
	"context"
	"errors"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Scoped reads run prepared statements, one per tenant schema and SQL text.
//
// The same SQL names different tables in every tenant schema, and schemas
// may sit on different migration versions while a deploy rolls, so a
// statement prepared once and reused across tenants would be wrong. Each
// (schema, SQL) pair therefore gets its own server-side statement, prepared
// inside that tenant's scope, where the search path names the tenant's
// tables; the text it is prepared under starts with a comment naming the
// schema (see preparedText), which is also pgx's key for it. PostgreSQL
// checks privileges and row-level security at every execution, and replans
// a statement whose search path or role differs from the one it was planned
// under, so a statement can never read outside the scope it runs in.
//
// A statement planned once skips parsing and planning on every later read,
// which is most of a small read's cost in PostgreSQL. Each connection keeps
// at most Config.StatementsPerConn of them, least recently used dropped
// first, so a backend's plan memory stays bounded however many tenants it
// serves. A statement is prepared on its second read on a connection, not
// its first: preparing costs two extra round trips, so when more statements
// are in use than a connection may keep, the ones read only once in a
// while run unprepared, in one round trip, instead of evicting each other
// on every read.

// connState is what tenancy keeps about one pooled connection, in the
// connection's custom data.
type connState struct {
	// prepared holds the texts of the tenant statements prepared on the
	// connection; order lists them, most recently used first.
	prepared map[string]*list.Element
	order    list.List

	// seen holds texts read once on the connection but not prepared,
	// most recent first, as many as prepared may hold.
	seen      map[string]*list.Element
	seenOrder list.List

	// schemas is the set of tenant schemas the connection has served.
	// Every one of them left catalog entries in the backend's caches.
	schemas map[string]struct{}
}

const connStateKey = "tenancy.conn"

func stateOf(c *pgx.Conn) *connState {
	data := c.PgConn().CustomData()
	if st, ok := data[connStateKey].(*connState); ok {
		return st
	}
	st := &connState{
		prepared: map[string]*list.Element{},
		seen:     map[string]*list.Element{},
		schemas:  map[string]struct{}{},
	}
	data[connStateKey] = st
	return st
}

// touch records that the connection served schema and returns how many
// schemas it has served.
func (st *connState) touch(schema string) int {
	st.schemas[schema] = struct{}{}
	return len(st.schemas)
}

// use reports whether text is prepared on the connection, and marks it as
// the most recently used.
func (st *connState) use(text string) bool {
	e, ok := st.prepared[text]
	if ok {
		st.order.MoveToFront(e)
	}
	return ok
}

// secondSight reports whether text was read on the connection before,
// without being prepared; if not, it remembers text, forgetting the oldest
// such text beyond capacity.
func (st *connState) secondSight(text string, capacity int) bool {
	if e, ok := st.seen[text]; ok {
		st.seenOrder.Remove(e)
		delete(st.seen, text)
		return true
	}
	for st.seenOrder.Len() >= capacity {
		delete(st.seen, st.seenOrder.Remove(st.seenOrder.Back()).(string))
	}
	st.seen[text] = st.seenOrder.PushFront(text)
	return false
}

func (st *connState) add(text string) {
	st.prepared[text] = st.order.PushFront(text)
}

func (st *connState) remove(text string) {
	if e, ok := st.prepared[text]; ok {
		st.order.Remove(e)
		delete(st.prepared, text)
	}
}

// makeRoom deallocates the least recently used statements until fewer
// than capacity remain. The connection must be idle.
func (st *connState) makeRoom(ctx context.Context, c *pgx.Conn, capacity int) error {
	for st.order.Len() >= capacity {
		text := st.order.Back().Value.(string)
		if err := c.Deallocate(ctx, text); err != nil {
			return err
		}
		st.remove(text)
	}
	return nil
}

// forget deallocates text, whatever state the server holds it in, and
// remembers it as read once: its next read prepares it again.
func (st *connState) forget(ctx context.Context, c *pgx.Conn, text string, capacity int) error {
	st.remove(text)
	st.secondSight(text, capacity)
	return c.Deallocate(ctx, text)
}

// preparedText is the text under which sql is prepared for schema. Schema
// names are validated identifiers, so the comment cannot be closed early.
func preparedText(schema, sql string) string {
	return "/* tenant " + schema + " */ " + sql
}

// stalePlan reports whether err says that a prepared statement no longer
// fits the server: its result columns changed under a migration, or the
// server does not hold it (a connection pooler in front of PostgreSQL
// switched server connections). Either way the statement must be prepared
// again.
func stalePlan(err error) bool {
	var pg *pgconn.PgError
	if !errors.As(err, &pg) {
		return false
	}
	switch pg.Code {
	case "0A000":
		return strings.Contains(pg.Message, "cached plan must not change result type")
	case "26000": // invalid_sql_statement_name
		return true
	}
	return false
}
