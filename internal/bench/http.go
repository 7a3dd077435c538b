package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/xatlabs/xat/internal/auth"
	"github.com/xatlabs/xat/internal/postgres"
	"github.com/xatlabs/xat/tenancy"
)

// HTTPOptions sizes the HTTP load benchmark.
type HTTPOptions struct {
	Tenants  []int         // tenant counts to rotate the Host header over, e.g. 10, 100, 1000
	Clients  int           // concurrent connections, for XAT and for pgbench
	Duration time.Duration // length of each run
	Rounds   int           // interleaved rounds; medians are reported
	Self     string        // this program, re-run as the server child
	Loader   string        // "wrk" (Debian's wrk, in C) or "go" (a Go client in this process)
	Profile  string        // when set, the server child writes CPU profiles named after this path
	Warmup   time.Duration // load before each measured run, not measured
	Pool     int           // the server's serving pool size
}

// LoaderName returns the load generator to use: wrk when it is installed,
// else the Go client.
func LoaderName() string {
	if _, err := exec.LookPath("wrk"); err == nil {
		return "wrk"
	}
	return "go"
}

// httpTenant is one partner of the load: its host, and a member's
// personal token and login session, of which one is sent.
type httpTenant struct {
	host, token, session string
	viaSession           bool
}

// credential is the header that authenticates the partner's requests.
func (t httpTenant) credential() (name, value string) {
	if t.viaSession {
		return "Cookie", "xat_session=" + t.session
	}
	return "Authorization", "Bearer " + t.token
}

// viaSessions returns tenants authenticating with their login sessions.
func viaSessions(tenants []httpTenant) []httpTenant {
	out := make([]httpTenant, len(tenants))
	for i, t := range tenants {
		t.viaSession = true
		out[i] = t
	}
	return out
}

// HTTP measures GET /api/v1/collectors with a bearer token, rotating the
// Host header over many partners, side by side with pgbench -S on the same
// server at the same concurrency, and writes a Markdown report to w. Besides
// rates it reports where the CPU went: in PostgreSQL, in the server and in
// the load generator, per request (or per pgbench transaction).
func HTTP(ctx context.Context, e *Env, o HTTPOptions, w io.Writer) error {
	most := 0
	for _, n := range o.Tenants {
		most = max(most, n)
	}
	tenants, err := e.seedHTTP(ctx, most)
	if err != nil {
		return err
	}
	if err := e.pgbenchInit(ctx); err != nil {
		return err
	}

	xat := map[int][]loadRun{}
	var pgb, bare, sessions []loadRun
	for round := 0; round < o.Rounds; round++ {
		r, err := e.pgbench(ctx, o.Clients, o.Duration)
		if err != nil {
			return err
		}
		pgb = append(pgb, r)
		r, err = e.loadServer(ctx, o, bareServer(e, o), tenants[:o.Tenants[0]])
		if err != nil {
			return err
		}
		bare = append(bare, r)
		for _, n := range o.Tenants {
			r, err := e.loadServer(ctx, o, xatServer(e, o, n), tenants[:n])
			if err != nil {
				return err
			}
			xat[n] = append(xat[n], r)
		}
		r, err = e.loadServer(ctx, o, xatServer(e, o, o.Tenants[0]), viaSessions(tenants[:o.Tenants[0]]))
		if err != nil {
			return err
		}
		sessions = append(sessions, r)
	}

	base := medianRun(pgb)
	fmt.Fprintf(w, "## HTTP: `GET /api/v1/collectors` with a bearer token, %d keep-alive clients, %s runs after %s of warm-up, %d rounds interleaved\n\n",
		o.Clients, o.Duration, o.Warmup, o.Rounds)
	fmt.Fprintf(w, "CPU columns: CPU time per request (per transaction for pgbench) in PostgreSQL, in the XAT server and in the load generator, from /proc over the measured run.\n\n")
	fmt.Fprintf(w, "| load | requests or transactions/s (median) | ratio to pgbench -S | PostgreSQL CPU | server CPU | load generator CPU | server RSS after run |\n|---|---|---|---|---|---|---|\n")
	fmt.Fprintf(w, "| `pgbench -S` over TCP, same server, same clients | %.0f | 1.00 | %s | | %s | |\n", base.rate, us(base.postgres), us(base.loader))
	b := medianRun(bare)
	fmt.Fprintf(w, "| bare Go server: one `pgbench -S` query per request (see below) | %.0f | %.2f | %s | %s | %s | %d MiB |\n",
		b.rate, b.rate/base.rate, us(b.postgres), us(b.server), us(b.loader), b.rssKiB/1024)
	for _, n := range o.Tenants {
		r := medianRun(xat[n])
		fmt.Fprintf(w, "| XAT, Host rotating over %d partners | %.0f | %.2f | %s | %s | %s | %d MiB |\n",
			n, r.rate, r.rate/base.rate, us(r.postgres), us(r.server), us(r.loader), r.rssKiB/1024)
	}
	sr := medianRun(sessions)
	fmt.Fprintf(w, "| XAT, Host rotating over %d partners, login session cookie instead of token | %.0f | %.2f | %s | %s | %s | %d MiB |\n",
		o.Tenants[0], sr.rate, sr.rate/base.rate, us(sr.postgres), us(sr.server), us(sr.loader), sr.rssKiB/1024)
	if len(o.Tenants) >= 2 {
		first, last := medianRun(xat[o.Tenants[0]]), medianRun(xat[o.Tenants[len(o.Tenants)-1]])
		fmt.Fprintf(w, "\nRate over %d partners relative to %d: %.2f.\n", o.Tenants[len(o.Tenants)-1], o.Tenants[0], last.rate/first.rate)
	}
	fmt.Fprintf(w, "\nRate over %d partners relative to the bare Go server: %.2f.\n", o.Tenants[0], medianRun(xat[o.Tenants[0]]).rate/b.rate)
	fmt.Fprintf(w, "\nRate with session cookies relative to tokens, over %d partners: %.2f (a token's grant is cached for seconds; "+
		"a session is read from the database on every request, so that a logout takes effect at once).\n",
		o.Tenants[0], sr.rate/medianRun(xat[o.Tenants[0]]).rate)
	fmt.Fprintf(w, "\nThe bare Go server is the least any Go HTTP server over PostgreSQL does: net/http, a pgx pool of the same size, "+
		"and per request pgbench -S's query (one prepared statement, random key) and a small JSON answer; no tenant, "+
		"authentication, logs or metrics. Loaded by the same generator with the same headers, it shows what HTTP and Go "+
		"cost on this machine before XAT does anything.\n")
	return nil
}

