// Command xatbench runs XAT's benchmarks on a throwaway local PostgreSQL
// and prints a Markdown report. See docs/benchmarks.md for the latest
// figures and how they were produced.
//
//	go run ./cmd/xatbench tenancy [-tenants 1000] [-mem-tenants 5000] [-noop-tenants 10000]
//	go run ./cmd/xatbench reads [-tenants 10] [-clients 4]
//	go run ./cmd/xatbench http [-tenants 10,100,1000] [-clients 16] [-warmup 60s]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/xatlabs/xat/internal/bench"
	"github.com/xatlabs/xat/internal/httpapi"
	"github.com/xatlabs/xat/internal/postgres"
	"github.com/xatlabs/xat/migrations"
	"github.com/xatlabs/xat/tenancy"
	"github.com/xatlabs/xat/tenancy/storage"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "xatbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: xatbench tenancy|reads|http|report|upload [flags]")
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	switch args[0] {
	case "tenancy":
		return runTenancy(ctx, log, args[1:])
	case "reads":
		return runReads(ctx, log, args[1:])
	case "migrate-child":
		return migrateChild(ctx, log, args[1:])
	case "http":
		return runHTTP(ctx, log, args[1:])
	case "serve-child":
		return serveChild(ctx, args[1:])
	case "bare-child":
		return bareChild(ctx, args[1:])
	case "report":
		return runReport(ctx, log, args[1:])
	case "upload":
		return runUpload(ctx, log, args[1:])
	}
	return fmt.Errorf("unknown benchmark %q", args[0])
}

func runTenancy(ctx context.Context, log *slog.Logger, args []string) error {
	fs := flag.NewFlagSet("tenancy", flag.ContinueOnError)
	o := bench.TenancyOptions{}
	fs.IntVar(&o.Tenants, "tenants", 1000, "tenants to provision, migrate and read")
	fs.IntVar(&o.MemTenants, "mem-tenants", 5000, "tenants for the second migrator memory figure")
	fs.IntVar(&o.NoopTenants, "noop-tenants", 10000, "tenants for the nothing-pending migration run")
	fs.DurationVar(&o.ReadFor, "read-for", 3*time.Second, "length of each read round")
	fs.IntVar(&o.Clients, "clients", 4, "concurrent readers")
	out := fs.String("out", "", "also write the report to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return withReport(ctx, log, "tenancy", args, *out, func(w io.Writer, e *bench.Env, self string) error {
		o.Self = self
		return bench.Tenancy(ctx, e, o, w)
	})
}

func runReads(ctx context.Context, log *slog.Logger, args []string) error {
	fs := flag.NewFlagSet("reads", flag.ContinueOnError)
	o := bench.TenancyOptions{}
	fs.IntVar(&o.Tenants, "tenants", 10, "tenants to provision")
	fs.DurationVar(&o.ReadFor, "read-for", 3*time.Second, "length of each read round")
	fs.IntVar(&o.Clients, "clients", 4, "concurrent readers")
	out := fs.String("out", "", "also write the report to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return withReport(ctx, log, "reads", args, *out, func(w io.Writer, e *bench.Env, self string) error {
		return bench.Reads(ctx, e, o, w)
	})
}

// migrateChild is the migrator run in its own process, so that its peak
// memory can be read from the parent.
func migrateChild(ctx context.Context, log *slog.Logger, args []string) error {
	fs := flag.NewFlagSet("migrate-child", flag.ContinueOnError)
	admin := fs.String("admin", "", "admin connection string")
	serve := fs.String("serve", "", "serving connection string")
	version := fs.Int("version", 0, "tenant version to migrate to")
	parallel := fs.Int("parallel", 1, "tenants migrated at once")
	if err := fs.Parse(args); err != nil {
		return err
	}
	shared, err := migrations.Shared()
	if err != nil {
		return err
	}
	tenant, err := migrations.Tenant()
	if err != nil {
		return err
	}
	for v := len(tenant) + 1; v <= *version; v++ {
		tenant = append(tenant, bench.BenchMigration(v))
	}
	cfg := tenancy.Config{SchemaPrefix: "tenant_", RolePrefix: "xb_", SharedMigrations: shared, TenantMigrations: tenant, Logger: log}
	db, err := tenancy.Connect(ctx, cfg, *serve, *admin, 4)
	if err != nil {
		return err
	}
	defer db.Close()
	rep, err := db.Migrate(ctx, tenancy.MigrateOptions{Parallel: *parallel})
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "migrated %d tenants to %d\n", rep.Applied, *version)
	return nil
}

