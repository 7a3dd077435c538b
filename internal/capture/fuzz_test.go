package capture

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func FuzzAnalyzeCSV(f *testing.F) {
	for _, name := range []string{"two_hosts.csv", "late.csv", "two_hosts.csv.gz", "truncated.gz"} {
		addFileSeed(f, name)
	}
	f.Add([]byte("timestamp,host,cpu_pct\n1709287200,a,1\n1709287201,\"b\"\"\",\"2\n\"\n"))
	f.Add([]byte("host,timestamp,read_iops,write_iops\r\nx,2024-03-01T10:00:00+01:00,1e3,\n,,,\n"))
	f.Add([]byte("timestamp,host\n"))
	f.Add([]byte("\ufefftimestamp,host,Cpu_Pct\n1709287200.5,a,-1\n"))
	f.Add(genBytes(false, false, 3, 600))
	f.Fuzz(checkAnalyze)
}

func FuzzAnalyzeJSONL(f *testing.F) {
	for _, name := range []string{"mixed.jsonl", "mixed_jsonl.gz"} {
		addFileSeed(f, name)
	}
	f.Add([]byte(`{"timestamp":"2024-03-01T10:00:00Z","host":"a\u00e9","x":[{"y":"]"}],"cpu_pct":"1.5"}` + "\n"))
	f.Add([]byte(`{"timestamp":1709287200,"host":"a","read_iops":1,"write_iops":0}` + "\n{}\n{\"host\":null}\n"))
	f.Add([]byte(`{"host":"\ud800","timestamp":1709287200,"cpu_pct":1e2}`))
	f.Add(genBytes(true, false, 3, 600))
	f.Add(genBytes(true, true, 3, 600))
	f.Fuzz(checkAnalyze)
}

// gzipWriters saves the fuzzers from building a compressor, which costs
// far more than an analysis of a small input, on every run.
var gzipWriters = sync.Pool{New: func() any { return gzip.NewWriter(nil) }}

func addFileSeed(f *testing.F, name string) {
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
}

// checkAnalyze runs Analyze on data, with small windows so that lateness
// is exercised, and checks that it fails cleanly or returns a consistent
// Result.
func checkAnalyze(t *testing.T, data []byte) {
	opts := Options{Bucket: 10 * time.Second, Lateness: 30 * time.Second, MaxReportedErrors: 3}
	res, err := Analyze(context.Background(), bytes.NewReader(data), opts)
	if err != nil {
		if res != nil {
			t.Fatalf("result with error %v", err)
		}
		if !errors.Is(err, ErrUnreadable) && !errors.Is(err, ErrMostlyBad) {
			t.Fatalf("error is neither ErrUnreadable nor ErrMostlyBad: %v", err)
		}
		return
	}

	checkResult(t, res, int64(len(data)))
	if _, err := json.Marshal(res); err != nil {
		t.Fatalf("result does not encode: %v", err)
	}

	if res.Format == FormatCSV && !res.Gzip {
		checkQuoted(t, data, res, opts)
	}

	// The same capture compressed gives the same counts.
	if !res.Gzip {
		var buf bytes.Buffer
		zw := gzipWriters.Get().(*gzip.Writer)
		zw.Reset(&buf)
		_, _ = zw.Write(data)
		_ = zw.Close()
		gzipWriters.Put(zw)
		zres, err := Analyze(context.Background(), &buf, opts)
		if err != nil {
			t.Fatalf("gzip of a good capture fails: %v", err)
		}
		same := zres.Rows == res.Rows &&
			zres.MalformedRows == res.MalformedRows &&
			zres.LateSamples == res.LateSamples
		if !same {
			t.Fatalf("gzip changes counts: %+v vs %+v", zres, res)
		}
	}
}

