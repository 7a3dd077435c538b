package httpapi

import (
	"net/http"
	"strconv"
	"time"

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

	pool := db.ServePool()
	gauge := func(name, help string, f func() float64) {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
	}
	counter := func(name, help string, f func() float64) {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f))
	}
	gauge("xat_db_pool_total_conns", "Connections in the serving pool.", func() float64 { return float64(pool.Stat().TotalConns()) })
	gauge("xat_db_pool_acquired_conns", "Serving pool connections in use.", func() float64 { return float64(pool.Stat().AcquiredConns()) })
	gauge("xat_db_pool_idle_conns", "Idle serving pool connections.", func() float64 { return float64(pool.Stat().IdleConns()) })
	gauge("xat_db_pool_max_conns", "Size limit of the serving pool.", func() float64 { return float64(pool.Stat().MaxConns()) })
	counter("xat_db_pool_acquire_total", "Connections acquired from the serving pool.", func() float64 { return float64(pool.Stat().AcquireCount()) })
	counter("xat_db_pool_empty_acquire_total", "Acquisitions that waited for a connection.", func() float64 { return float64(pool.Stat().EmptyAcquireCount()) })
	counter("xat_db_pool_acquire_seconds_total", "Time spent acquiring connections.", func() float64 { return pool.Stat().AcquireDuration().Seconds() })
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
