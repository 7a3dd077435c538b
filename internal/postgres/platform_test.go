package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/xatlabs/xat/internal/postgres"
)

func TestPlatforms(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()

	ps, err := f.store.Platforms(ctx)
	require.NoError(t, err)
	names := map[string]bool{}
	for _, p := range ps {
		names[p.Name] = true
	}
	for _, seeded := range []string{"Windows", "Linux", "VMware ESXi"} {
		require.True(t, names[seeded], seeded)
	}

	name := "Solaris " + uniqueEmail("p")
	p, err := f.store.CreatePlatform(ctx, "  "+name+" ")
	require.NoError(t, err)
	require.Equal(t, name, p.Name)
	require.NotZero(t, p.ID)

	ps, err = f.store.Platforms(ctx)
	require.NoError(t, err)
	require.Contains(t, ps, p)
	for i := 1; i < len(ps); i++ {
		require.LessOrEqual(t, ps[i-1].Name, ps[i].Name)
	}

	_, err = f.store.CreatePlatform(ctx, name)
	require.ErrorIs(t, err, postgres.ErrConflict)
	_, err = f.store.CreatePlatform(ctx, "Linux")
	require.ErrorIs(t, err, postgres.ErrConflict)
	for _, bad := range []string{"", "   ", strings.Repeat("x", 101)} {
		_, err = f.store.CreatePlatform(ctx, bad)
		require.ErrorIs(t, err, postgres.ErrInvalidInput)
	}
}
