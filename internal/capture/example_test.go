package capture_test

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/xatlabs/xat/internal/capture"
)

func ExampleAnalyze() {
	const csv = `timestamp,host,cpu_pct,read_iops,write_iops
2024-03-01T10:00:00Z,web-1,12.5,120,40
2024-03-01T10:00:00Z,db-1,55,900,300
2024-03-01T10:00:10Z,web-1,14,140,60
2024-03-01T10:00:10Z,db-1,61,abc,310
`
	res, err := capture.Analyze(context.Background(), strings.NewReader(csv), capture.Options{})
	if errors.Is(err, capture.ErrUnreadable) || errors.Is(err, capture.ErrMostlyBad) {
		fmt.Println("rejected:", err)
		return
	}
	if err != nil {
		fmt.Println("failed:", err)
		return
	}

	fmt.Printf("%s, %d of %d rows valid\n", res.Format, res.ValidRows, res.Rows)
	for _, e := range res.RowErrors {
		fmt.Println(e)
	}
	fmt.Printf("cpu peak %.1f%%\n", res.Overall.Metrics.CPUPct.Peak)
	fmt.Printf("peak IOPS %.0f at %s\n", res.PeakIOPS.Value, res.PeakIOPS.BucketStart.Format("15:04"))
	// Output:
	// csv, 3 of 4 rows valid
	// line 5: read_iops: invalid number "abc"
	// cpu peak 55.0%
	// peak IOPS 1380 at 10:00
}
