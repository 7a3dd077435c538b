package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/xatlabs/xat/internal/postgres"
)

// demoSample names what the demo's sample capture commands refer to.
type demoSample struct {
	collector, data, analysis int64
}

// demoCaptureName is the file name the sample capture is recorded under.
const demoCaptureName = "acme-hq-sample.csv"

// demoCapture gives the collector one uploaded sample capture and one
// analysis of it, once: when the partner in ctx already has collected data
// for the collector it keeps it. The file and the analysis go through the
// storage, store and job queue calls the upload and analysis routes make,
// so the server's worker analyses it like any other.
func demoCapture(ctx context.Context, b *backend, actor postgres.Actor, collectorID int64) (demoSample, error) {
	s := demoSample{collector: collectorID}
	data, _, err := b.store.DataOfCollector(ctx, actor, collectorID, postgres.Page{Limit: 1})
	if err != nil {
		return s, err
	}

	if len(data) > 0 {
		s.data = data[0].ID
	} else {
		content := demoCaptureCSV()
		obj, err := b.files.Put(ctx, strconv.FormatInt(collectorID, 10), bytes.NewReader(content), int64(len(content)))
		if err != nil {
			return s, err
		}
		d, err := b.store.CreateData(ctx, actor, postgres.NewData{
			CollectorID:  collectorID,
			FileKey:      obj.Key,
			OriginalName: demoCaptureName,
			Size:         obj.Size,
			SHA256:       obj.SHA256,
			ContentType:  "text/csv",
		})
		if err != nil {
			// Best effort: the file is useless without its row.
			_ = b.files.Delete(context.WithoutCancel(ctx), obj.Key)
			return s, err
		}
		s.data = d.ID
	}

	// A run stopped between the upload and the analysis queues it now.
	analyses, _, err := b.store.Analyses(ctx, actor, postgres.Page{Limit: 1})
	if err != nil {
		return s, err
	}
	if len(analyses) > 0 {
		s.analysis = analyses[0].ID
		return s, nil
	}
	an, err := b.store.CreateAnalysis(ctx, actor, s.data, b.jobs.EnqueueAnalysis)
	if err != nil {
		return s, err
	}
	s.analysis = an.ID
	return s, nil
}

// demoCaptureCSV returns a capture of three hosts sampled every 10 seconds
// for 30 minutes: a database server with a write burst midway and two
// application servers following a gentle load curve. The same bytes every
// time.
func demoCaptureCSV() []byte {
	const (
		interval = 10 * time.Second
		samples  = 180
		gib      = 1 << 30
	)
	start := time.Date(2025, time.March, 3, 9, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(2025, 3))
	jitter := func(v, spread float64) float64 { return max(0, v*(1+spread*(rng.Float64()*2-1))) }

	hosts := []struct {
		name         string
		cpu, memUsed float64
		memTotal     int64
		read, write  float64 // IOPS
		ioSize       float64 // bytes per operation
		net          float64
	}{
		{"acme-db-01", 45, 48 * gib, 64 * gib, 1800, 900, 16 << 10, 40 << 20},
		{"acme-app-01", 30, 10 * gib, 16 * gib, 120, 80, 8 << 10, 25 << 20},
		{"acme-app-02", 28, 9 * gib, 16 * gib, 110, 70, 8 << 10, 22 << 20},
	}

	var buf bytes.Buffer
	buf.WriteString("timestamp,host,cpu_pct,mem_used_bytes,mem_total_bytes,read_iops,write_iops," +
		"read_bytes_per_sec,write_bytes_per_sec,net_rx_bytes_per_sec,net_tx_bytes_per_sec\n")
	for i := range samples {
		ts := start.Add(time.Duration(i) * interval)
		load := 1 + 0.3*math.Sin(float64(i)/samples*2*math.Pi)
		for j, h := range hosts {
			burst := 1.0
			if j == 0 && i >= 80 && i < 100 { // a batch job writes for over three minutes
				burst = 3
			}
			readIOPS := jitter(h.read*load, 0.15)
			writeIOPS := jitter(h.write*load*burst, 0.15)
			writeDemoRow(&buf, ts, h.name,
				min(100, jitter(h.cpu*load*(1+(burst-1)/4), 0.1)),
				int64(jitter(h.memUsed, 0.02)), h.memTotal,
				readIOPS, writeIOPS,
				readIOPS*h.ioSize, writeIOPS*h.ioSize,
				jitter(h.net*load, 0.2), jitter(h.net*load*0.6, 0.2))
		}
	}
	return buf.Bytes()
}

func writeDemoRow(w io.Writer, ts time.Time, host string, cpu float64, memUsed, memTotal int64, metrics ...float64) {
	fmt.Fprintf(w, "%s,%s,%.1f,%d,%d", ts.Format(time.RFC3339), host, cpu, memUsed, memTotal)
	for _, m := range metrics {
		fmt.Fprintf(w, ",%.0f", m)
	}
	fmt.Fprintln(w)
}

// printSample prints the commands that reach the sample capture and its
// analysis on base, with an admin's token.
func printSample(w io.Writer, base, token string, s demoSample) {
	auth := "-H 'Authorization: Bearer " + token + "'"
	fmt.Fprintf(w, `
  # Acme's sample capture: list the collector's data, then download it
  curl %[2]s %[1]s/api/v1/collectors/%[3]d/data
  curl %[2]s -o %[6]s %[1]s/api/v1/data/%[4]d/content

  # Its analysis, run by the server's worker: list, then get (the result
  # holds the sizing summary once the status is done)
  curl %[2]s %[1]s/api/v1/analyses
  curl %[2]s %[1]s/api/v1/analyses/%[5]d

  # Upload as the collector itself: create a collector token (shown once),
  # then send a capture with it
  curl %[2]s -H 'Content-Type: application/json' \
       -d '{"name":"demo upload"}' %[1]s/api/v1/collectors/%[3]d/tokens
  curl -H 'Authorization: Bearer <token from above>' -H 'Content-Type: text/csv' \
       -H 'X-File-Name: %[7]s' --data-binary @%[6]s %[1]s/api/v1/collectors/%[3]d/data
`, base, auth, s.collector, s.data, s.analysis, "/tmp/"+demoCaptureName, demoCaptureName)
}
