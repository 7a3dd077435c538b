package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/xatlabs/xat/tenancy"
)

// TenancyOptions sizes the tenancy benchmark.
type TenancyOptions struct {
	Tenants     int           // tenants for provisioning, migrations and reads
	MemTenants  int           // tenants for the second migrator memory figure
	NoopTenants int           // tenants for the nothing-pending run
	ReadFor     time.Duration // length of each read round
	Clients     int           // concurrent readers
	Self        string        // this program, re-run as a child to measure RSS
}

// Tenancy runs the tenancy benchmark and writes a Markdown report to w.
func Tenancy(ctx context.Context, e *Env, o TenancyOptions, w io.Writer) error {
	uid, err := e.seedUser(ctx)
	if err != nil {
		return err
	}

	// Provisioning, first Tenants tenants.
	first, err := e.provision(ctx, 0, o.Tenants)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "## Provisioning (one transaction per tenant: registry row, role, schema, %d tenant migrations, guard policies, domain)\n\n",
		len(e.Config.TenantMigrations))
	fmt.Fprintf(w, "| tenants | p50 ms | p95 ms | p50 of first 10%% | p50 of last 10%% |\n|---|---|---|---|---|\n")
	writeProvision(w, 0, first)

	fmt.Fprintln(w)
	if err := e.writeReads(ctx, uid, o, w); err != nil {
		return err
	}

	// Migrations across Tenants tenants.
	serial, rss1, err := e.migrateChild(ctx, o.Self, 1)
	if err != nil {
		return err
	}
	parallel, _, err := e.migrateChild(ctx, o.Self, 4)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\n## One new tenant migration (a column and an index) across %d tenants, `xat migrate` as a child process\n\n", o.Tenants)
	fmt.Fprintf(w, "| run | seconds | migrator peak RSS |\n|---|---|---|\n")
	fmt.Fprintf(w, "| serial | %.2f | %d MiB |\n", serial.Seconds(), rss1/1024)
	fmt.Fprintf(w, "| --parallel 4 | %.2f | |\n", parallel.Seconds())

	// Memory over more tenants.
	if o.MemTenants > o.Tenants {
		more, err := e.provision(ctx, o.Tenants, o.MemTenants)
		if err != nil {
			return err
		}
		first = append(first, more...)
		d, rss2, err := e.migrateChild(ctx, o.Self, 4)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "\n## Migrator memory\n\n| tenants | peak RSS | seconds (--parallel 4) |\n|---|---|---|\n")
		fmt.Fprintf(w, "| %d | %d MiB | %.2f |\n", o.Tenants, rss1/1024, serial.Seconds())
		fmt.Fprintf(w, "| %d | %d MiB | %.2f |\n", o.MemTenants, rss2/1024, d.Seconds())
	}

	// Nothing pending over NoopTenants tenants.
	if o.NoopTenants > len(first) {
		more, err := e.provision(ctx, len(first), o.NoopTenants)
		if err != nil {
			return err
		}
		first = append(first, more...)
	}
	var noop []time.Duration
	for range 5 {
		start := time.Now()
		rep, err := e.DB.Migrate(ctx, tenancy.MigrateOptions{})
		if err != nil {
			return err
		}
		if len(rep.Pending) != 0 {
			return fmt.Errorf("nothing-pending run found %d pending", len(rep.Pending))
		}
		noop = append(noop, time.Since(start))
	}
	slices.Sort(noop)
	fmt.Fprintf(w, "\n## `Migrate` with nothing pending over %d tenants (in process, 5 runs)\n\n", len(first))
	fmt.Fprintf(w, "| min ms | median ms | max ms |\n|---|---|---|\n| %.1f | %.1f | %.1f |\n",
		ms(noop[0]), ms(noop[2]), ms(noop[4]))

	fmt.Fprintf(w, "\n## Provisioning over all %d tenants\n\n", len(first))
	fmt.Fprintf(w, "| tenants | p50 ms | p95 ms | p50 of first 10%% | p50 of last 10%% |\n|---|---|---|---|---|\n")
	writeProvision(w, 0, first)
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func writeProvision(w io.Writer, _ int, d []time.Duration) {
	tenth := max(1, len(d)/10)
	fmt.Fprintf(w, "| %d | %.1f | %.1f | %.1f | %.1f |\n", len(d),
		ms(pct(d, 50)), ms(pct(d, 95)), ms(pct(d[:tenth], 50)), ms(pct(d[len(d)-tenth:], 50)))
}