func checkResult(t *testing.T, res *Result, size int64) {
	t.Helper()
	switch {
	case res.BytesRead != size:
		t.Fatalf("read %d of %d bytes", res.BytesRead, size)
	case res.ValidRows+res.MalformedRows != res.Rows:
		t.Fatalf("valid %d + malformed %d != rows %d", res.ValidRows, res.MalformedRows, res.Rows)
	case res.ValidRows < 1 || 2*res.MalformedRows > res.Rows:
		t.Fatalf("mostly bad result accepted: %d of %d malformed", res.MalformedRows, res.Rows)
	case int64(len(res.RowErrors)) != min(res.MalformedRows, 3):
		t.Fatalf("%d row errors for %d malformed rows", len(res.RowErrors), res.MalformedRows)
	case res.LateSamples > res.ValidRows || int64(len(res.LateErrors)) != min(res.LateSamples, 3):
		t.Fatalf("late %d, described %d, valid %d", res.LateSamples, len(res.LateErrors), res.ValidRows)
	case res.Overall.Samples != res.ValidRows:
		t.Fatalf("overall has %d samples for %d valid rows", res.Overall.Samples, res.ValidRows)
	}
	for _, e := range res.RowErrors {
		if e.Line < 1 || e.Message == "" {
			t.Fatalf("bad row error %+v", e)
		}
	}

	var samples int64
	for _, h := range res.Hosts {
		samples += h.Samples
		checkSummary(t, h.Summary)
	}
	if samples != res.Overall.Samples {
		t.Fatalf("hosts have %d samples, overall %d", samples, res.Overall.Samples)
	}
	checkSummary(t, res.Overall)

	for _, p := range []*Peak{res.PeakIOPS, res.PeakThroughput} {
		if p != nil && (p.Value < 0 || p.Hosts < 1 || p.Hosts > len(res.Hosts)) {
			t.Fatalf("bad peak %+v", p)
		}
	}
}

func checkSummary(t *testing.T, s Summary) {
	t.Helper()
	if s.Samples < 1 || s.First.After(s.Last) {
		t.Fatalf("bad summary %+v", s)
	}
	m := s.Metrics
	for _, st := range []*Stats{m.CPUPct, m.MemUsedBytes, m.MemTotalBytes, m.ReadIOPS, m.WriteIOPS,
		m.ReadBytesPerSec, m.WriteBytesPerSec, m.NetRxBytesPerSec, m.NetTxBytesPerSec} {
		if st == nil {
			continue
		}
		if st.Count < 1 || st.Count > s.Samples || st.Avg < 0 || st.P95 < 0 ||
			st.Avg > st.Peak || st.P95 > st.Peak {
			t.Fatalf("bad stats %+v", st)
		}
	}
}

// checkQuoted compares the analysis of a CSV capture without quotes with
// that of the same capture with every field quoted, which takes the other
// path through the CSV reader.
func checkQuoted(t *testing.T, data []byte, res *Result, opts Options) {
	if bytes.IndexByte(data, '"') >= 0 || len(data) > 64<<10 {
		return
	}

	var quoted bytes.Buffer
	body, hadBOM := bytes.CutPrefix(data, utf8BOM)
	if hadBOM {
		quoted.Write(utf8BOM)
	}
	for i, line := range bytes.Split(body, []byte{'\n'}) {
		if i > 0 {
			quoted.WriteByte('\n')
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if isBlank(line) {
			quoted.Write(line)
			continue
		}
		for j, field := range bytes.Split(line, []byte{','}) {
			if j > 0 {
				quoted.WriteByte(',')
			}
			quoted.WriteByte('"')
			quoted.Write(field)
			quoted.WriteByte('"')
		}
	}

	qres, err := Analyze(context.Background(), &quoted, opts)
	if err != nil {
		// Quotes may tip the binary-data guess; nothing to compare.
		return
	}
	same := qres.Rows == res.Rows &&
		qres.MalformedRows == res.MalformedRows &&
		qres.LateSamples == res.LateSamples &&
		qres.Overall.Samples == res.Overall.Samples &&
		len(qres.Hosts) == len(res.Hosts)
	if !same {
		t.Fatalf("quoting changes the analysis:\nplain  %+v\nquoted %+v", res, qres)
	}
}
