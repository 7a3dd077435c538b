package postgres_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/xatlabs/xat/internal/postgres"
	"github.com/xatlabs/xat/tenancy"
)

// TestTenantReport fills many partners with different numbers of rows and
// checks the cross-partner report against what each partner holds.
func TestTenantReport(t *testing.T) {
	t.Parallel()
	db := openDB(t, tenancy.GuardRole)
	store := postgres.New(db)
	ctx := context.Background()
	owner, err := store.CreateUser(ctx, uniqueEmail("report"), testHash, false)
	require.NoError(t, err)

	want := map[int64]int64{}
	for i := range 60 {
		tn := newTenant(t, db)
		tctx := tenancy.WithTenant(ctx, tn)
		for j := range i % 7 {
			_, err := store.CreateCollector(tctx, postgres.Actor{UserID: owner.ID}, "site", fmt.Sprint(j), 1)
			require.NoError(t, err)
		}
		want[tn.ID] = int64(i % 7)
	}

	report, err := store.TenantReport(ctx)
	require.NoError(t, err)
	seen := 0
	for _, u := range report {
		n, ok := want[u.TenantID]
		if !ok {
			continue // another test's partner
		}
		seen++
		require.Equal(t, n, u.Collectors, u.Schema)
		require.Zero(t, u.CollectedData)
		require.Zero(t, u.StoredBytes)
	}
	require.Equal(t, len(want), seen)
}
