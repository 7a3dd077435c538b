package capture

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// analyzeFile analyses a fixture from testdata.
func analyzeFile(t *testing.T, name string, opts Options) (*Result, error) {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	require.NoError(t, err)
	t.Cleanup(func() { _ = f.Close() })
	return Analyze(context.Background(), f, opts)
}

func analyzeString(t *testing.T, text string, opts Options) (*Result, error) {
	t.Helper()
	return Analyze(context.Background(), strings.NewReader(text), opts)
}

// requireStats checks one metric. p95 is compared within the sketch's
// accuracy, the rest exactly up to float rounding.
func requireStats(t *testing.T, want Stats, got *Stats) {
	t.Helper()
	require.NotNil(t, got)
	require.Equal(t, want.Count, got.Count)
	require.InDelta(t, want.Avg, got.Avg, 1e-9)
	require.InDelta(t, want.Peak, got.Peak, 1e-9)
	require.InDelta(t, want.P95, got.P95, want.P95*SketchAccuracy)
}

func requireTime(t *testing.T, want string, got time.Time) {
	t.Helper()
	require.Equal(t, want, got.Format(time.RFC3339Nano))
	require.Equal(t, time.UTC, got.Location())
}

func TestAnalyzeCSVTwoHosts(t *testing.T) {
	t.Parallel()

	// The same capture plain and gzip-compressed gives the same result.
	for _, name := range []string{"two_hosts.csv", "two_hosts.csv.gz"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			res, err := analyzeFile(t, name, Options{})
			require.NoError(t, err)
			requireTwoHosts(t, res)
			require.Equal(t, strings.HasSuffix(name, ".gz"), res.Gzip)
		})
	}
}

