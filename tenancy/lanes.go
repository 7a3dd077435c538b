package tenancy

import (
	"context"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
)

// openLanes returns the pools that tenant work runs on: serve alone with
// one lane, else n pools with serve's configuration sharing total
// connections. The pools connect lazily; a configuration they refuse
// leaves tenant work on serve, logged.
func openLanes(serve *pgxpool.Pool, n int, total int32, log *slog.Logger) []*pgxpool.Pool {
	if n <= 1 {
		return []*pgxpool.Pool{serve}
	}
	size := max(1, total/int32(n))
	lanes := make([]*pgxpool.Pool, 0, n)
	for range n {
		cfg := serve.Config() // a copy
		cfg.MaxConns, cfg.MinConns = size, 0
		p, err := pgxpool.NewWithConfig(context.Background(), cfg)
		if err != nil {
			log.Warn("Connection lanes not opened; tenant work shares one pool", slog.Any("error", err))
			for _, l := range lanes {
				l.Close()
			}
			return []*pgxpool.Pool{serve}
		}
		lanes = append(lanes, p)
	}
	return lanes
}

// acquire returns a connection for t's scoped work, held being how many
// connections t holds with this one. It comes from t's lane while t holds
// at most half a lane's connections; beyond that, from the other lane with
// the most to spare, if more than half of it is spare and tenants of other
// lanes hold less than half of it, else from t's lane, where t queues with
// its lane-mates in turn. A busy tenant thus spreads before it crowds its
// own lane, and a lane's own tenants always keep at least half of it,
// however many tenants spill into it at once. Tenants otherwise wait for
// their own lane rather than take another's: in the HTTP benchmark,
// spilling over whenever a lane was busy cost a tenth of the rate over a
// thousand partners, as backends then served every partner again. A
// tenant's share of the whole pool is bounded by Config.MaxConnsPerTenant.
func (db *DB) acquire(ctx context.Context, t *Tenant, held int) (*pgxpool.Conn, error) {
	if len(db.lanes) == 1 {
		return db.lanes[0].Acquire(ctx)
	}
	i := int(uint64(t.ID) % uint64(len(db.lanes)))
	if 2*held > db.laneConns {
		best, most := -1, 0
		for k := 1; k < len(db.lanes); k++ {
			j := (i + k) % len(db.lanes)
			if n := spare(db.lanes[j]); 2*n > db.laneConns && n > most {
				best, most = j, n
			}
		}
		if best >= 0 && db.borrow(best) {
			conn, err := db.lanes[best].Acquire(ctx)
			if err != nil {
				db.borrowed[best].Add(-1)
				return nil, err
			}
			stateOf(conn.Conn()).borrowed = best
			return conn, nil
		}
	}
	return db.lanes[i].Acquire(ctx)
}

// borrow counts one more connection of lane held by a tenant of another
// lane, unless that would make it half of the lane or more.
func (db *DB) borrow(lane int) bool {
	n := &db.borrowed[lane]
	for {
		b := n.Load()
		if 2*int(b+1) > db.laneConns {
			return false
		}
		if n.CompareAndSwap(b, b+1) {
			return true
		}
	}
}

// giveBack ends the borrowing of a connection, if it was borrowed from
// another lane.
func (db *DB) giveBack(st *connState) {
	if st.borrowed >= 0 {
		db.borrowed[st.borrowed].Add(-1)
		st.borrowed = -1
	}
}

// spare returns how many more connections p can hand out at once: idle
// ones and ones it may still open.
func spare(p *pgxpool.Pool) int {
	s := p.Stat()
	return int(s.IdleConns() + s.MaxConns() - s.TotalConns())
}

// Pools returns every pool of serving connections: the control-plane
// pool first, then the lanes of tenant work when there are several. For
// statistics.
func (db *DB) Pools() []*pgxpool.Pool {
	if len(db.lanes) == 1 && db.lanes[0] == db.serve {
		return []*pgxpool.Pool{db.serve}
	}
	return append([]*pgxpool.Pool{db.serve}, db.lanes...)
}

// closeLanes closes the lanes New opened.
func (db *DB) closeLanes() {
	for _, l := range db.lanes {
		if l != db.serve {
			l.Close()
		}
	}
}
