package tenancy_test

import (
	"context"
	"sync"
	"testing"
	"time"

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
	for _, g := range guards {
		t.Run(g.String(), func(t *testing.T) {
			t.Parallel()
			testLanes(t, laneDB(t, "lanes_"+g.String(), g))
		})
	}
}

// laneDB opens a database of the test's own, so that the tenants it
// creates get consecutive ids and fall in alternate lanes of two.
func laneDB(t *testing.T, name string, g tenancy.Guard) *tenancy.DB {
	return tenancytest.Open(t, tenancytest.Options{Name: name, Shared: sharedSet, Tenant: tenantSet, Guard: g})
}

// inLanes creates tenants of db until it has one in each lane of two: a
// and b.
func inLanes(t *testing.T, db *tenancy.DB) (a, b *tenancy.Tenant) {
	t.Helper()
	a = tenancytest.NewTenant(t, db)
	for range 20 {
		if b = tenancytest.NewTenant(t, db); b.ID%2 != a.ID%2 {
			return a, b
		}
	}
	t.Fatal("no tenant in the other lane")
	return nil, nil
}

func testLanes(t *testing.T, db *tenancy.DB) {
	two := tenancytest.Reconfigured(t, db, 4, func(c *tenancy.Config) { c.Lanes = 2 })
	require.Equal(t, 2, two.Config().Lanes)
	require.Len(t, two.Pools(), 3)

	a, b := inLanes(t, two)
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

// TestLaneSpill: a tenant holding more than half of its lane takes its
// next connection from an idle lane, and its lane-mates and the other
// lane's tenants are still served.
func TestLaneSpill(t *testing.T) {
	t.Parallel()
	db := laneDB(t, "lanes_spill", tenancy.GuardRole)
	two := tenancytest.Reconfigured(t, db, 4, func(c *tenancy.Config) { c.Lanes, c.MaxConnsPerTenant = 2, 4 })
	a, other := inLanes(t, two)
	mate, m2 := inLanes(t, two) // one of them is in a's lane
	if m2.ID%2 == a.ID%2 {
		mate = m2
	}
	require.Equal(t, a.ID%2, mate.ID%2)

	actx := tenancy.WithTenant(context.Background(), a)
	stop := make(chan struct{})
	release := sync.OnceFunc(func() { close(stop) })
	defer release()
	entered, done := make(chan struct{}), make(chan error, 2)
	hold := func() {
		done <- two.InTenant(actx, func(ctx context.Context, tx pgx.Tx) error {
			entered <- struct{}{}
			<-stop
			return nil
		})
	}
	go hold()
	<-entered
	go hold()
	<-entered

	// Lanes of two: a's second connection is more than half of its lane,
	// so it came from the other lane, idle until then.
	var acquired []int32
	for _, p := range two.Pools()[1:] {
		acquired = append(acquired, p.Stat().AcquiredConns())
	}
	require.Equal(t, []int32{1, 1}, acquired)

	for _, tn := range []*tenancy.Tenant{mate, other} {
		ctx, cancel := context.WithTimeout(tenancy.WithTenant(context.Background(), tn), 5*time.Second)
		n, err := tenancy.Row(ctx, two, pgx.RowTo[int], "SELECT 1")
		cancel()
		require.NoError(t, err)
		require.Equal(t, 1, n)
	}
	release()
	require.NoError(t, <-done)
	require.NoError(t, <-done)
}

// TestLaneBorrowBound: a tenant that wants every connection at once,
// concurrently, gets its own lane and at most half of each other lane, so
// tenants of every other lane are still served.
func TestLaneBorrowBound(t *testing.T) {
	t.Parallel()
	db := laneDB(t, "lanes_bound", tenancy.GuardRole)
	four := tenancytest.Reconfigured(t, db, 16, func(c *tenancy.Config) { c.Lanes, c.MaxConnsPerTenant = 4, 16 })
	byLane := map[int64]*tenancy.Tenant{}
	for range 40 {
		if len(byLane) == 4 {
			break
		}
		tn := tenancytest.NewTenant(t, four)
		if byLane[tn.ID%4] == nil {
			byLane[tn.ID%4] = tn
		}
	}
	require.Len(t, byLane, 4)
	a := byLane[0]

	actx := tenancy.WithTenant(context.Background(), a)
	stop := make(chan struct{})
	release := sync.OnceFunc(func() { close(stop) })
	defer release()
	entered, done := make(chan struct{}, 16), make(chan error, 16)
	for range 16 {
		go func() {
			done <- four.InTenant(actx, func(ctx context.Context, tx pgx.Tx) error {
				entered <- struct{}{}
				<-stop
				return nil
			})
		}()
	}
	// a's own lane (4) and half of each other lane (3 x 2); the rest wait.
	for range 10 {
		select {
		case <-entered:
		case <-time.After(10 * time.Second):
			t.Fatal("the tenant did not get its own lane and half of the others")
		}
	}
	select {
	case <-entered:
		t.Fatal("the tenant took more than half of another lane")
	case <-time.After(200 * time.Millisecond):
	}
	lanes := four.Pools()[1:]
	for i, p := range lanes {
		want := int32(2)
		if i == 0 {
			want = 4
		}
		require.Equal(t, want, p.Stat().AcquiredConns(), "lane %d", i)
	}

	for lane, tn := range byLane {
		if lane == 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(tenancy.WithTenant(context.Background(), tn), 5*time.Second)
		n, err := tenancy.Row(ctx, four, pgx.RowTo[int], "SELECT 1")
		cancel()
		require.NoError(t, err, "lane %d", lane)
		require.Equal(t, 1, n)
	}
	release()
	for range 16 {
		require.NoError(t, <-done)
	}
	requireCleanPool(t, four)
}