// requireTwoHosts checks the analysis of testdata/two_hosts.csv: hosts
// web-1 and db-1 report at 10:00:00, 10:00:30 and 10:01:00; the header is
// in mixed case with spaces, and the unknown column "site" once holds a
// quoted comma.
func requireTwoHosts(t *testing.T, res *Result) {
	t.Helper()
	require.Equal(t, FormatCSV, res.Format)
	require.Equal(t, int64(6), res.Rows)
	require.Equal(t, int64(6), res.ValidRows)
	require.Zero(t, res.MalformedRows)
	require.Empty(t, res.RowErrors)
	require.Zero(t, res.LateSamples)
	require.Equal(t, 60.0, res.BucketSeconds)

	require.Equal(t, int64(6), res.Overall.Samples)
	requireTime(t, "2024-03-01T10:00:00Z", res.Overall.First)
	requireTime(t, "2024-03-01T10:01:00Z", res.Overall.Last)
	// cpu_pct: 10, 40, 20, 60, 30, 50 → sum 210, avg 35. Nearest-rank
	// p95 is rank ⌈0.95·6⌉ = 6 of the sorted values: 60.
	requireStats(t, Stats{Count: 6, Avg: 35, P95: 60, Peak: 60}, res.Overall.Metrics.CPUPct)
	// read_iops: 100, 300, 200, 500, 600, 100 → 1800/6 = 300; p95 600.
	requireStats(t, Stats{Count: 6, Avg: 300, P95: 600, Peak: 600}, res.Overall.Metrics.ReadIOPS)
	// read_bytes_per_sec: 1000, 3000, 2000, 11000, 6000, 1000 → 24000/6.
	requireStats(t, Stats{Count: 6, Avg: 4000, P95: 11000, Peak: 11000}, res.Overall.Metrics.ReadBytesPerSec)
	// mem_total_bytes: three 4000 and three 8000 → 36000/6 = 6000.
	requireStats(t, Stats{Count: 6, Avg: 6000, P95: 8000, Peak: 8000}, res.Overall.Metrics.MemTotalBytes)

	require.Len(t, res.Hosts, 2)
	db, web := res.Hosts[0], res.Hosts[1]
	require.Equal(t, "db-1", db.Host)
	require.Equal(t, "web-1", web.Host)
	require.Equal(t, int64(3), web.Samples)
	requireTime(t, "2024-03-01T10:00:00Z", web.First)
	requireTime(t, "2024-03-01T10:01:00Z", web.Last)
	// web-1 cpu_pct: 10, 20, 30 → avg 20; p95 is rank ⌈2.85⌉ = 3: 30.
	requireStats(t, Stats{Count: 3, Avg: 20, P95: 30, Peak: 30}, web.Metrics.CPUPct)
	// db-1 cpu_pct: 40, 60, 50 → avg 50; p95 and peak 60.
	requireStats(t, Stats{Count: 3, Avg: 50, P95: 60, Peak: 60}, db.Metrics.CPUPct)
	// db-1 write_iops: 100, 300, 100 → avg 500/3.
	requireStats(t, Stats{Count: 3, Avg: 500.0 / 3, P95: 300, Peak: 300}, db.Metrics.WriteIOPS)
	// db-1 net_tx_bytes_per_sec is 40 throughout.
	requireStats(t, Stats{Count: 3, Avg: 40, P95: 40, Peak: 40}, db.Metrics.NetTxBytesPerSec)

	// IOPS per 60 s bucket, each host averaged then summed:
	//   10:00  web-1 (100+200)/2 + (50+50)/2 = 200; db-1 (300+500)/2 +
	//          (100+300)/2 = 600; total 800
	//   10:01  web-1 600 + 200 = 800; db-1 100 + 100 = 200; total 1000
	requirePeak(t, Peak{Value: 1000, BucketStart: mustTime(t, "2024-03-01T10:01:00Z"), Hosts: 2}, res.PeakIOPS)
	// Throughput, likewise:
	//   10:00  web-1 (1000+2000)/2 + 500 = 2000; db-1 (3000+11000)/2 +
	//          (1000+3000)/2 = 9000; total 11000
	//   10:01  web-1 6000 + 2000 = 8000; db-1 1000 + 1000 = 2000; total 10000
	requirePeak(t, Peak{Value: 11000, BucketStart: mustTime(t, "2024-03-01T10:00:00Z"), Hosts: 2}, res.PeakThroughput)

	// Read/write: IOPS 1800 / (50+100+50+300+200+100 = 800) = 2.25;
	// bytes 24000 / (500+1000+500+3000+2000+1000 = 8000) = 3.
	require.NotNil(t, res.ReadWriteIOPSRatio)
	require.InDelta(t, 2.25, *res.ReadWriteIOPSRatio, 1e-12)
	require.NotNil(t, res.ReadWriteBytesRatio)
	require.InDelta(t, 3.0, *res.ReadWriteBytesRatio, 1e-12)
}

func requirePeak(t *testing.T, want Peak, got *Peak) {
	t.Helper()
	require.NotNil(t, got)
	require.Equal(t, want, *got)
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	ts, err := time.Parse(time.RFC3339Nano, s)
	require.NoError(t, err)
	return ts.UTC()
}

func TestAnalyzeJSONL(t *testing.T) {
	t.Parallel()

	for _, name := range []string{"mixed.jsonl", "mixed_jsonl.gz"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			res, err := analyzeFile(t, name, Options{})
			require.NoError(t, err)
			requireMixed(t, res)
		})
	}
}