// child is a server process for loadServer to start: its arguments, and
// how to check an answer to a partner's request during warm-up.
type child struct {
	args  []string
	check func(t httpTenant, body []byte) bool
}

// xatServer is XAT's API serving the first n seeded partners.
func xatServer(e *Env, o HTTPOptions, n int) child {
	args := []string{"serve-child", "--admin", e.AdminURL, "--serve", e.ServeURL, "--pool", strconv.Itoa(o.Pool)}
	if o.Profile != "" {
		args = append(args, "--cpuprofile", fmt.Sprintf("%s.%d.%d", o.Profile, n, time.Now().Unix()))
	}
	// Every collector's names carry its partner's host label.
	return child{args: args, check: func(t httpTenant, body []byte) bool { return strings.Contains(string(body), t.host[:6]) }}
}

// bareServer is the bare Go server (see ServeBare) over pgbench's tables.
func bareServer(e *Env, o HTTPOptions) child {
	args := []string{"bare-child", "--url", e.Cluster.TCPConnString("pgbench"), "--pool", strconv.Itoa(o.Pool)}
	return child{args: args, check: func(_ httpTenant, body []byte) bool { return strings.Contains(string(body), `"abalance"`) }}
}

// loadRun is one measured run: its rate, the CPU time per request spent in
// PostgreSQL, in the server and in the load generator, and the server's
// resident memory after it.
type loadRun struct {
	rate                     float64
	postgres, server, loader time.Duration
	rssKiB                   int64
}

// medianRun returns the run with the median rate.
func medianRun(runs []loadRun) loadRun {
	s := append([]loadRun(nil), runs...)
	sort.Slice(s, func(i, j int) bool { return s[i].rate < s[j].rate })
	return s[len(s)/2]
}

func us(d time.Duration) string {
	if d == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
}

// perRequest divides the CPU time d over the requests served at rate
// during span.
func perRequest(d time.Duration, rate float64, span time.Duration) time.Duration {
	n := rate * span.Seconds()
	if n <= 0 {
		return 0
	}
	return time.Duration(float64(d) / n)
}

