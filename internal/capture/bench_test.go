//go:build unix

package capture

import (
	"bytes"
	"context"
	"sync"
	"syscall"
	"testing"
	"time"
)

// benchSize is the uncompressed size of the benchmark captures.
const benchSize = 64 << 20

var benchData = sync.OnceValues(func() (map[string][]byte, map[string]int64) {
	data := map[string][]byte{
		"csv":   genBytes(false, false, 8, benchSize),
		"gzip":  genBytes(false, true, 8, benchSize),
		"jsonl": genBytes(true, false, 8, benchSize),
	}
	plain := map[string]int64{"csv": benchSize, "gzip": benchSize, "jsonl": benchSize}
	return data, plain
})

// benchAnalyze reports throughput in uncompressed bytes, the work the
// parser does, so that the gzip figure compares with the plain one. As
// the machine may be shared, it also reports cpu-MB/s: bytes per second of
// CPU time used by the process, which other load disturbs far less than
// wall time. For gzip that time includes inflating on the second core.
func benchAnalyze(b *testing.B, kind string) {
	data, plain := benchData()
	in := data[kind]
	b.SetBytes(plain[kind])
	b.ReportAllocs()
	b.ResetTimer()

	start := cpuTime(b)
	for b.Loop() {
		res, err := Analyze(context.Background(), bytes.NewReader(in), Options{})
		if err != nil {
			b.Fatal(err)
		}
		if res.MalformedRows != 0 {
			b.Fatalf("malformed rows: %v", res.RowErrors)
		}
	}
	used := cpuTime(b) - start
	b.ReportMetric(float64(plain[kind])*float64(b.N)/1e6/used.Seconds(), "cpu-MB/s")
}

// cpuTime returns the user and system time the process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkAnalyzeCSV(b *testing.B)     { benchAnalyze(b, "csv") }
func BenchmarkAnalyzeCSVGzip(b *testing.B) { benchAnalyze(b, "gzip") }
func BenchmarkAnalyzeJSONL(b *testing.B)   { benchAnalyze(b, "jsonl") }