// requireMixed checks the analysis of testdata/mixed.jsonl: hosts a and b,
// Unix (integer and fractional) and RFC 3339 timestamps, missing and null
// metrics, numbers given as strings, nested values under unknown keys, a
// blank line, a CRLF line end and one malformed row on line 5.
func requireMixed(t *testing.T, res *Result) {
	t.Helper()
	require.Equal(t, FormatJSONL, res.Format)
	require.Equal(t, int64(5), res.Rows)
	require.Equal(t, int64(4), res.ValidRows)
	require.Equal(t, int64(1), res.MalformedRows)
	require.Equal(t, []RowError{{Line: 5, Field: "cpu_pct", Message: `invalid number "abc"`}}, res.RowErrors)
	require.Equal(t, `line 5: cpu_pct: invalid number "abc"`, res.RowErrors[0].Error())

	// 1709287200 is 2024-03-01T10:00:00Z.
	require.Equal(t, int64(4), res.Overall.Samples)
	requireTime(t, "2024-03-01T10:00:00Z", res.Overall.First)
	requireTime(t, "2024-03-01T10:01:40Z", res.Overall.Last)
	// cpu_pct: a gives 10 and null, b gives 30 → 2 values, avg 20.
	requireStats(t, Stats{Count: 2, Avg: 20, P95: 30, Peak: 30}, res.Overall.Metrics.CPUPct)
	// read_iops: 100, 50, "300", 250 → 700/4 = 175; p95 rank ⌈3.8⌉ = 4.
	requireStats(t, Stats{Count: 4, Avg: 175, P95: 300, Peak: 300}, res.Overall.Metrics.ReadIOPS)
	// write_iops: 40, 60, 100 → 200/3.
	requireStats(t, Stats{Count: 3, Avg: 200.0 / 3, P95: 100, Peak: 100}, res.Overall.Metrics.WriteIOPS)
	require.Nil(t, res.Overall.Metrics.MemUsedBytes)
	require.Nil(t, res.Overall.Metrics.ReadBytesPerSec)

	require.Len(t, res.Hosts, 2)
	a, b := res.Hosts[0], res.Hosts[1]
	require.Equal(t, "a", a.Host)
	requireTime(t, "2024-03-01T10:00:30.5Z", a.Last)
	requireStats(t, Stats{Count: 1, Avg: 10, P95: 10, Peak: 10}, a.Metrics.CPUPct)
	requireStats(t, Stats{Count: 2, Avg: 200, P95: 300, Peak: 300}, a.Metrics.ReadIOPS)
	require.Equal(t, "b", b.Host)
	require.Equal(t, int64(2), b.Samples)
	requireStats(t, Stats{Count: 2, Avg: 150, P95: 250, Peak: 250}, b.Metrics.ReadIOPS)
	requireStats(t, Stats{Count: 1, Avg: 100, P95: 100, Peak: 100}, b.Metrics.WriteIOPS)

	// IOPS per bucket:
	//   10:00  a (100+300)/2 + (40+60)/2 = 250; b 50 (no write_iops); 300
	//   10:01  b 250 + 100 = 350
	requirePeak(t, Peak{Value: 350, BucketStart: mustTime(t, "2024-03-01T10:01:00Z"), Hosts: 1}, res.PeakIOPS)
	// No bytes at all: no throughput peak and no bytes ratio.
	require.Nil(t, res.PeakThroughput)
	require.Nil(t, res.ReadWriteBytesRatio)
	// 700 / 200 = 3.5.
	require.InDelta(t, 3.5, *res.ReadWriteIOPSRatio, 1e-12)
}

func TestAnalyzeLateSample(t *testing.T) {
	t.Parallel()

	// testdata/late.csv, host a, read_iops:
	//   line 2  10:00:00  100
	//   line 3  10:05:00   50
	//   line 4  10:00:10 1000  (4m50s behind 10:05)
	//   line 5  10:04:30   70
	t.Run("outside the window", func(t *testing.T) {
		t.Parallel()
		// With a 1 minute window, 10:05 closes every bucket before 10:04,
		// so line 4 is late; line 5 lands in the still open 10:04 bucket.
		res, err := analyzeFile(t, "late.csv", Options{Lateness: time.Minute})
		require.NoError(t, err)
		require.Equal(t, int64(1), res.LateSamples)
		require.Len(t, res.LateErrors, 1)
		require.Equal(t, int64(4), res.LateErrors[0].Line)
		require.Equal(t, "timestamp", res.LateErrors[0].Field)
		require.Contains(t, res.LateErrors[0].Message, "late sample")

		// Buckets: 10:00 → 100, 10:04 → 70, 10:05 → 50; the late 1000 is
		// left out of them but counts in the statistics.
		require.Equal(t, 100.0, res.PeakIOPS.Value)
		requireTime(t, "2024-03-01T10:00:00Z", res.PeakIOPS.BucketStart)
		require.Equal(t, int64(4), res.ValidRows)
		requireStats(t, Stats{Count: 4, Avg: 305, P95: 1000, Peak: 1000}, res.Overall.Metrics.ReadIOPS)
	})

	t.Run("inside the window", func(t *testing.T) {
		t.Parallel()
		// With the default hour, 10:00 is still open: (100+1000)/2 = 550.
		res, err := analyzeFile(t, "late.csv", Options{})
		require.NoError(t, err)
		require.Zero(t, res.LateSamples)
		require.Equal(t, 550.0, res.PeakIOPS.Value)
		requireTime(t, "2024-03-01T10:00:00Z", res.PeakIOPS.BucketStart)
	})
}

