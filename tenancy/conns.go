package tenancy

import (
	"container/list"
	"context"
	"errors"
	"fmt"
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
//
// The statements that open, scope and close a read are prepared too (see
// DB.prepareScoping).

// connState is what tenancy keeps about one pooled connection, in the
// connection's custom data.
type connState struct {
	queries stmtSet // tenant queries, under their preparedText
	scoping stmtSet // statements that open, scope and close reads
	control stmtSet // control-plane statements (see DB.ControlQuery)

	// schemas is the set of tenant schemas the connection has served.
	// Every one of them left catalog entries in the backend's caches.
	schemas map[string]struct{}
	uses    int // tenant scopes served

	// borrowed is the lane the connection belongs to while a tenant of
	// another lane holds it (see DB.acquire), else -1.
	borrowed int
}

const connStateKey = "tenancy.conn"

func stateOf(c *pgx.Conn) *connState {
	data := c.PgConn().CustomData()
	if st, ok := data[connStateKey].(*connState); ok {
		return st
	}
	st := &connState{schemas: map[string]struct{}{}, borrowed: -1}
	data[connStateKey] = st
	return st
}

// touch records that the connection served schema and returns how many
// schemas it has served.
func (st *connState) touch(schema string) int {
	st.schemas[schema] = struct{}{}
	return len(st.schemas)
}

// reset forgets every prepared statement, after the server dropped them
// all (see stalePlan).
func (st *connState) reset() {
	st.queries = stmtSet{}
	st.scoping = stmtSet{}
	st.control = stmtSet{}
}

// stmtSet is a bounded set of statements prepared on one connection, keyed
// by the text pgx knows them under, least recently used first out; with
// the texts read once but not (or no longer) prepared.
type stmtSet struct {
	prepared map[string]*list.Element
	order    list.List // prepared texts, most recently used first
	seen     map[string]*list.Element
	seenList list.List // seen texts, most recent first
}

// use reports whether text is prepared, and marks it as the most recently
// used.
func (s *stmtSet) use(text string) bool {
	e, ok := s.prepared[text]
	if ok {
		s.order.MoveToFront(e)
	}
	return ok
}

// secondSight reports whether text was read before without being
// prepared; if not, it remembers text, forgetting the oldest such text
// beyond capacity.
func (s *stmtSet) secondSight(text string, capacity int) bool {
	if e, ok := s.seen[text]; ok {
		s.seenList.Remove(e)
		delete(s.seen, text)
		return true
	}
	if s.seen == nil {
		s.seen = map[string]*list.Element{}
	}
	for s.seenList.Len() >= capacity {
		delete(s.seen, s.seenList.Remove(s.seenList.Back()).(string))
	}
	s.seen[text] = s.seenList.PushFront(text)
	return false
}

// prepare prepares text on c, which must be idle or in a transaction,
// first deallocating the least recently used statements so that fewer
// than capacity remain.
func (s *stmtSet) prepare(ctx context.Context, c *pgx.Conn, text string, capacity int) error {
	for s.order.Len() >= capacity {
		old := s.order.Back().Value.(string)
		if err := c.Deallocate(ctx, old); err != nil {
			return fmt.Errorf("drop prepared statement: %w", err)
		}
		s.remove(old)
	}
	if _, err := c.Prepare(ctx, text, text); err != nil {
		return err
	}
	if s.prepared == nil {
		s.prepared = map[string]*list.Element{}
	}
	s.prepared[text] = s.order.PushFront(text)
	return nil
}

func (s *stmtSet) remove(text string) {
	if e, ok := s.prepared[text]; ok {
		s.order.Remove(e)
		delete(s.prepared, text)
	}
}

// forget deallocates text, whatever state the server holds it in, and
// remembers it as read once: its next read prepares it again.
func (s *stmtSet) forget(ctx context.Context, c *pgx.Conn, text string, capacity int) error {
	s.remove(text)
	s.secondSight(text, capacity)
	return c.Deallocate(ctx, text)
}

// preparedText is the text under which sql is prepared for schema. Schema
// names are validated identifiers, so the comment cannot be closed early.
func preparedText(schema, sql string) string {
	return "/* tenant " + schema + " */ " + sql
}

// stalePlan reports whether err says that a prepared statement no longer
// fits: its result columns changed under a migration. It must be prepared
// again.
func stalePlan(err error) bool {
	var pg *pgconn.PgError
	if !errors.As(err, &pg) {
		return false
	}
	return pg.Code == "0A000" && strings.Contains(pg.Message, "cached plan must not change result type")
}

// lostStatements reports whether err says that the server does not hold a
// statement prepared on the connection, as when a pooler in front of
// PostgreSQL switched server connections: every statement must then be
// taken as lost.
func lostStatements(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && pg.Code == "26000" // invalid_sql_statement_name
}