func runHTTP(ctx context.Context, log *slog.Logger, args []string) error {
	fs := flag.NewFlagSet("http", flag.ContinueOnError)
	o := bench.HTTPOptions{}
	tenants := fs.String("tenants", "10,100,1000", "comma-separated partner counts to rotate the Host header over")
	fs.IntVar(&o.Clients, "clients", 16, "concurrent keep-alive connections (and pgbench clients)")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "length of each run")
	fs.IntVar(&o.Rounds, "rounds", 2, "interleaved rounds")
	fs.IntVar(&o.Pool, "pool", 16, "the server's serving pool size (xat serve's default is 16)")
	fs.DurationVar(&o.Warmup, "warmup", 5*time.Second, "load before each measured run (checked, not measured)")
	fs.StringVar(&o.Loader, "loader", bench.LoaderName(), "load generator: wrk (Debian's wrk) or go")
	fs.StringVar(&o.Profile, "cpuprofile", "", "write the server's CPU profile of each run to files named PATH.<partners>.<time>")
	out := fs.String("out", "", "also write the report to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.Loader != "wrk" && o.Loader != "go" {
		return fmt.Errorf("-loader: %q is neither wrk nor go", o.Loader)
	}
	for _, s := range strings.Split(*tenants, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("-tenants: %q is not a positive count", s)
		}
		o.Tenants = append(o.Tenants, n)
	}
	return withReport(ctx, log, "http", args, *out, func(w io.Writer, e *bench.Env, self string) error {
		o.Self = self
		fmt.Fprintf(w, "Server and load generator (%s) share the machine.\n\n", o.Loader)
		return bench.HTTP(ctx, e, o, w)
	})
}

// start finds this program, to re-run as a child, and sets up the
// benchmark's database.
func start(ctx context.Context, log *slog.Logger) (string, *bench.Env, error) {
	self, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	e, err := bench.Setup(ctx, log)
	return self, e, err
}

// report returns the writer of a report: stdout, and the file too when out
// is set.
func report(out string) (io.Writer, func(), error) {
	if out == "" {
		return os.Stdout, func() {}, nil
	}
	f, err := os.Create(out)
	if err != nil {
		return nil, nil, err
	}
	return io.MultiWriter(os.Stdout, f), func() { f.Close() }, nil
}

// serveChild runs the API on a free loopback port, prints the address on
// stdout and serves until killed. Access logs are formatted as in
// production (JSON, info) and discarded.
func serveChild(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("serve-child", flag.ContinueOnError)
	admin := fs.String("admin", "", "admin connection string")
	serve := fs.String("serve", "", "serving connection string")
	files := fs.String("files", "", "storage URL for uploads (none: upload routes answer 503)")
	profile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	poolSize := fs.Int("pool", 16, "serving pool size (xat serve's default)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	log := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	shared, err := migrations.Shared()
	if err != nil {
		return err
	}
	tenant, err := migrations.Tenant()
	if err != nil {
		return err
	}
	cfg := tenancy.Config{SchemaPrefix: "tenant_", RolePrefix: "xb_", SharedMigrations: shared, TenantMigrations: tenant, Logger: log}
	db, err := tenancy.Connect(ctx, cfg, *serve, *admin, int32(*poolSize))
	if err != nil {
		return err
	}
	defer db.Close()
	resolver := tenancy.NewResolver(db, tenancy.ResolverConfig{PublicHosts: []string{"localhost"}, Logger: log})
	var data httpapi.DataConfig
	if *files != "" {
		if data.Files, err = storage.Open(ctx, *files); err != nil {
			return err
		}
		data.MaxUploadBytes = 8 << 30
	}
	srv := httpapi.New(httpapi.Config{Data: data}, db, postgres.New(db), resolver, log)
	go resolver.Listen(ctx, *serve)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr().String())
	return srv.Serve(ctx, ln)
}

// bareChild runs the HTTP benchmark's bare reference server (see
// bench.ServeBare).
func bareChild(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bare-child", flag.ContinueOnError)
	url := fs.String("url", "", "connection string of pgbench's database")
	poolSize := fs.Int("pool", 16, "pool size")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return bench.ServeBare(ctx, *url, *poolSize)
}

func runReport(ctx context.Context, log *slog.Logger, args []string) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	n := fs.Int("tenants", 1000, "partners to report over")
	out := fs.String("out", "", "also write the report to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return withReport(ctx, log, "report", args, *out, func(w io.Writer, e *bench.Env, _ string) error {
		return bench.Report(ctx, e, *n, w)
	})
}

func runUpload(ctx context.Context, log *slog.Logger, args []string) error {
	fs := flag.NewFlagSet("upload", flag.ContinueOnError)
	size := fs.Int64("mib", 1024, "size of each upload in MiB")
	count := fs.Int("uploads", 3, "uploads, one after another")
	out := fs.String("out", "", "also write the report to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return withReport(ctx, log, "upload", args, *out, func(w io.Writer, e *bench.Env, self string) error {
		return bench.Upload(ctx, e, self, *size<<20, *count, w)
	})
}

// reportTitles names each benchmark in its report's heading.
var reportTitles = map[string]string{
	"tenancy": "Tenancy",
	"reads":   "Scoped reads",
	"http":    "HTTP",
	"report":  "Report",
	"upload":  "Upload",
}

// withReport sets up the benchmark's database and report, writes the
// report's heading with the command that produced it, and runs fn.
func withReport(ctx context.Context, log *slog.Logger, name string, args []string, out string,
	fn func(w io.Writer, e *bench.Env, self string) error) error {
	self, e, err := start(ctx, log)
	if err != nil {
		return err
	}
	defer e.Close()
	w, closeOut, err := report(out)
	if err != nil {
		return err
	}
	defer closeOut()
	fmt.Fprintf(w, "# %s benchmark\n\nCommand: `go run ./cmd/xatbench %s %s`  \nRun: %s, PostgreSQL from %s, fsync on.\n\n",
		reportTitles[name], name, strings.Join(args, " "), time.Now().UTC().Format(time.RFC3339),
		e.Cluster.BinDir())
	return fn(w, e, self)
}