func TestAnalyzeBucketOption(t *testing.T) {
	t.Parallel()

	// With 30 s buckets two_hosts.csv has three: 10:00:00 (100+50 +
	// 300+100 = 550), 10:00:30 (200+50 + 500+300 = 1050) and 10:01:00
	// (600+200 + 100+100 = 1000).
	res, err := analyzeFile(t, "two_hosts.csv", Options{Bucket: 30 * time.Second})
	require.NoError(t, err)
	require.Equal(t, 30.0, res.BucketSeconds)
	require.Equal(t, 1050.0, res.PeakIOPS.Value)
	requireTime(t, "2024-03-01T10:00:30Z", res.PeakIOPS.BucketStart)
}

func TestAnalyzeMalformedRows(t *testing.T) {
	t.Parallel()

	capture := strings.Join([]string{
		"timestamp,host,cpu_pct,read_iops",
		"2024-03-01T10:00:00Z,a,1,10",
		"2024-03-01T10:00:10Z,a,abc,10",
		"2024-03-01T10:00:20Z,,1,10",
		"not-a-time,a,1,10",
		"2024-03-01T10:00:30Z,a,1",
		"2024-03-01T10:00:40Z,a,-5,10",
		"2024-02-30T10:00:00Z,a,1,10",
		`2024-03-01T10:00:50Z,"a"x,1,10`,
		"2024-03-01T10:01:00Z,a,1,10,extra",
		"1709287260,a,2,20",
		"1709287270,a,2,20",
		"1709287280,a,2,20",
		"1709287290,a,2,20",
		"1709287300,a,2,20",
		"1709287310,a,2,20",
		"1709287320,a,2,20",
		"1709287330,a,2,20",
		"1709287340,a,2,20",
	}, "\n")

	res, err := analyzeString(t, capture, Options{MaxReportedErrors: 6})
	require.NoError(t, err)
	require.Equal(t, int64(18), res.Rows)
	require.Equal(t, int64(8), res.MalformedRows)
	require.Equal(t, int64(10), res.ValidRows)
	want := []string{
		`line 3: cpu_pct: invalid number "abc"`,
		`line 4: host: missing`,
		`line 5: timestamp: want RFC 3339 or Unix seconds, got "not-a-time"`,
		`line 6: row has 3 fields, header has 4`,
		`line 7: cpu_pct: negative value "-5"`,
		`line 8: timestamp: invalid RFC 3339 time "2024-02-30T10:00:00Z"`,
	}
	var got []string
	for _, e := range res.RowErrors {
		got = append(got, e.Error())
	}
	require.Equal(t, want, got)
}

