package tenancy_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/xatlabs/xat/tenancy"
	"github.com/xatlabs/xat/tenancy/tenancytest"
)

func TestMain(m *testing.M) { tenancytest.Run(m) }

// A small application, enough to exercise tenancy: a shared reference
// table tenants may read, and three tenant tables.
var (
	sharedSet = []tenancy.Migration{{Version: 1, Name: "kinds", SQL: `
		CREATE TABLE public.kinds (id int PRIMARY KEY, name text NOT NULL);
		INSERT INTO public.kinds VALUES (1, 'plain'), (2, 'fancy');
		GRANT SELECT ON public.kinds TO {{tenants}};
		GRANT SELECT ON public.kinds TO {{serving}};`}}

	tenantSet = []tenancy.Migration{
		{Version: 1, Name: "items", SQL: `
			CREATE TABLE items (
				id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
				kind_id int NOT NULL REFERENCES public.kinds (id),
				label text NOT NULL);
			CREATE TABLE notes (id bigserial PRIMARY KEY, item_id bigint REFERENCES items (id), body text);`},
		{Version: 2, Name: "owner", SQL: `
			CREATE TABLE marks (id bigserial PRIMARY KEY, tenant text NOT NULL);
			INSERT INTO marks (tenant) VALUES (current_schema());`},
	}
)

func openDB(t *testing.T, guard tenancy.Guard) *tenancy.DB {
	t.Helper()
	return tenancytest.Open(t, tenancytest.Options{Shared: sharedSet, Tenant: tenantSet, Guard: guard})
}

var guards = []tenancy.Guard{tenancy.GuardRole, tenancy.GuardPolicy}

// forGuards runs test once under each guard.
func forGuards(t *testing.T, test func(t *testing.T, db *tenancy.DB)) {
	for _, g := range guards {
		t.Run(g.String(), func(t *testing.T) {
			t.Parallel()
			test(t, openDB(t, g))
		})
	}
}

func insertItem(t *testing.T, db *tenancy.DB, ctx context.Context, label string) int64 {
	t.Helper()
	var id int64
	err := db.InTenant(ctx, func(ctx context.Context, tx pgx.Tx) error {
		return tx.QueryRow(ctx, "INSERT INTO items (kind_id, label) VALUES (1, $1) RETURNING id", label).Scan(&id)
	})
	require.NoError(t, err)
	return id
}
