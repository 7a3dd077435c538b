package bench

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/xatlabs/xat/internal/postgres"
	"github.com/xatlabs/xat/tenancy"
)

// Report measures the cross-partner usage report over n partners, each
// holding a few rows, against the two naive forms measured in the same
// run: one query per partner, and one UNION ALL over every partner.
func Report(ctx context.Context, e *Env, n int, w io.Writer) error {
	tenants, err := e.seedHTTP(ctx, n)
	if err != nil {
		return err
	}
	store := postgres.New(e.DB)

	var batched []time.Duration
	var rows []postgres.TenantUsage
	for range 5 {
		start := time.Now()
		if rows, err = store.TenantReport(ctx); err != nil {
			return err
		}
		batched = append(batched, time.Since(start))
	}
	total := int64(0)
	for _, r := range rows {
		total += r.Collectors
	}
	if len(rows) != len(tenants) || total != int64(5*len(tenants)) {
		return fmt.Errorf("report counted %d collectors over %d partners, want %d over %d",
			total, len(rows), 5*len(tenants), len(tenants))
	}

	admin, err := pgxpool.New(ctx, e.AdminURL)
	if err != nil {
		return err
	}
	defer admin.Close()
	loop, err := timeLoop(ctx, e.DB, admin)
	if err != nil {
		return err
	}
	union, err := timeUnion(ctx, e.DB, admin)
	if err != nil {
		return err
	}

	b := median(durations(batched))
	fmt.Fprintf(w, "## Cross-partner report over %d partners (exact counts of collectors, data, analyses, stored bytes)\n\n", n)
	fmt.Fprintf(w, "| form | seconds (median) | relative to XAT's |\n|---|---|---|\n")
	fmt.Fprintf(w, "| XAT: %d partner(s) per statement, every statement in one pipeline, reporting role | %.3f | 1.0 |\n",
		tenancy.DefaultReportBatch, b)
	fmt.Fprintf(w, "| one query per partner, one after another | %.3f | %.1f |\n", loop, loop/b)
	fmt.Fprintf(w, "| one UNION ALL over every partner | %.3f | %.1f |\n", union, union/b)
	return nil
}

func durations(d []time.Duration) []float64 {
	out := make([]float64, len(d))
	for i, v := range d {
		out[i] = v.Seconds()
	}
	return out
}

const naiveUsage = `SELECT (SELECT count(*) FROM %[1]s.collectors), (SELECT count(*) FROM %[1]s.collected_data),
	(SELECT count(*) FROM %[1]s.capture_analyses), (SELECT coalesce(sum(size_bytes), 0) FROM %[1]s.collected_data)`

func schemas(ctx context.Context, db *tenancy.DB) ([]string, error) {
	ts, err := db.Tenants(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = pgx.Identifier{t.Schema}.Sanitize()
	}
	return out, nil
}

// timeLoop runs the usage query once per partner, as the owner.
func timeLoop(ctx context.Context, db *tenancy.DB, admin *pgxpool.Pool) (float64, error) {
	ss, err := schemas(ctx, db)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	for _, s := range ss {
		var a, b, c, d int64
		if err := admin.QueryRow(ctx, fmt.Sprintf(naiveUsage, s)).Scan(&a, &b, &c, &d); err != nil {
			return 0, err
		}
	}
	return time.Since(start).Seconds(), nil
}

// timeUnion runs one UNION ALL over every partner, as the owner.
func timeUnion(ctx context.Context, db *tenancy.DB, admin *pgxpool.Pool) (float64, error) {
	ss, err := schemas(ctx, db)
	if err != nil {
		return 0, err
	}
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = "(" + fmt.Sprintf(naiveUsage, s) + ")"
	}
	start := time.Now()
	rows, err := admin.Query(ctx, strings.Join(parts, " UNION ALL "))
	if err != nil {
		return 0, err
	}
	n := 0
	for rows.Next() {
		n++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	if n != len(ss) {
		return 0, fmt.Errorf("union returned %d rows for %d partners", n, len(ss))
	}
	return time.Since(start).Seconds(), nil
}
