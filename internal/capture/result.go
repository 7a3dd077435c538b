package capture

import (
	"cmp"
	"slices"
	"time"
)

// Result is the analysis of a capture. It is plain data, ready for
// encoding/json; times are UTC and encode as RFC 3339.
type Result struct {
	// Format is FormatCSV or FormatJSONL; Gzip tells whether the input
	// was gzip-compressed.
	Format string `json:"format"`
	Gzip   bool   `json:"gzip"`
	// BytesRead counts the input bytes as given, compressed or not.
	BytesRead int64 `json:"bytes_read"`

	// Rows counts the data rows: non-blank lines, less the CSV header, with
	// a quoted CSV field spanning lines counting once. ValidRows +
	// MalformedRows == Rows.
	Rows          int64 `json:"rows"`
	ValidRows     int64 `json:"valid_rows"`
	MalformedRows int64 `json:"malformed_rows"`
	// RowErrors describes the first malformed rows, in input order.
	RowErrors []RowError `json:"row_errors,omitempty"`

	// LateSamples counts the valid samples that arrived after their time
	// bucket was closed (see Options.Lateness). They count in every
	// statistic except the aggregate peaks. LateErrors describes the first
	// of them.
	LateSamples int64      `json:"late_samples"`
	LateErrors  []RowError `json:"late_errors,omitempty"`

	// Overall summarises the samples of all hosts; Hosts summarises each
	// host, sorted by name.
	Overall Summary       `json:"overall"`
	Hosts   []HostSummary `json:"hosts"`

	// BucketSeconds is the width of the time buckets behind the peaks.
	BucketSeconds float64 `json:"bucket_seconds"`
	// PeakIOPS is the highest sum over hosts of their average read plus
	// write IOPS in one bucket; nil without any IOPS readings.
	PeakIOPS *Peak `json:"peak_iops,omitempty"`
	// PeakThroughput is the same for read plus write bytes per second.
	PeakThroughput *Peak `json:"peak_throughput,omitempty"`

	// ReadWriteIOPSRatio is the total of read_iops over the total of
	// write_iops, and ReadWriteBytesRatio the same for bytes per second.
	// Each is nil when its denominator is 0.
	ReadWriteIOPSRatio  *float64 `json:"read_write_iops_ratio,omitempty"`
	ReadWriteBytesRatio *float64 `json:"read_write_bytes_ratio,omitempty"`
}

// Summary describes a set of samples.
type Summary struct {
	Samples int64 `json:"samples"`
	// First and Last are the earliest and latest timestamps, whatever the
	// order of the rows.
	First   time.Time `json:"first"`
	Last    time.Time `json:"last"`
	Metrics Metrics   `json:"metrics"`
}

// HostSummary is the Summary of one host's samples.
type HostSummary struct {
	Host string `json:"host"`
	Summary
}

// Metrics holds the statistics of each metric; a metric no sample gave is
// nil.
type Metrics struct {
	CPUPct           *Stats `json:"cpu_pct,omitempty"`
	MemUsedBytes     *Stats `json:"mem_used_bytes,omitempty"`
	MemTotalBytes    *Stats `json:"mem_total_bytes,omitempty"`
	ReadIOPS         *Stats `json:"read_iops,omitempty"`
	WriteIOPS        *Stats `json:"write_iops,omitempty"`
	ReadBytesPerSec  *Stats `json:"read_bytes_per_sec,omitempty"`
	WriteBytesPerSec *Stats `json:"write_bytes_per_sec,omitempty"`
	NetRxBytesPerSec *Stats `json:"net_rx_bytes_per_sec,omitempty"`
	NetTxBytesPerSec *Stats `json:"net_tx_bytes_per_sec,omitempty"`
}

// Stats describes the values of one metric.
type Stats struct {
	// Count is the number of samples that gave the metric.
	Count int64   `json:"count"`
	Avg   float64 `json:"avg"`
	// P95 is the nearest-rank 95th percentile: the value at 1-based rank
	// ⌈0.95·Count⌉ of the sorted values, within a relative error of
	// SketchAccuracy.
	P95 float64 `json:"p95"`
	// Peak is the exact maximum.
	Peak float64 `json:"peak"`
}

// Peak is an aggregate peak over hosts and the bucket where it happened.
type Peak struct {
	Value float64 `json:"value"`
	// BucketStart is the start of the earliest bucket reaching Value.
	BucketStart time.Time `json:"bucket_start"`
	// Hosts is the number of hosts that reported in that bucket.
	Hosts int `json:"hosts"`
}