func pct(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

func (e *Env) seedUser(ctx context.Context) (int64, error) {
	var id int64
	err := e.DB.Control(ctx, func(ctx context.Context, tx pgx.Tx) error {
		return tx.QueryRow(ctx, "INSERT INTO users (email, password_hash) VALUES ('bench@example.com', 'x') RETURNING id").Scan(&id)
	})
	return id, err
}

// provision creates tenants from..to-1 one after another and returns how
// long each took.
func (e *Env) provision(ctx context.Context, from, to int) ([]time.Duration, error) {
	out := make([]time.Duration, 0, to-from)
	for i := from; i < to; i++ {
		start := time.Now()
		_, err := e.DB.CreateTenant(ctx, tenancy.NewTenant{
			Name:   fmt.Sprintf("Bench %05d", i),
			Schema: fmt.Sprintf("tenant_b%05d", i),
			Domain: fmt.Sprintf("b%05d.bench.test", i),
		})
		if err != nil {
			return nil, err
		}
		out = append(out, time.Since(start))
	}
	return out, nil
}

// Reads runs the read part of the tenancy benchmark alone, over a few
// tenants, and writes a Markdown report to w.
func Reads(ctx context.Context, e *Env, o TenancyOptions, w io.Writer) error {
	uid, err := e.seedUser(ctx)
	if err != nil {
		return err
	}
	if _, err := e.provision(ctx, 0, o.Tenants); err != nil {
		return err
	}
	return e.writeReads(ctx, uid, o, w)
}

func (e *Env) writeReads(ctx context.Context, uid int64, o TenancyOptions, w io.Writer) error {
	scoped, unscoped, inTenant, unprepared, err := e.reads(ctx, uid, o)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "## Reads of one indexed row, %d clients, rounds of %s interleaved\n\n", o.Clients, o.ReadFor)
	fmt.Fprintf(w, "| path | reads/s (median of rounds) | ratio to unscoped |\n|---|---|---|\n")
	fmt.Fprintf(w, "| unscoped: schema-qualified query, cached prepared statement, no transaction | %.0f | 1.00 |\n", unscoped)
	fmt.Fprintf(w, "| scoped read path `tenancy.Row` (one settings statement and the query, prepared for the tenant's schema, in one pipeline and one implicit transaction) | %.0f | %.2f |\n", scoped, scoped/unscoped)
	fmt.Fprintf(w, "| the same scoped read path with preparation off (`StatementsPerConn` < 0) | %.0f | %.2f |\n", unprepared, unprepared/unscoped)
	fmt.Fprintf(w, "| scoped `InTenant` transaction (3 round trips, query unprepared) | %.0f | %.2f |\n", inTenant, inTenant/unscoped)
	return nil
}

