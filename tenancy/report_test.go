package tenancy_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/xatlabs/xat/tenancy"
	"github.com/xatlabs/xat/tenancy/tenancytest"
)

// TestReport checks that the cross-tenant report sees every tenant's exact
// counts, in batches smaller than the number of tenants, and cannot write.
func TestReport(t *testing.T) {
	db := tenancytest.Open(t, tenancytest.Options{Name: "report", Shared: sharedSet, Tenant: tenantSet})
	ctx := context.Background()
	want := map[int64]int{}
	for i := range 7 {
		tn := tenancytest.NewTenant(t, db)
		tctx := tenancy.WithTenant(ctx, tn)
		for j := range i {
			insertItem(t, db, tctx, fmt.Sprint(j))
		}
		want[tn.ID] = i
	}

	got := map[int64]int{}
	err := db.Report(ctx, "SELECT {{tenant_id}}::bigint, (SELECT count(*)::int FROM {{schema}}.items)", 3,
		countsInto(got))
	require.NoError(t, err)
	require.Equal(t, want, got)

	// The reporting path reads only.
	err = db.Report(ctx, "SELECT {{tenant_id}}::bigint, nextval('{{schema}}.notes_id_seq'::regclass)", 3,
		func(pgx.Rows) error { return nil })
	requirePgCode(t, err, "42501") // the reporting role may not use sequences
	got = map[int64]int{}
	err = db.Report(ctx, "SELECT {{tenant_id}}::bigint, (SELECT count(*)::int FROM {{schema}}.items)", 0,
		countsInto(got))
	require.NoError(t, err)
	require.Equal(t, want, got, "nothing was deleted")

	// The audit accepts the reporting role's read grants.
	rep, err := db.Audit(ctx)
	require.NoError(t, err)
	require.Empty(t, rep.Findings)
}

// countsInto scans (tenant id, count) rows into m.
func countsInto(m map[int64]int) func(pgx.Rows) error {
	return func(rows pgx.Rows) error {
		for rows.Next() {
			var id int64
			var n int
			if err := rows.Scan(&id, &n); err != nil {
				return err
			}
			m[id] = n
		}
		return rows.Err()
	}
}
