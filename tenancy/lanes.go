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
// connections t holds with this one. It comes from t's lane, unless t
// holds more than half a lane's connections or its lane has none to
// spare: then from the other lane with the most to spare, if any. A busy
// tenant thus leaves half of its lane to the other tenants of the lane,
// and no tenant waits on a full lane while another has room. A tenant's
// share of the whole pool is bounded by Config.MaxConnsPerTenant.
func (db *DB) acquire(ctx context.Context, t *Tenant, held int) (*pgxpool.Conn, error) {
	if len(db.lanes) == 1 {
		return db.lanes[0].Acquire(ctx)
	}
	i := int(uint64(t.ID) % uint64(len(db.lanes)))
	home := db.lanes[i]
	if 2*held > db.laneConns || spare(home) == 0 {
		best, most := home, 0
		for k := 1; k < len(db.lanes); k++ {
			if p := db.lanes[(i+k)%len(db.lanes)]; spare(p) > most {
				best, most = p, spare(p)
			}
		}
		return best.Acquire(ctx)
	}
	return home.Acquire(ctx)
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