// metricAcc accumulates one metric.
type metricAcc struct {
	n        int64
	sum, max float64
	sk       sketch
}

func (m *metricAcc) add(v float64) {
	if m.n == 0 || v > m.max {
		m.max = v
	}
	m.n++
	m.sum += v
	m.sk.add(sketchKey(v), 1)
}

func (m *metricAcc) merge(o *metricAcc) {
	if o.n == 0 {
		return
	}
	if m.n == 0 || o.max > m.max {
		m.max = o.max
	}
	m.n += o.n
	m.sum += o.sum
	m.sk.merge(&o.sk)
}

func (m *metricAcc) stats() *Stats {
	if m.n == 0 {
		return nil
	}
	avg := min(m.sum/float64(m.n), m.max)
	return &Stats{
		Count: m.n,
		Avg:   avg,
		P95:   m.sk.percentile(95, 0, m.max),
		Peak:  m.max,
	}
}

// summaryAcc accumulates a Summary.
type summaryAcc struct {
	samples     int64
	first, last int64
	metrics     [numMetrics]metricAcc
}

func (a *summaryAcc) addTime(ts int64) {
	if a.samples == 0 || ts < a.first {
		a.first = ts
	}
	if a.samples == 0 || ts > a.last {
		a.last = ts
	}
	a.samples++
}

func (a *summaryAcc) merge(o *summaryAcc) {
	if o.samples == 0 {
		return
	}
	if a.samples == 0 || o.first < a.first {
		a.first = o.first
	}
	if a.samples == 0 || o.last > a.last {
		a.last = o.last
	}
	a.samples += o.samples
	for i := range a.metrics {
		a.metrics[i].merge(&o.metrics[i])
	}
}

func (a *summaryAcc) summary() Summary {
	s := Summary{Samples: a.samples}
	if a.samples > 0 {
		s.First, s.Last = utcTime(a.first), utcTime(a.last)
	}

	m := &a.metrics
	s.Metrics = Metrics{
		CPUPct:           m[cpuPct].stats(),
		MemUsedBytes:     m[memUsed].stats(),
		MemTotalBytes:    m[memTotal].stats(),
		ReadIOPS:         m[readIOPS].stats(),
		WriteIOPS:        m[writeIOPS].stats(),
		ReadBytesPerSec:  m[readBytes].stats(),
		WriteBytesPerSec: m[writeBytes].stats(),
		NetRxBytesPerSec: m[netRx].stats(),
		NetTxBytesPerSec: m[netTx].stats(),
	}
	return s
}

// result assembles the Result once the input is consumed.
func (a *analyzer) result() *Result {
	var overall summaryAcc
	for _, h := range a.hostList {
		overall.merge(&h.acc)
	}

	res := &Result{
		Rows:          a.rows,
		ValidRows:     a.rows - a.malformed,
		MalformedRows: a.malformed,
		RowErrors:     a.rowErrors,
		LateSamples:   a.late,
		LateErrors:    a.lateErrors,
		Overall:       overall.summary(),
		BucketSeconds: time.Duration(a.window.bucket).Seconds(),
	}

	res.Hosts = make([]HostSummary, 0, len(a.hostList))
	for _, h := range a.hostList {
		res.Hosts = append(res.Hosts, HostSummary{Host: h.name, Summary: h.acc.summary()})
	}
	slices.SortFunc(res.Hosts, func(x, y HostSummary) int { return cmp.Compare(x.Host, y.Host) })

	res.PeakIOPS = a.window.iops.peak(a.window.bucket)
	res.PeakThroughput = a.window.throughput.peak(a.window.bucket)
	m := &overall.metrics
	res.ReadWriteIOPSRatio = ratio(m[readIOPS].sum, m[writeIOPS].sum)
	res.ReadWriteBytesRatio = ratio(m[readBytes].sum, m[writeBytes].sum)
	return res
}

func (p *peakTracker) peak(bucket int64) *Peak {
	if !p.set {
		return nil
	}
	return &Peak{Value: p.value, BucketStart: utcTime(p.index * bucket), Hosts: p.hosts}
}

func ratio(x, y float64) *float64 {
	if y == 0 {
		return nil
	}
	r := x / y
	return &r
}

func utcTime(ns int64) time.Time {
	return time.Unix(0, ns).UTC()
}
