package capture

import (
	"context"
	"fmt"
	"io"
	"time"
	"unicode/utf8"
)

// Defaults of Options.
const (
	DefaultBucket            = time.Minute
	DefaultLateness          = time.Hour
	DefaultMaxReportedErrors = 10
	DefaultMaxHosts          = 4096
	DefaultProgressInterval  = 500 * time.Millisecond
)

// Limits on Options and hosts.
const (
	// maxOpenBuckets bounds Lateness/Bucket, the number of buckets held
	// open per host.
	maxOpenBuckets = 100_000
	// maxLateness keeps timestamp arithmetic far from overflow.
	maxLateness = 100 * 365 * 24 * time.Hour
	// maxHostLen bounds a host name in bytes.
	maxHostLen = 255
	// futureSlack is how far past the analysis start a timestamp may lie
	// before it counts as malformed, allowing for skewed collector clocks.
	futureSlack = 24 * time.Hour
)

// Options configures Analyze. The zero value gives the defaults.
type Options struct {
	// Bucket is the width of the time buckets, aligned to the Unix epoch,
	// in which the aggregate peaks are computed. Zero means DefaultBucket.
	Bucket time.Duration

	// Lateness is how far behind the newest timestamp seen so far a sample
	// may be and still count in the aggregate peaks. Samples arrive mostly
	// in time order, so a bucket is closed, its host averages summed into
	// the peaks, once the newest timestamp is Lateness or more past its
	// end. A sample for a closed bucket is late: it counts in every other
	// statistic, is counted in Result.LateSamples and described in
	// Result.LateErrors, but is not merged into the peaks. Zero means
	// DefaultLateness; a negative value closes each bucket as soon as a
	// newer one receives a sample. Open buckets hold about 56 bytes per
	// host each, and Lateness/Bucket may not pass 100,000.
	Lateness time.Duration

	// MaxReportedErrors is how many malformed rows, and separately how
	// many late samples, are described. Zero means
	// DefaultMaxReportedErrors; a negative value describes none.
	MaxReportedErrors int

	// MaxHosts bounds the number of distinct hosts, since memory grows
	// with it: typically by 10-50 KiB per host, at most by about 300 KiB.
	// Rows of further hosts are malformed. Zero means DefaultMaxHosts.
	MaxHosts int

	// Progress, when set, is called with the number of input bytes read
	// so far (compressed bytes for gzip input), at most once per
	// ProgressInterval and once at the end of a successful analysis. It is
	// called on the goroutine running Analyze.
	Progress func(bytesRead int64)

	// ProgressInterval is the least time between calls of Progress. Zero
	// means DefaultProgressInterval.
	ProgressInterval time.Duration
}

func (o Options) withDefaults() (Options, error) {
	if o.Bucket == 0 {
		o.Bucket = DefaultBucket
	}
	switch {
	case o.Lateness == 0:
		o.Lateness = DefaultLateness
	case o.Lateness < 0:
		o.Lateness = 0
	}
	if o.MaxReportedErrors == 0 {
		o.MaxReportedErrors = DefaultMaxReportedErrors
	}
	if o.MaxHosts == 0 {
		o.MaxHosts = DefaultMaxHosts
	}
	if o.ProgressInterval == 0 {
		o.ProgressInterval = DefaultProgressInterval
	}

	if o.Bucket < 0 {
		return o, fmt.Errorf("capture: negative bucket %v", o.Bucket)
	}
	if o.MaxHosts < 0 {
		return o, fmt.Errorf("capture: negative host limit %d", o.MaxHosts)
	}
	if o.Lateness > maxLateness {
		return o, fmt.Errorf("capture: lateness %v longer than 100 years", o.Lateness)
	}
	if o.Lateness/o.Bucket > maxOpenBuckets {
		return o, fmt.Errorf("capture: lateness %v spans more than %d buckets of %v",
			o.Lateness, maxOpenBuckets, o.Bucket)
	}
	return o, nil
}

// Analyze reads a capture from r and summarises it.
//
// The input is read once, in memory that does not grow with its size: it
// grows with the number of distinct hosts and with the number of buckets in
// the lateness window. 95th percentiles come from a streaming sketch with a
// relative error of at most SketchAccuracy (0.4%); averages, peaks and
// ratios are exact up to float64 rounding. Metric values must be
// non-negative numbers up to 1e18; timestamps may be at most one day past
// the time Analyze starts.
//
// The error wraps ErrUnreadable or ErrMostlyBad, as an *InputError, when
// the input is at fault; it wraps ctx.Err() when ctx ends first, which is
// checked between reads; an error from r is returned wrapped; invalid
// options give a plain error. Gzip input is inflated on a second
// goroutine, which has stopped using r when Analyze returns. Analyze is
// safe for concurrent use on different readers.
func Analyze(ctx context.Context, r io.Reader, opts Options) (*Result, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	in, err := openInput(ctx, r, opts.Progress, opts.ProgressInterval)
	if err != nil {
		return nil, err
	}
	defer in.close()

	a := newAnalyzer(opts)
	if in.format == FormatJSONL {
		err = a.run(in.lines, &jsonReader{})
	} else {
		var c *csvReader
		if c, err = newCSVReader(in.lines); err == nil {
			err = a.run(in.lines, c)
		}
	}
	if err != nil {
		return nil, err
	}

	res, err := a.finish()
	if err != nil {
		return nil, err
	}
	res.Format, res.Gzip, res.BytesRead = in.format, in.gzip, in.raw.n.Load()
	if opts.Progress != nil {
		opts.Progress(res.BytesRead)
	}
	return res, nil
}

