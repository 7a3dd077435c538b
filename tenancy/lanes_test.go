package tenancy_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/xatlabs/xat/tenancy"
	"github.com/xatlabs/xat/tenancy/tenancytest"
)

// TestLanes: with two lanes, two tenants whose ids fall in different
// lanes never share a backend, whether they read or write, and each keeps
// to its lane's connections; control-plane work has a pool of its own.
func TestLanes(t *testing.T) {
	t.Parallel()
	forGuards(t, func(t *testing.T, db *tenancy.DB) {
		two := tenancytest.Reconfigured(t, db, 4, func(c *tenancy.Config) { c.Lanes = 2 })
		require.Equal(t, 2, two.Config().Lanes)
		require.Len(t, two.Pools(), 3)

		a := tenancytest.NewTenant(t, two)
		b := tenancytest.NewTenant(t, two)
		for b.ID%2 == a.ID%2 {
			b = tenancytest.NewTenant(t, two)
		}
		backends := func(tn *tenancy.Tenant) map[int]bool {
			ctx := tenancy.WithTenant(context.Background(), tn)
			pids := map[int]bool{}
			for range 20 {
				pids[backendPID(t, ctx, two)] = true
				err := two.InTenant(ctx, func(ctx context.Context, tx pgx.Tx) error {
					var pid int
					err := tx.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid)
					pids[pid] = true
					return err
				})
				require.NoError(t, err)
			}
			return pids
		}
		pa, pb := backends(a), backends(b)
		require.LessOrEqual(t, len(pa), 2, "a lane has two connections")
		require.LessOrEqual(t, len(pb), 2)
		for pid := range pa {
			require.False(t, pb[pid], "backend %d served both lanes", pid)
		}
		requireCleanPool(t, two)
	})
}

func TestLanesDefault(t *testing.T) {
	t.Parallel()
	db := openDB(t, tenancy.GuardRole)
	for _, c := range []struct {
		size        int32
		lanes, want int
	}{{1, 0, 1}, {7, 0, 1}, {8, 0, 2}, {16, 0, 4}, {16, 1, 1}, {2, 8, 2}} {
		d := tenancytest.Reconfigured(t, db, c.size, func(cfg *tenancy.Config) { cfg.Lanes = c.lanes })
		require.Equal(t, c.want, d.Config().Lanes, "pool %d, lanes %d", c.size, c.lanes)
		pools := d.Pools()
		if c.want == 1 {
			require.Len(t, pools, 1)
			continue
		}
		require.Len(t, pools, c.want+1)
		var sum int32
		for _, p := range pools[1:] {
			sum += p.Config().MaxConns
		}
		require.Equal(t, c.size, sum, "the lanes share the pool's size")
	}
}
