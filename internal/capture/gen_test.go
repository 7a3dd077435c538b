package capture

import (
	"bytes"
	"compress/gzip"
	"io"
	"math"
	"strconv"
	"time"
)

// genCapture produces a synthetic capture as a stream: hosts samples every
// 10 s from 2024-01-01, with plausible values, until limit bytes. It never
// holds more than one row, so tests can stream captures of any size.
type genCapture struct {
	jsonl bool
	hosts int
	limit int64

	n     int64 // bytes produced
	row   int64
	buf   []byte
	off   int
	rng   uint64
	names []string
}

func newGenCapture(jsonl bool, hosts int, limit int64) *genCapture {
	g := &genCapture{jsonl: jsonl, hosts: hosts, limit: limit, rng: 0x9e3779b97f4a7c15}
	for i := range hosts {
		g.names = append(g.names, "host-"+strconv.Itoa(i+1)+".example.net")
	}
	if !jsonl {
		g.buf = append(g.buf, "timestamp,host,cpu_pct,mem_used_bytes,mem_total_bytes,read_iops,write_iops,"+
			"read_bytes_per_sec,write_bytes_per_sec,net_rx_bytes_per_sec,net_tx_bytes_per_sec\n"...)
	}
	return g
}

var genStart = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func (g *genCapture) Read(p []byte) (int, error) {
	total := 0
	for len(p) > 0 {
		if g.off == len(g.buf) {
			if g.n >= g.limit {
				break
			}
			g.buf, g.off = g.buf[:0], 0
			g.nextRow()
		}
		k := copy(p, g.buf[g.off:])
		g.off += k
		g.n += int64(k)
		p = p[k:]
		total += k
	}
	if total == 0 {
		return 0, io.EOF
	}
	return total, nil
}

// rand returns a pseudo-random number in [0, 1).
func (g *genCapture) rand() float64 {
	g.rng ^= g.rng << 13
	g.rng ^= g.rng >> 7
	g.rng ^= g.rng << 17
	return float64(g.rng>>11) / (1 << 53)
}

func (g *genCapture) nextRow() {
	host := g.row % int64(g.hosts)
	ts := genStart.Add(time.Duration(g.row/int64(g.hosts)) * 10 * time.Second)
	g.row++

	vals := [numMetrics]float64{
		cpuPct:     g.rand() * 100,
		memUsed:    float64(int64(4e9 + g.rand()*8e9)),
		memTotal:   16 << 30,
		readIOPS:   g.rand() * 2000,
		writeIOPS:  g.rand() * 800,
		readBytes:  float64(int64(g.rand() * 2e8)),
		writeBytes: float64(int64(g.rand() * 8e7)),
		netRx:      float64(int64(g.rand() * 1e8)),
		netTx:      float64(int64(g.rand() * 5e7)),
	}

	for m := range vals {
		vals[m] = math.Round(vals[m]*100) / 100
	}

	b := g.buf
	if g.jsonl {
		b = append(b, `{"timestamp":`...)
		b = strconv.AppendInt(b, ts.Unix(), 10)
		b = append(b, `,"host":"`...)
		b = append(b, g.names[host]...)
		b = append(b, '"')
		for m, v := range vals {
			b = append(b, `,"`...)
			b = append(b, metricNames[m]...)
			b = append(b, `":`...)
			b = strconv.AppendFloat(b, v, 'f', -1, 64)
		}
		b = append(b, "}\n"...)
	} else {
		b = ts.AppendFormat(b, time.RFC3339)
		b = append(b, ',')
		b = append(b, g.names[host]...)
		for _, v := range vals {
			b = append(b, ',')
			b = strconv.AppendFloat(b, v, 'f', 2, 64)
		}
		b = append(b, '\n')
	}
	g.buf = b
}

// genBytes returns a whole synthetic capture, gzip-compressed if asked.
func genBytes(jsonl, gz bool, hosts int, size int64) []byte {
	var buf bytes.Buffer
	g := newGenCapture(jsonl, hosts, size)
	if !gz {
		_, _ = io.Copy(&buf, g)
		return buf.Bytes()
	}

	zw := gzip.NewWriter(&buf)
	_, _ = io.Copy(zw, g)
	_ = zw.Close()
	return buf.Bytes()
}
