package capture

import (
	"math"
	"slices"
)

// SketchAccuracy is the relative error bound of the reported 95th
// percentiles: the true order statistic v is reported as a value within
// v·(1±SketchAccuracy). The bound holds for any v above about 2^-32 times the
// largest value of the metric; smaller values share one bin.
const SketchAccuracy = 0.004

// The quantile sketch puts each positive value in a bin named by the top
// bits of its float64 encoding: the exponent and the first sketchBits bits
// of the mantissa. A bin therefore spans [lo, lo·(1+2^-sketchBits)), and
// reporting the harmonic mean of its bounds is off by at most
// 2^-sketchBits/(2+2^-sketchBits) relative, under 0.4% for 7 bits. Binning
// is a shift, with no logarithm on the hot path.
const (
	sketchBits  = 7
	sketchShift = 52 - sketchBits

	// sketchMaxBins bounds one sketch to 32 KiB: 128 bins per power of two
	// cover a factor of 2^32 below the largest value.
	sketchMaxBins = 4096
)

// sketch is a streaming quantile sketch with bounded relative error over
// non-negative values. The zero value is empty and ready to use.
type sketch struct {
	zeros uint64
	// bins[i] counts the values whose key is base+i.
	base int
	bins []uint64
}

// sketchKey returns the bin key of v, or -1 for 0. Keys grow with v,
// which must not be negative.
func sketchKey(v float64) int {
	if v == 0 {
		return -1
	}
	return int(math.Float64bits(v) >> sketchShift)
}

// add counts n values of one key, or zeros when key is negative.
func (s *sketch) add(key int, n uint64) {
	if key < 0 {
		s.zeros += n
		return
	}
	if i := key - s.base; i >= 0 && i < len(s.bins) {
		s.bins[i] += n
		return
	}
	s.grow(key, n)
}

// merge adds the counts of o. Both use the same bins, so unless either
// merged low bins, the result equals counting o's values here one by one.
func (s *sketch) merge(o *sketch) {
	s.zeros += o.zeros
	if len(s.bins) == 0 {
		s.base, s.bins = o.base, slices.Clone(o.bins)
		return
	}
	for i, n := range o.bins {
		if n > 0 {
			s.add(o.base+i, n)
		}
	}
}

// grow widens the bins to take n values of key. When the values would span
// more than sketchMaxBins bins, the lowest are merged into one: only low
// quantiles lose accuracy, and this package reports the 95th percentile.
func (s *sketch) grow(key int, n uint64) {
	// The range in use, without the headroom left by earlier growth.
	lo, hi := key, key
	for i, c := range s.bins {
		if c > 0 {
			lo = min(lo, s.base+i)
			hi = max(hi, s.base+i)
		}
	}

	// Leave headroom in the direction of growth, half of what is
	// allocated, so that a slow drift reallocates a logarithmic number of
	// times; but never so much that values would be merged for it.
	headroom := min(max(64, len(s.bins)/2), sketchMaxBins-(hi-lo+1))
	switch {
	case headroom < 0:
		lo = hi - sketchMaxBins + 1
	case key == hi:
		hi += headroom
	default:
		lo -= headroom
	}

	bins := make([]uint64, hi-lo+1)
	for i, c := range s.bins {
		if c > 0 {
			bins[max(s.base+i, lo)-lo] += c
		}
	}
	bins[max(key, lo)-lo] += n
	s.base, s.bins = lo, bins
}

// percentile returns the nearest-rank p-th percentile of the n values
// counted, the value at 1-based rank ⌈p·n/100⌉, within SketchAccuracy and
// clamped to [lo, hi], the exact extremes the caller tracked. It returns 0
// for an empty sketch.
func (s *sketch) percentile(p int, lo, hi float64) float64 {
	n := s.zeros
	for _, c := range s.bins {
		n += c
	}
	if n == 0 {
		return 0
	}

	// 0-based rank, in integers so that 95% of 20 is exactly 19.
	rank := (uint64(p)*n+99)/100 - 1
	if rank < s.zeros {
		return max(0, lo)
	}
	seen := s.zeros
	for i, c := range s.bins {
		seen += c
		if seen > rank {
			return min(max(binValue(s.base+i), lo), hi)
		}
	}
	return hi
}

// binValue returns the harmonic mean of the bounds of bin key, the point
// whose relative distance to either bound is the same.
func binValue(key int) float64 {
	lo := math.Float64frombits(uint64(key) << sketchShift)
	hi := math.Float64frombits(uint64(key+1) << sketchShift)
	if math.IsInf(hi, 0) {
		return lo
	}
	return 2 / (1/lo + 1/hi)
}
