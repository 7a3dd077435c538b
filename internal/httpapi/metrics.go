package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/xatlabs/xat/tenancy"
)

// metrics holds the server's Prometheus collectors. Labels are route
// patterns, never raw paths or tenant names, so their number stays bounded.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newMetrics(db *tenancy.DB, res *tenancy.Resolver) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xat_http_requests_total",
			Help: "HTTP requests by route, method and status.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "xat_http_request_duration_seconds",
			Help:    "HTTP request latency by route and method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
		}, []string{"route", "method"}),
	}
	m.reg.MustRegister(m.requests, m.latency,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))

	pools := db.Pools()
	stat := func(f func(*pgxpool.Stat) float64) func() float64 {
		return func() float64 {
			var sum float64
			for _, p := range pools {
				sum += f(p.Stat())
			}
			return sum
		}
	}
	gauge := func(name, help string, f func() float64) {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
	}
	counter := func(name, help string, f func() float64) {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f))
	}
	// Sums over the serving pools: control-plane work and the lanes of
	// tenant work.
	gauge("xat_db_pool_total_conns", "Serving connections open.", stat(func(s *pgxpool.Stat) float64 { return float64(s.TotalConns()) }))
	gauge("xat_db_pool_acquired_conns", "Serving connections in use.", stat(func(s *pgxpool.Stat) float64 { return float64(s.AcquiredConns()) }))
	gauge("xat_db_pool_idle_conns", "Idle serving connections.", stat(func(s *pgxpool.Stat) float64 { return float64(s.IdleConns()) }))
	gauge("xat_db_pool_max_conns", "Size limit of the serving pools.", stat(func(s *pgxpool.Stat) float64 { return float64(s.MaxConns()) }))
	counter("xat_db_pool_acquire_total", "Serving connections acquired.", stat(func(s *pgxpool.Stat) float64 { return float64(s.AcquireCount()) }))
	counter("xat_db_pool_empty_acquire_total", "Acquisitions that waited for a connection.", stat(func(s *pgxpool.Stat) float64 { return float64(s.EmptyAcquireCount()) }))
	counter("xat_db_pool_acquire_seconds_total", "Time spent acquiring connections.", stat(func(s *pgxpool.Stat) float64 { return s.AcquireDuration().Seconds() }))
	if res != nil {
		counter("xat_tenant_cache_hits_total", "Host resolutions answered from the cache.", func() float64 { return float64(res.Stats().Hits) })
		counter("xat_tenant_cache_misses_total", "Host resolutions that queried the registry.", func() float64 { return float64(res.Stats().Misses) })
		gauge("xat_tenant_cache_entries", "Entries in the host resolution cache.", func() float64 { return float64(res.Stats().Entries) })
	}
	return m
}

func (m *metrics) observe(route, method string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(route, method).Observe(d.Seconds())
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
