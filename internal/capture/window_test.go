package capture

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// windowHarness feeds read IOPS samples to a window for hosts 0..n-1.
type windowHarness struct {
	w       *window
	cursors []hostCursor
}

func newWindowHarness(bucket, lateness time.Duration, hosts int) *windowHarness {
	h := &windowHarness{w: newWindow(int64(bucket), int64(lateness))}
	for range hosts {
		h.cursors = append(h.cursors, newHostCursor())
	}
	return h
}

// add offers read_iops v of host at second sec; it reports false if late.
func (h *windowHarness) add(sec int64, host int, v float64) bool {
	var vals [numMetrics]float64
	vals[readIOPS] = v
	return h.w.add(sec*int64(time.Second), int32(host), &h.cursors[host], &vals, 1<<readIOPS)
}

func TestWindowPeaks(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name     string
		lateness time.Duration
		samples  []struct {
			sec  int64
			host int
			v    float64
		}
		late      []int // indexes of samples expected late
		wantValue float64
		wantStart int64 // seconds
		wantHosts int
	}{
		{
			name:     "tie keeps the earliest bucket",
			lateness: time.Hour,
			samples: []struct {
				sec  int64
				host int
				v    float64
			}{{0, 0, 10}, {60, 0, 10}, {120, 0, 5}},
			wantValue: 10, wantStart: 0, wantHosts: 1,
		},
		{
			name:     "hosts out of order across buckets",
			lateness: time.Hour,
			// Bucket 0: host 0 avg (10+30)/2 = 20, host 1 avg 5 → 25.
			// Bucket 60: host 1 avg 24 → 24.
			samples: []struct {
				sec  int64
				host int
				v    float64
			}{{0, 0, 10}, {61, 1, 24}, {5, 1, 5}, {59, 0, 30}},
			wantValue: 25, wantStart: 0, wantHosts: 2,
		},
		{
			name:     "no lateness closes buckets at once",
			lateness: 0,
			// The sample at 30 s arrives after 60 s closed bucket 0.
			samples: []struct {
				sec  int64
				host int
				v    float64
			}{{0, 0, 1}, {60, 0, 2}, {30, 0, 100}},
			late:      []int{2},
			wantValue: 2, wantStart: 60, wantHosts: 1,
		},
		{
			name:     "jump far ahead then back",
			lateness: 2 * time.Minute,
			// 10 days later every open bucket closes; the way back is late.
			samples: []struct {
				sec  int64
				host int
				v    float64
			}{{0, 0, 7}, {864000, 0, 3}, {864000 - 100, 1, 1}, {60, 1, 50}},
			late:      []int{3},
			wantValue: 7, wantStart: 0, wantHosts: 1,
		},
		{
			name:     "negative time",
			lateness: time.Hour,
			samples: []struct {
				sec  int64
				host int
				v    float64
			}{{-1, 0, 9}, {0, 0, 1}},
			wantValue: 9, wantStart: -60, wantHosts: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newWindowHarness(time.Minute, tt.lateness, 2)
			var late []int
			for i, s := range tt.samples {
				if !h.add(s.sec, s.host, s.v) {
					late = append(late, i)
				}
			}
			h.w.flush()

			require.Equal(t, tt.late, late)
			p := h.w.iops.peak(h.w.bucket)
			require.NotNil(t, p)
			require.Equal(t, tt.wantValue, p.Value)
			require.Equal(t, tt.wantStart, p.BucketStart.Unix())
			require.Equal(t, tt.wantHosts, p.Hosts)
		})
	}
}

func TestWindowSlotsBounded(t *testing.T) {
	t.Parallel()

	// A day of samples from 50 hosts never holds more slots than the
	// lateness window needs.
	h := newWindowHarness(time.Minute, 10*time.Minute, 50)
	for sec := int64(0); sec < 86400; sec += 10 {
		for host := range 50 {
			require.True(t, h.add(sec, host, float64(host)))
		}
	}
	require.Len(t, h.w.slots, 12)
	h.w.flush()
	// Every bucket sums hosts 0..49 averaged: 0+1+...+49 = 1225.
	require.Equal(t, 1225.0, h.w.iops.value)
	require.Equal(t, int64(0), h.w.iops.index)
}