// rowParser parses one data row, of either format.
type rowParser interface {
	row(line []byte, s *sample) fault
}

// analyzer holds the running state of one analysis.
type analyzer struct {
	opts  Options
	maxTS int64

	hosts    map[string]*hostStats
	hostList []*hostStats
	window   *window

	rows, malformed, late int64
	rowErrors, lateErrors []RowError
}

// hostStats accumulates one host.
type hostStats struct {
	id   int32
	name string
	acc  summaryAcc
	cur  hostCursor
}

func newAnalyzer(opts Options) *analyzer {
	return &analyzer{
		opts:   opts,
		maxTS:  time.Now().Add(futureSlack).UnixNano(),
		hosts:  make(map[string]*hostStats),
		window: newWindow(int64(opts.Bucket), int64(opts.Lateness)),
	}
}

// run reads the data rows. It returns only read errors and cancellation;
// bad rows are counted.
func (a *analyzer) run(lines *lineReader, p rowParser) error {
	var s sample
	for {
		line, tooLong, ok := lines.next()
		if !ok {
			return lines.err
		}
		start := lines.line
		if !tooLong && isBlank(line) {
			continue
		}

		a.rows++
		f := fault{msg: "line longer than 1 MiB"}
		if !tooLong {
			f = p.row(line, &s)
		}
		if !f.failed() {
			f = a.record(&s, start)
		}
		if f.failed() {
			a.reject(start, f)
		}
	}
}

func isBlank(line []byte) bool {
	return len(line) == 0 || len(trimSpace(line)) == 0
}

// reject counts a malformed row and describes the first few.
func (a *analyzer) reject(line int64, f fault) {
	a.malformed++
	if len(a.rowErrors) < a.opts.MaxReportedErrors {
		a.rowErrors = append(a.rowErrors, f.rowError(line))
	}
}

// record validates the host and timestamp of a parsed row and adds it to
// the statistics.
func (a *analyzer) record(s *sample, line int64) fault {
	if !s.hasTS {
		return fault{field: "timestamp", msg: "missing"}
	}
	if s.ts > a.maxTS {
		future := utcTime(s.ts).Format(time.RFC3339)
		return fault{field: "timestamp", msg: "more than a day in the future: " + future}
	}
	h, f := a.host(s)
	if f.failed() {
		return f
	}

	// Only the host's statistics are kept per row; the overall ones are
	// merged from them at the end, which halves the work here.
	for m := range numMetrics {
		if s.has&(1<<m) != 0 {
			h.acc.metrics[m].add(s.vals[m])
		}
	}
	h.acc.addTime(s.ts)

	if !a.window.add(s.ts, h.id, &h.cur, &s.vals, s.has) {
		a.lateSample(s.ts, h.name, line)
	}
	return fault{}
}

// host finds or registers the host of s.
func (a *analyzer) host(s *sample) (*hostStats, fault) {
	if !s.hasHost {
		return nil, fault{field: "host", msg: "missing"}
	}
	name := trimSpace(s.host)
	if h, ok := a.hosts[string(name)]; ok {
		return h, fault{}
	}

	switch {
	case len(name) == 0:
		return nil, fault{field: "host", msg: "missing"}
	case len(name) > maxHostLen:
		return nil, fault{field: "host", msg: "longer than 255 bytes"}
	case !utf8.Valid(name):
		return nil, fault{field: "host", msg: "not valid UTF-8:", val: name}
	case len(a.hostList) >= a.opts.MaxHosts:
		limit := []int{a.opts.MaxHosts}
		return nil, fault{field: "host", msg: "more than %d distinct hosts", nums: limit}
	}

	h := &hostStats{id: int32(len(a.hostList)), name: string(name), cur: newHostCursor()}
	a.hosts[h.name] = h
	a.hostList = append(a.hostList, h)
	return h, fault{}
}

// lateSample counts a sample whose bucket was already closed.
func (a *analyzer) lateSample(ts int64, host string, line int64) {
	a.late++
	if len(a.lateErrors) >= a.opts.MaxReportedErrors {
		return
	}

	behind := time.Duration(a.window.newest - ts)
	msg := fmt.Sprintf(
		"late sample of host %q at %s, %v behind the newest %s; left out of the aggregate peaks",
		host,
		utcTime(ts).Format(time.RFC3339Nano),
		behind,
		utcTime(a.window.newest).Format(time.RFC3339Nano),
	)
	a.lateErrors = append(a.lateErrors, RowError{Line: line, Field: "timestamp", Message: msg})
}

// finish closes the open buckets and judges whether the input was good
// enough to summarise.
func (a *analyzer) finish() (*Result, error) {
	a.window.flush()
	if a.rows == 0 {
		return nil, unreadable("no data rows")
	}

	if a.malformed*2 > a.rows {
		return nil, &InputError{
			Err:       ErrMostlyBad,
			Reason:    fmt.Sprintf("%d of %d rows malformed", a.malformed, a.rows),
			Rows:      a.rows,
			Malformed: a.malformed,
			Examples:  a.rowErrors,
		}
	}
	return a.result(), nil
}
