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
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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
}

// httpTenant is one partner of the load: its host and a member's token.
type httpTenant struct {
	host, token string
}

// HTTP measures GET /api/v1/collectors with a bearer token, rotating the
// Host header over many partners, side by side with pgbench -S on the same
// server at the same concurrency, and writes a Markdown report to w.
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

	type result struct{ rates []float64 }
	xat := map[int]*result{}
	var pgb []float64
	rss := map[int]int64{}
	for _, n := range o.Tenants {
		xat[n] = &result{}
	}
	for round := 0; round < o.Rounds; round++ {
		tps, err := e.pgbench(ctx, o.Clients, o.Duration)
		if err != nil {
			return err
		}
		pgb = append(pgb, tps)
		for _, n := range o.Tenants {
			rate, kb, err := e.loadServer(ctx, o, tenants[:n])
			if err != nil {
				return err
			}
			xat[n].rates = append(xat[n].rates, rate)
			rss[n] = max(rss[n], kb)
		}
	}

	base := median(pgb)
	fmt.Fprintf(w, "## HTTP: `GET /api/v1/collectors` with a bearer token, %d keep-alive clients, %s runs, %d rounds interleaved\n\n",
		o.Clients, o.Duration, o.Rounds)
	fmt.Fprintf(w, "| load | requests or transactions/s (median) | ratio to pgbench -S | server RSS after run |\n|---|---|---|---|\n")
	fmt.Fprintf(w, "| `pgbench -S` over TCP, same server, same clients | %.0f | 1.00 | |\n", base)
	for _, n := range o.Tenants {
		r := median(xat[n].rates)
		fmt.Fprintf(w, "| XAT, Host rotating over %d partners | %.0f | %.2f | %d MiB |\n", n, r, r/base, rss[n]/1024)
	}
	if len(o.Tenants) >= 2 {
		first, last := median(xat[o.Tenants[0]].rates), median(xat[o.Tenants[len(o.Tenants)-1]].rates)
		fmt.Fprintf(w, "\nRate over %d partners relative to %d: %.2f.\n", o.Tenants[len(o.Tenants)-1], o.Tenants[0], last/first)
	}
	return nil
}

// seedHTTP creates n partners, each with a member, a token and five
// collectors named after the partner.
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
		out = append(out, httpTenant{host: fmt.Sprintf("h%05d.load.test", i), token: plain})
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
// transactions per second.
func (e *Env) pgbench(ctx context.Context, clients int, d time.Duration) (float64, error) {
	cmd := exec.CommandContext(ctx, "pgbench", "-S", "-n", "-c", strconv.Itoa(clients), "-j", "2",
		"-T", strconv.Itoa(int(d.Seconds())), e.Cluster.TCPConnString("pgbench"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("pgbench -S: %w: %s", err, out)
	}
	m := tpsLine.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("pgbench -S: no tps in output: %s", out)
	}
	return strconv.ParseFloat(string(m[1]), 64)
}

// loadServer starts the API in a child process, loads it for o.Duration
// rotating over tenants, and returns requests per second and the child's
// resident memory (KiB) after the run.
func (e *Env) loadServer(ctx context.Context, o HTTPOptions, tenants []httpTenant) (float64, int64, error) {
	cmd := exec.CommandContext(ctx, o.Self, "serve-child", "--admin", e.AdminURL, "--serve", e.ServeURL)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, 0, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		return 0, 0, fmt.Errorf("server child: %w", err)
	}
	addr = strings.TrimSpace(addr)

	rate, err := load(ctx, "http://"+addr+"/api/v1/collectors", tenants, o.Clients, o.Duration)
	if err != nil {
		return 0, 0, err
	}
	kb, _ := rssKiB(cmd.Process.Pid)
	return rate, kb, nil
}

// load sends GET requests from clients goroutines, each with its own
// keep-alive connection, rotating over tenants, and returns the rate of
// successful responses. Any other status fails the run.
func load(ctx context.Context, url string, tenants []httpTenant, clients int, d time.Duration) (float64, error) {
	// Warm the server's caches so the run measures steady state.
	if _, err := runLoad(ctx, url, tenants, clients, time.Second); err != nil {
		return 0, err
	}
	n, err := runLoad(ctx, url, tenants, clients, d)
	return float64(n) / d.Seconds(), err
}

func runLoad(ctx context.Context, url string, tenants []httpTenant, clients int, d time.Duration) (int64, error) {
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
				req.Header.Set("Authorization", "Bearer "+t.token)
				resp, err := client.Do(req)
				if err == nil {
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), t.host[:6]) {
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