// seedHTTP creates n partners, each with a member, its token and login
// session, and five collectors named after the partner.
func (e *Env) seedHTTP(ctx context.Context, n int) ([]httpTenant, error) {
	store := postgres.New(e.DB)
	hash, err := auth.TestHasher.Hash("benchmark-password")
	if err != nil {
		return nil, err
	}
	out := make([]httpTenant, 0, n)
	for i := 0; i < n; i++ {
		t, err := e.DB.CreateTenant(ctx, tenancy.NewTenant{
			Name: fmt.Sprintf("Load %05d", i), Schema: fmt.Sprintf("tenant_h%05d", i),
			Domain: fmt.Sprintf("h%05d.load.test", i)})
		if err != nil {
			return nil, err
		}
		u, err := store.CreateUser(ctx, fmt.Sprintf("user%05d@load.test", i), hash, false)
		if err != nil {
			return nil, err
		}
		if err := store.AddMember(ctx, t.ID, u.ID, postgres.RoleMember); err != nil {
			return nil, err
		}
		plain, th := auth.NewToken(auth.KindPersonal)
		if _, err := store.CreateToken(ctx, u.ID, t.ID, "load", th, nil); err != nil {
			return nil, err
		}
		tctx := tenancy.WithTenant(ctx, t)
		for c := 0; c < 5; c++ {
			if _, err := store.CreateCollector(tctx, postgres.Actor{UserID: u.ID}, t.Schema, fmt.Sprintf("m%d", c), 1); err != nil {
				return nil, err
			}
		}
		session, sh := auth.NewToken(auth.KindSession)
		if err := store.CreateSession(ctx, sh, u.ID, &t.ID, time.Now().Add(24*time.Hour), "192.0.2.1"); err != nil {
			return nil, err
		}
		out = append(out, httpTenant{host: fmt.Sprintf("h%05d.load.test", i), token: plain, session: session})
	}
	// As pgbench -i does, leave the tables vacuumed and analysed, so that
	// autovacuum does not analyse thousands of new tables (and invalidate
	// their plans) during the measured runs.
	admin, err := pgx.Connect(ctx, e.AdminURL)
	if err != nil {
		return nil, err
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "VACUUM ANALYZE"); err != nil {
		return nil, fmt.Errorf("vacuum after seeding: %w", err)
	}
	return out, nil
}

func (e *Env) pgbenchInit(ctx context.Context) error {
	if err := e.Cluster.CreateDatabase(ctx, "pgbench"); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "pgbench", "-i", "-q", "-s", "10", e.Cluster.TCPConnString("pgbench"))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pgbench -i: %w: %s", err, out)
	}
	return nil
}

var tpsLine = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)

// pgbench runs the select-only built-in script over TCP and returns its
// transactions per second with the CPU spent per transaction.
func (e *Env) pgbench(ctx context.Context, clients int, d time.Duration) (loadRun, error) {
	cmd := exec.CommandContext(ctx, "pgbench", "-S", "-n", "-c", strconv.Itoa(clients), "-j", "2",
		"-T", strconv.Itoa(int(d.Seconds())), e.Cluster.TCPConnString("pgbench"))
	pg0, err := clusterCPU(e.Cluster.DataDir())
	if err != nil {
		return loadRun{}, err
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return loadRun{}, fmt.Errorf("pgbench -S: %w: %s", err, out)
	}
	pg1, err := clusterCPU(e.Cluster.DataDir())
	if err != nil {
		return loadRun{}, err
	}
	m := tpsLine.FindSubmatch(out)
	if m == nil {
		return loadRun{}, fmt.Errorf("pgbench -S: no tps in output: %s", out)
	}
	rate, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		return loadRun{}, err
	}
	own := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return loadRun{rate: rate, postgres: perRequest(pg1-pg0, rate, d), loader: perRequest(own, rate, d)}, nil
}