// reads measures the scoped read path, an InTenant transaction and the same
// read without scoping, in interleaved rounds, and returns the median rate
// of each.
func (e *Env) reads(ctx context.Context, uid int64, o TenancyOptions) (scoped, unscoped, inTenant, unprepared float64, err error) {
	t, err := e.DB.Tenant(ctx, "tenant_b00000")
	if err != nil {
		return 0, 0, 0, 0, err
	}
	// Reads run as a partner administrator, whom the owner policies let
	// see every collector.
	tctx := tenancy.WithSettings(tenancy.WithTenant(ctx, t),
		tenancy.Setting{Name: "xat.role", Value: "admin"}, tenancy.Setting{Name: "xat.user_id", Value: fmt.Sprint(uid)})
	err = e.DB.InTenant(tctx, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO collectors (site_name, machine_name, platform_id, owner_id)
			SELECT 'site', 'machine-' || g, 1, $1 FROM generate_series(1, 1000) g`, uid)
		return err
	})
	if err != nil {
		return 0, 0, 0, 0, err
	}

	plain, err := pgxpool.New(ctx, e.AdminURL+" pool_max_conns=8")
	if err != nil {
		return 0, 0, 0, 0, err
	}
	defer plain.Close()
	qualified := "SELECT machine_name FROM tenant_b00000.collectors WHERE id = $1"
	unq := func(ctx context.Context, id int64) error {
		var s string
		return plain.QueryRow(ctx, qualified, id).Scan(&s)
	}
	sc := func(ctx context.Context, id int64) error {
		_, err := tenancy.Row(tctx, e.DB, pgx.RowTo[string], "SELECT machine_name FROM collectors WHERE id = $1", id)
		return err
	}
	cfg := e.DB.Config()
	cfg.StatementsPerConn = -1
	off := tenancy.New(cfg, e.DB.ServePool(), e.DB.ServePool())
	un := func(ctx context.Context, id int64) error {
		_, err := tenancy.Row(tctx, off, pgx.RowTo[string], "SELECT machine_name FROM collectors WHERE id = $1", id)
		return err
	}
	it := func(ctx context.Context, id int64) error {
		return e.DB.InTenant(tctx, func(ctx context.Context, tx pgx.Tx) error {
			var s string
			return tx.QueryRow(ctx, "SELECT machine_name FROM collectors WHERE id = $1", id).Scan(&s)
		})
	}
	var rs, ru, ri, rn []float64
	for range 3 {
		for _, c := range []struct {
			fn  func(context.Context, int64) error
			out *[]float64
		}{{unq, &ru}, {sc, &rs}, {it, &ri}, {un, &rn}} {
			rate, err := rateOf(ctx, o.Clients, o.ReadFor, c.fn)
			if err != nil {
				return 0, 0, 0, 0, err
			}
			*c.out = append(*c.out, rate)
		}
	}
	return median(rs), median(ru), median(ri), median(rn), nil
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// rateOf runs fn from clients goroutines for d and returns calls per second.
func rateOf(ctx context.Context, clients int, d time.Duration, fn func(context.Context, int64) error) (float64, error) {
	var n atomic.Int64
	var firstErr error
	var once sync.Once
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := int64(c*97%1000 + 1)
			for time.Now().Before(deadline) {
				if err := fn(ctx, id); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				n.Add(1)
				id = id%1000 + 1
			}
		}()
	}
	wg.Wait()
	return float64(n.Load()) / d.Seconds(), firstErr
}

// migrateChild adds one tenant migration and applies it in a child process,
// returning the run's duration and the child's peak RSS in KiB.
func (e *Env) migrateChild(ctx context.Context, self string, parallel int) (time.Duration, int64, error) {
	version := len(e.Config.TenantMigrations) + 1
	cmd := exec.CommandContext(ctx, self, "migrate-child",
		"--admin", e.AdminURL, "--serve", e.ServeURL,
		"--version", fmt.Sprint(version), "--parallel", fmt.Sprint(parallel))
	cmd.Stdout = os.Stderr
	cmd.Stderr = os.Stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return 0, 0, fmt.Errorf("migrate child: %w", err)
	}
	d := time.Since(start)
	e.Config.TenantMigrations = append(e.Config.TenantMigrations, BenchMigration(version))
	e.DB = e.DB.WithMigrations(e.Config.SharedMigrations, e.Config.TenantMigrations)
	rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss
	return d, rss, nil
}

// BenchMigration is the migration the benchmark adds: a column and an index
// on the largest tenant table.
func BenchMigration(version int) tenancy.Migration {
	return tenancy.Migration{Version: version, Name: fmt.Sprintf("bench_%d", version), SQL: fmt.Sprintf(
		"ALTER TABLE collectors ADD COLUMN bench_%d text; CREATE INDEX collectors_bench_%d ON collectors (bench_%d);",
		version, version, version)}
}
