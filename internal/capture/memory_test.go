package capture

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestAnalyzeConstantMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 200 MB")
	}
	// Not parallel: it measures the heap of the whole process.

	// Under the race detector a smaller capture still shows a leak.
	size := int64(200 << 20)
	if raceEnabled {
		size = 32 << 20
	}
	tests := []struct {
		name  string
		jsonl bool
	}{
		{"csv", false},
		{"jsonl", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runtime.GC()
			var before runtime.MemStats
			runtime.ReadMemStats(&before)

			// Sample the heap while the analysis runs.
			var peakInuse uint64
			opts := Options{
				ProgressInterval: 20 * time.Millisecond,
				Progress: func(int64) {
					var m runtime.MemStats
					runtime.ReadMemStats(&m)
					peakInuse = max(peakInuse, m.HeapInuse)
				},
			}
			gen := newGenCapture(tt.jsonl, 16, size)
			res, err := Analyze(context.Background(), gen, opts)
			require.NoError(t, err)
			require.Zero(t, res.MalformedRows)
			require.Equal(t, gen.n, res.BytesRead)

			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			// Buffers and sketches take a few MiB whatever the size. An
			// allocation of 16 bytes per CSV row (1.6 million rows) would
			// already break the first bound.
			allocated := after.TotalAlloc - before.TotalAlloc
			t.Logf("%d rows: allocated %d KiB, heap in use peaked at %d KiB (%d KiB before)",
				res.Rows, allocated>>10, peakInuse>>10, before.HeapInuse>>10)
			require.Less(t, allocated, uint64(16<<20),
				"allocated %d bytes for %d rows", allocated, res.Rows)
			require.Less(t, peakInuse, before.HeapInuse+16<<20, "heap in use peaked at %d bytes", peakInuse)
		})
	}
}
