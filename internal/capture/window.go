package capture

import "math"

// Indexes of the four per-host series that feed the aggregate peaks.
const (
	seriesReadIOPS = iota
	seriesWriteIOPS
	seriesReadBytes
	seriesWriteBytes
	numSeries
)

// seriesMetric maps each series to its metric.
var seriesMetric = [numSeries]int{readIOPS, writeIOPS, readBytes, writeBytes}

// window aggregates samples into time buckets aligned to the Unix epoch and
// keeps only the buckets that a late sample may still reach open: those
// from the one holding newest−lateness up to the one holding newest, the
// newest timestamp seen. Older buckets are closed in time order, which
// feeds the peaks; a sample that falls in a closed bucket is late.
type window struct {
	bucket   int64 // bucket width in nanoseconds
	lateness int64 // in nanoseconds

	started bool
	newest  int64
	low     int64 // index of the oldest open bucket
	high    int64 // index of the newest open bucket

	// slots is a ring: bucket i lives in slots[i mod len(slots)], and the
	// open buckets never number more than len(slots).
	slots []slot

	iops, throughput peakTracker
}

// slot holds the per-host sums of one open bucket.
type slot struct {
	index int64
	used  bool
	hosts []hostBucket
}

// hostBucket holds one host's sums in one bucket, per series.
type hostBucket struct {
	host int32
	n    [numSeries]uint32
	sum  [numSeries]float64
}

// hostCursor remembers where a host last wrote, since a host's samples
// mostly arrive in time order and land in the same bucket as the previous.
type hostCursor struct {
	bucket    int64 // bucket of the last sample
	pos       int   // position in that bucket's slot.hosts
	maxBucket int64 // newest bucket the host has written to
}

func newHostCursor() hostCursor {
	return hostCursor{bucket: math.MinInt64, maxBucket: math.MinInt64}
}

// peakTracker keeps the largest bucket total seen. Buckets close in time
// order, so on a tie the earliest bucket stays.
type peakTracker struct {
	set   bool
	value float64
	index int64
	hosts int
}

func (p *peakTracker) offer(value float64, index int64, hosts int) {
	if hosts == 0 || (p.set && value <= p.value) {
		return
	}
	*p = peakTracker{set: true, value: value, index: index, hosts: hosts}
}

func newWindow(bucket, lateness int64) *window {
	return &window{
		bucket:   bucket,
		lateness: lateness,
		slots:    make([]slot, lateness/bucket+2),
	}
}

// add puts the series values of one sample in its bucket. It reports false,
// changing nothing, when the sample is late. vals is indexed by metric and
// has says which metrics the sample holds.
func (w *window) add(
	ts int64,
	host int32,
	cur *hostCursor,
	vals *[numMetrics]float64,
	has uint16,
) bool {
	if !w.started || ts > w.newest {
		w.advance(ts)
	}
	b := floorDiv(ts, w.bucket)
	if b < w.low {
		return false
	}

	s := &w.slots[floorMod(b, int64(len(w.slots)))]
	if !s.used || s.index != b {
		s.index, s.used, s.hosts = b, true, s.hosts[:0]
	}
	hb := w.hostBucket(s, b, host, cur)
	for i, m := range seriesMetric {
		if has&(1<<m) != 0 {
			hb.n[i]++
			hb.sum[i] += vals[m]
		}
	}
	return true
}

// hostBucket finds or adds host's sums in slot s, which holds bucket b.
func (w *window) hostBucket(s *slot, b int64, host int32, cur *hostCursor) *hostBucket {
	pos := -1
	switch {
	case b == cur.bucket:
		pos = cur.pos
	case b <= cur.maxBucket:
		// Out of order for this host: it may have written here before.
		for i := range s.hosts {
			if s.hosts[i].host == host {
				pos = i
				break
			}
		}
	}
	if pos < 0 {
		pos = len(s.hosts)
		s.hosts = append(s.hosts, hostBucket{host: host})
	}

	cur.bucket, cur.pos = b, pos
	cur.maxBucket = max(cur.maxBucket, b)
	return &s.hosts[pos]
}

// advance makes ts the newest timestamp and closes the buckets that fall
// out of the lateness window.
func (w *window) advance(ts int64) {
	low := floorDiv(ts-w.lateness, w.bucket)
	if !w.started {
		w.started, w.low = true, low
	}
	w.newest = ts
	w.high = floorDiv(ts, w.bucket)
	if low > w.low {
		w.closeBelow(low)
	}
}

// closeBelow closes the open buckets with an index below low, oldest first.
func (w *window) closeBelow(low int64) {
	// Open buckets have distinct indexes in [w.low, w.low+len(slots)), so
	// one lap of the ring visits them all however far low jumped.
	end := min(low, w.low+int64(len(w.slots)))
	for i := w.low; i < end; i++ {
		s := &w.slots[floorMod(i, int64(len(w.slots)))]
		if s.used && s.index == i {
			w.close(s)
		}
	}
	w.low = low
}

// flush closes every open bucket, at the end of the input.
func (w *window) flush() {
	if w.started {
		w.closeBelow(w.high + 1)
	}
}

// close sums the hosts' averages in slot s into the peaks and frees it.
func (w *window) close(s *slot) {
	var iops, tput float64
	var iopsHosts, tputHosts int
	for i := range s.hosts {
		hb := &s.hosts[i]
		if a, ok := hb.avgSum(seriesReadIOPS, seriesWriteIOPS); ok {
			iops += a
			iopsHosts++
		}
		if a, ok := hb.avgSum(seriesReadBytes, seriesWriteBytes); ok {
			tput += a
			tputHosts++
		}
	}

	w.iops.offer(iops, s.index, iopsHosts)
	w.throughput.offer(tput, s.index, tputHosts)
	s.used, s.hosts = false, s.hosts[:0]
}

// avgSum returns the sum of the averages of series x and y, skipping a
// series the host did not report, and whether it reported either.
func (hb *hostBucket) avgSum(x, y int) (float64, bool) {
	var v float64
	for _, i := range [2]int{x, y} {
		if hb.n[i] > 0 {
			v += hb.sum[i] / float64(hb.n[i])
		}
	}
	return v, hb.n[x] > 0 || hb.n[y] > 0
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func floorMod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}