func TestAnalyzeRowErrors(t *testing.T) {
	t.Parallel()

	// Each capture has one bad row among two good ones.
	tests := []struct {
		name    string
		capture string
		want    string
	}{
		{
			name:    "stray quote",
			capture: "timestamp,host\n1709287200,a\n1709287200,a\"b\n1709287200,b\n",
			want:    `line 3: stray " in unquoted field "a\"b"`,
		},
		{
			name:    "unclosed quote",
			capture: "timestamp,host\n1709287200,a\n1709287200,b\n1709287200,\"b\n",
			want:    `line 4: quoted field not closed`,
		},
		{
			name:    "text after quote",
			capture: "timestamp,host\n1709287200,a\n1709287200,\"b\"c\n1709287200,b\n",
			want:    `line 3: text after closing " of quoted field "c"`,
		},
		{
			name:    "too many fields",
			capture: "timestamp,host\n1709287200,a\n1709287200,a,b,c\n1709287200,b\n",
			want:    `line 3: row has 4 fields, header has 2`,
		},
		{
			name:    "future timestamp",
			capture: "timestamp,host\n1709287200,a\n7000000000,a\n1709287200,b\n",
			want:    "line 3: timestamp: more than a day in the future: 2191-10-27T12:26:40Z",
		},
		{
			name:    "timestamp in milliseconds",
			capture: "timestamp,host\n1709287200,a\n1709287200000,a\n1709287200,b\n",
			want:    `line 3: timestamp: out of range "1709287200000"`,
		},
		{
			name:    "huge value",
			capture: "timestamp,host,cpu_pct\n1709287200,a,1\n1709287200,a,1e300\n1709287200,b,1\n",
			want:    `line 3: cpu_pct: value out of range "1e300"`,
		},
		{
			name:    "NaN",
			capture: "timestamp,host,cpu_pct\n1709287200,a,1\n1709287200,a,NaN\n1709287200,b,1\n",
			want:    `line 3: cpu_pct: invalid number "NaN"`,
		},
		{
			name:    "host not UTF-8",
			capture: "timestamp,host\n1709287200,a\n1709287200,\xff\xfe\n1709287200,b\n",
			want:    `line 3: host: not valid UTF-8: "\xff\xfe"`,
		},
		{
			name:    "JSON not an object",
			capture: jsonAround(`[1,2]`),
			want:    `line 2: invalid JSON at column 1: want {, got "[1,2]"`,
		},
		{
			name:    "JSON truncated",
			capture: jsonAround(`{"timestamp":1709287200,"host":"a"`),
			want:    `line 2: invalid JSON: want "," or "}", got end of line`,
		},
		{
			name:    "JSON host not a string",
			capture: jsonAround(`{"timestamp":1709287200,"host":7}`),
			want:    `line 2: host: want a string, got number "7"`,
		},
		{
			name:    "JSON metric is boolean",
			capture: jsonAround(`{"timestamp":1709287200,"host":"a","cpu_pct":true}`),
			want:    `line 2: cpu_pct: want a number, got boolean`,
		},
		{
			name:    "JSON missing timestamp",
			capture: jsonAround(`{"host":"a"}`),
			want:    `line 2: timestamp: missing`,
		},
		{
			name:    "JSON trailing data",
			capture: jsonAround(`{"timestamp":1709287200,"host":"a"} x`),
			want:    `line 2: invalid JSON at column 37: want end of line after the object, got "x"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, err := analyzeString(t, tt.capture, Options{})
			require.NoError(t, err)
			require.Equal(t, int64(1), res.MalformedRows)
			require.Len(t, res.RowErrors, 1)
			require.Equal(t, tt.want, res.RowErrors[0].Error())
		})
	}
}

// jsonAround puts a JSON Lines row between two good ones, as line 2.
func jsonAround(row string) string {
	const good = `{"timestamp":1709287200,"host":"%s"}`
	return fmt.Sprintf(good+"\n%s\n"+good+"\n", "a", row, "b")
}

func TestAnalyzeAccepts(t *testing.T) {
	t.Parallel()

	// Each capture is valid; check holds what it must show.
	tests := []struct {
		name    string
		capture string
		check   func(t *testing.T, res *Result)
	}{
		{
			name:    "RFC 3339 forms",
			capture: "timestamp,host\n2024-03-01T11:00:00+01:00,a\n2024-03-01t10:00:00.25z,a\n2024-03-01 09:30:00-00:30,a\n",
			check: func(t *testing.T, res *Result) {
				requireTime(t, "2024-03-01T10:00:00Z", res.Overall.First)
				requireTime(t, "2024-03-01T10:00:00.25Z", res.Overall.Last)
			},
		},
		{
			name:    "Unix seconds forms",
			capture: "timestamp,host\n1709287200,a\n 1709287200.123456789 ,a\n1709287201.5,a\n",
			check: func(t *testing.T, res *Result) {
				requireTime(t, "2024-03-01T10:00:00Z", res.Overall.First)
				requireTime(t, "2024-03-01T10:00:01.5Z", res.Overall.Last)
			},
		},
		{
			name:    "CRLF, BOM, blank lines and padding",
			capture: "\ufefftimestamp,host,cpu_pct\r\n\r\n1709287200, a ,  5 \r\n\r\n",
			check: func(t *testing.T, res *Result) {
				require.Equal(t, int64(1), res.Rows)
				require.Equal(t, "a", res.Hosts[0].Host)
				require.Equal(t, 5.0, res.Overall.Metrics.CPUPct.Peak)
			},
		},
		{
			name:    "quoted fields across lines",
			capture: "timestamp,\"host\",note,cpu_pct\n1709287200,\"a\",\"two\nlines, \"\"quoted\"\"\",\"7.5\"\n1709287210,a,,8\n",
			check: func(t *testing.T, res *Result) {
				require.Equal(t, int64(2), res.Rows)
				require.Zero(t, res.MalformedRows)
				require.Equal(t, 7.75, res.Overall.Metrics.CPUPct.Avg)
			},
		},
		{
			name:    "missing metrics and exponent notation",
			capture: "timestamp,host,cpu_pct,read_iops,write_iops\n1709287200,a,,1e3,\n1709287210,a,2.5E1,,0\n",
			check: func(t *testing.T, res *Result) {
				requireStats(t, Stats{Count: 1, Avg: 25, P95: 25, Peak: 25}, res.Overall.Metrics.CPUPct)
				requireStats(t, Stats{Count: 1, Avg: 1000, P95: 1000, Peak: 1000}, res.Overall.Metrics.ReadIOPS)
				// write_iops is only ever 0: no ratio.
				require.Nil(t, res.ReadWriteIOPSRatio)
			},
		},
		{
			name:    "only required columns",
			capture: "host,timestamp\nweb,1709287200\n",
			check: func(t *testing.T, res *Result) {
				require.Equal(t, int64(1), res.Hosts[0].Samples)
				require.Nil(t, res.PeakIOPS)
				require.Nil(t, res.Overall.Metrics.CPUPct)
			},
		},
		{
			name:    "JSON Lines with BOM and CRLF",
			capture: "\ufeff\r\n{\"timestamp\":1709287200,\"host\":\"a\"}\r\n",
			check: func(t *testing.T, res *Result) {
				require.Equal(t, FormatJSONL, res.Format)
				require.Equal(t, int64(1), res.Rows)
			},
		},
		{
			name:    "JSON escapes and nesting",
			capture: `{"host":"w\u00e9b\ud83d\ude00","timestamp":"1709287200","x":[{"y":"]}"}],"cpu_pct":"1.5","read_iops":null}` + "\n",
			check: func(t *testing.T, res *Result) {
				require.Equal(t, "wéb😀", res.Hosts[0].Host)
				require.Equal(t, 1.5, res.Overall.Metrics.CPUPct.Avg)
				require.Nil(t, res.Overall.Metrics.ReadIOPS)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, err := analyzeString(t, tt.capture, Options{})
			require.NoError(t, err)
			require.Zero(t, res.MalformedRows, "%v", res.RowErrors)
			tt.check(t, res)
		})
	}
}

func TestAnalyzeBadInput(t *testing.T) {
	t.Parallel()

	garbage := make([]byte, 4096)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range garbage {
		garbage[i] = byte(rng.UintN(256))
	}
	truncated, err := os.ReadFile(filepath.Join("testdata", "truncated.gz"))
	require.NoError(t, err)

	tests := []struct {
		name   string
		input  []byte
		target error
		reason string
	}{
		{"empty", nil, ErrUnreadable, "empty input"},
		{"gzip of nothing", gzipBytes(t, nil), ErrUnreadable, "empty input"},
		{"gzip twice", gzipBytes(t, gzipBytes(t, []byte("timestamp,host\n1709287200,a\n"))), ErrUnreadable, "binary data"},
		{"blank", []byte(" \n\r\n\t\n"), ErrUnreadable, "empty input"},
		{"header only", []byte("timestamp,host,cpu_pct\n"), ErrUnreadable, "no data rows"},
		{"binary garbage", garbage, ErrUnreadable, "binary data, not CSV or JSON Lines"},
		{"truncated gzip", truncated, ErrUnreadable, "gzip data truncated"},
		{"gzip magic only", []byte{0x1f, 0x8b}, ErrUnreadable, "gzip data truncated"},
		{"bad gzip header", []byte{0x1f, 0x8b, 0x99, 0, 0, 0, 0, 0, 0, 0}, ErrUnreadable, "bad gzip data"},
		{"no host column", []byte("timestamp,cpu_pct\n1709287200,5\n"), ErrUnreadable, `CSV header has no "host" column`},
		{
			"semicolons", []byte("timestamp;host;cpu_pct\n1709287200;a;5\n"), ErrUnreadable,
			`CSV header has no "timestamp" column (columns must be separated by commas)`,
		},
		{"duplicate column", []byte("timestamp,host,Host\n1709287200,a,b\n"), ErrUnreadable, `CSV header names column "host" twice`},
		{"prose", []byte("Dear partner,\nplease find attached.\n"), ErrUnreadable, `CSV header has no "timestamp" column`},
		{
			"mostly bad", []byte("timestamp,host,cpu_pct\n1709287200,a,x\n1709287200,a,1\n1709287200,a,y\n"),
			ErrMostlyBad, "2 of 3 rows malformed",
		},
		{"all bad JSON", []byte("{\"host\":\"a\"}\n{\"timestamp\":1}\n"), ErrMostlyBad, "2 of 2 rows malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, err := Analyze(context.Background(), bytes.NewReader(tt.input), Options{})
			require.Nil(t, res)
			require.ErrorIs(t, err, tt.target)
			var ie *InputError
			require.ErrorAs(t, err, &ie)
			require.Contains(t, ie.Reason, tt.reason)
			require.Contains(t, err.Error(), tt.reason)
		})
	}
}

func gzipBytes(t *testing.T, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err := zw.Write(data)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

func TestAnalyzeMostlyBadDetail(t *testing.T) {
	t.Parallel()

	capture := "timestamp,host,cpu_pct\n1709287200,a,x\n1709287200,a,1\n1709287200,a,y\n"
	_, err := analyzeString(t, capture, Options{})
	var ie *InputError
	require.ErrorAs(t, err, &ie)
	require.Equal(t, int64(3), ie.Rows)
	require.Equal(t, int64(2), ie.Malformed)
	require.Len(t, ie.Examples, 2)
	want := `capture mostly malformed: 2 of 3 rows malformed ` +
		`(first: line 2: cpu_pct: invalid number "x")`
	require.Equal(t, want, err.Error())
}

// failingReader returns its data, then err.
type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestAnalyzeReadError(t *testing.T) {
	t.Parallel()

	gz, err := os.ReadFile(filepath.Join("testdata", "two_hosts.csv.gz"))
	require.NoError(t, err)
	boom := errors.New("connection reset")

	// A failing source is an I/O error, not bad input, compressed or not.
	inputs := map[string][]byte{
		"plain": []byte("timestamp,host\n1709287200,a\n"),
		"gzip":  gz[:40],
	}
	for name, data := range inputs {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := Analyze(context.Background(), &failingReader{data: data, err: boom}, Options{})
			require.ErrorIs(t, err, boom)
			require.NotErrorIs(t, err, ErrUnreadable)
		})
	}
}

func TestAnalyzeCancel(t *testing.T) {
	t.Parallel()

	t.Run("before", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := Analyze(ctx, newGenCapture(false, 4, 1<<20), Options{})
		require.ErrorIs(t, err, context.Canceled)
	})

	for _, gz := range []bool{false, true} {
		name := map[bool]string{false: "midway plain", true: "midway gzip"}[gz]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()

			// Cancel from the progress callback once 1 MiB is read.
			opts := Options{ProgressInterval: time.Nanosecond, Progress: func(n int64) {
				if n > 1<<20 {
					cancel()
				}
			}}
			data := genBytes(false, gz, 4, 16<<20)
			_, err := Analyze(ctx, bytes.NewReader(data), opts)
			require.ErrorIs(t, err, context.Canceled)
		})
	}
}

func TestAnalyzeProgress(t *testing.T) {
	t.Parallel()

	data := genBytes(true, true, 4, 4<<20)
	var calls []int64
	opts := Options{ProgressInterval: time.Nanosecond, Progress: func(n int64) { calls = append(calls, n) }}
	res, err := Analyze(context.Background(), bytes.NewReader(data), opts)
	require.NoError(t, err)

	require.Greater(t, len(calls), 2)
	require.True(t, slicesSorted(calls), "progress went backwards: %v", calls)
	require.Equal(t, int64(len(data)), calls[len(calls)-1])
	require.Equal(t, int64(len(data)), res.BytesRead)
}

func slicesSorted(s []int64) bool {
	for i := 1; i < len(s); i++ {
		if s[i] < s[i-1] {
			return false
		}
	}
	return true
}

func TestAnalyzeOptions(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		opts Options
	}{
		{"negative bucket", Options{Bucket: -time.Second}},
		{"window too wide", Options{Bucket: time.Millisecond, Lateness: 24 * time.Hour}},
		{"lateness too long", Options{Bucket: 1 << 62, Lateness: 1 << 62}},
		{"negative host limit", Options{MaxHosts: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := analyzeString(t, "timestamp,host\n1709287200,a\n", tt.opts)
			require.Error(t, err)
			require.NotErrorIs(t, err, ErrUnreadable)
		})
	}
}

func TestAnalyzeMaxHosts(t *testing.T) {
	t.Parallel()

	capture := "timestamp,host\n1709287200,a\n1709287200,b\n1709287200,c\n1709287200,a\n"
	res, err := analyzeString(t, capture, Options{MaxHosts: 2})
	require.NoError(t, err)
	require.Len(t, res.Hosts, 2)
	require.Equal(t, "line 4: host: more than 2 distinct hosts", res.RowErrors[0].Error())
}

func TestResultJSON(t *testing.T) {
	t.Parallel()

	res, err := analyzeFile(t, "mixed.jsonl", Options{})
	require.NoError(t, err)
	b, err := json.Marshal(res)
	require.NoError(t, err)

	var doc map[string]any
	require.NoError(t, json.Unmarshal(b, &doc))
	require.Equal(t, "2024-03-01T10:00:00Z", doc["overall"].(map[string]any)["first"])
	require.Equal(t, "2024-03-01T10:01:00Z", doc["peak_iops"].(map[string]any)["bucket_start"])
	require.NotContains(t, doc, "read_write_bytes_ratio")
	require.Equal(t, 3.5, doc["read_write_iops_ratio"])
}

func TestAnalyzeLongLines(t *testing.T) {
	t.Parallel()

	// A 200 KiB unknown field makes the buffer grow; a line over 1 MiB is
	// one malformed row and the next line is read normally; so is white
	// space filling the first buffer before the header.
	var b strings.Builder
	b.WriteString(strings.Repeat(" \n", 40<<10))
	b.WriteString("timestamp,host,note\n")
	b.WriteString("1709287200,a," + strings.Repeat("x", 200<<10) + "\n")
	b.WriteString("1709287210,a," + strings.Repeat("y", 2<<20) + "\n")
	b.WriteString("1709287220,b,z\n")
	b.WriteString("1709287230,b,z\n")

	res, err := analyzeString(t, b.String(), Options{})
	require.NoError(t, err)
	require.Equal(t, int64(4), res.Rows)
	require.Equal(t, int64(1), res.MalformedRows)
	require.Equal(t, "line 40963: line longer than 1 MiB", res.RowErrors[0].Error())
	require.Len(t, res.Hosts, 2)
	require.Equal(t, int64(1), res.Hosts[0].Samples)
	require.Equal(t, int64(2), res.Hosts[1].Samples)
}