// loadServer starts srv in a child process, loads it for o.Duration
// rotating over tenants, and returns the measured run.
func (e *Env) loadServer(ctx context.Context, o HTTPOptions, srv child, tenants []httpTenant) (loadRun, error) {
	cmd := exec.CommandContext(ctx, o.Self, srv.args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return loadRun{}, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return loadRun{}, err
	}
	defer func() {
		// Interrupted, the child shuts down gracefully and writes its
		// profile; it is killed if that takes too long.
		cmd.Process.Signal(os.Interrupt)
		t := time.AfterFunc(10*time.Second, func() { cmd.Process.Kill() })
		cmd.Wait()
		t.Stop()
	}()
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		return loadRun{}, fmt.Errorf("server child: %w", err)
	}
	url := "http://" + strings.TrimSpace(addr) + "/api/v1/collectors"

	// Warm the server's caches so the run measures steady state; the Go
	// client also checks that every answer belongs to its host's partner.
	if _, err := runLoad(ctx, url, tenants, o.Clients, o.Warmup, srv.check); err != nil {
		return loadRun{}, err
	}
	pid := cmd.Process.Pid
	srv0, err := procCPU(pid, false)
	if err != nil {
		return loadRun{}, err
	}
	pg0, err := clusterCPU(e.Cluster.DataDir())
	if err != nil {
		return loadRun{}, err
	}
	var r loadRun
	var loader time.Duration
	if o.Loader == "wrk" {
		r.rate, loader, err = wrk(ctx, url, tenants, o.Clients, o.Duration)
	} else {
		var n int64
		n, err = runLoad(ctx, url, tenants, o.Clients, o.Duration, srv.check)
		r.rate = float64(n) / o.Duration.Seconds()
	}
	if err != nil {
		return loadRun{}, err
	}
	srv1, err := procCPU(pid, false)
	if err != nil {
		return loadRun{}, err
	}
	pg1, err := clusterCPU(e.Cluster.DataDir())
	if err != nil {
		return loadRun{}, err
	}
	r.server = perRequest(srv1-srv0, r.rate, o.Duration)
	r.postgres = perRequest(pg1-pg0, r.rate, o.Duration)
	r.loader = perRequest(loader, r.rate, o.Duration)
	r.rssKiB, _ = rssKiB(pid)
	return r, nil
}

var (
	wrkRate   = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkErrors = regexp.MustCompile(`(Non-2xx or 3xx responses|Socket errors):[^\n]*`)
)

// wrk loads url with Debian's wrk (two threads, clients keep-alive
// connections), rotating the Host header and credential over tenants from a Lua
// script, and returns requests per second and the CPU time wrk used. Any
// error or non-2xx answer fails the run.
func wrk(ctx context.Context, url string, tenants []httpTenant, clients int, d time.Duration) (float64, time.Duration, error) {
	var lua strings.Builder
	lua.WriteString("local hosts, creds = {}, {}\n")
	header := "Authorization"
	for i, t := range tenants {
		var value string
		header, value = t.credential()
		fmt.Fprintf(&lua, "hosts[%d] = %q; creds[%d] = %q\n", i+1, t.host, i+1, value)
	}
	fmt.Fprintf(&lua, `local n, i = %d, 0
function init(args) i = math.random(n) end
function request()
  i = i %% n + 1
  return wrk.format("GET", nil, {["Host"] = hosts[i], [%q] = creds[i]})
end
`, len(tenants), header)
	f, err := os.CreateTemp("", "xatbench-*.lua")
	if err != nil {
		return 0, 0, err
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(lua.String()); err != nil {
		f.Close()
		return 0, 0, err
	}
	f.Close()
	cmd := exec.CommandContext(ctx, "wrk", "-t", "2", "-c", strconv.Itoa(clients),
		"-d", strconv.Itoa(int(d.Seconds()))+"s", "-s", f.Name(), url)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, 0, fmt.Errorf("wrk: %w: %s", err, out)
	}
	if m := wrkErrors.Find(out); m != nil {
		return 0, 0, fmt.Errorf("wrk: %s", m)
	}
	m := wrkRate.FindSubmatch(out)
	if m == nil {
		return 0, 0, fmt.Errorf("wrk: no rate in output: %s", out)
	}
	rate, err := strconv.ParseFloat(string(m[1]), 64)
	return rate, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), err
}

// runLoad sends GET requests from clients goroutines, each with its own
// keep-alive connection, rotating over tenants, and returns the number of
// successful responses. Any other status, or a body that check refuses
// (for XAT, one that does not name the host's partner), fails the run.
func runLoad(ctx context.Context, url string, tenants []httpTenant, clients int, d time.Duration,
	check func(httpTenant, []byte) bool) (int64, error) {
	var ok atomic.Int64
	var once sync.Once
	var firstErr error
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}}
			defer client.CloseIdleConnections()
			for i := c; time.Now().Before(deadline); i += clients {
				t := tenants[i%len(tenants)]
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				req.Host = t.host
				req.Header.Set(t.credential())
				resp, err := client.Do(req)
				if err == nil {
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK || !check(t, body) {
						err = fmt.Errorf("status %d for %s: %.200s", resp.StatusCode, t.host, body)
					}
				}
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	return ok.Load(), firstErr
}

func rssKiB(pid int) (int64, error) { return procStatus(pid, "VmRSS:") }
