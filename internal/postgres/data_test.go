package postgres_test

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/xatlabs/xat/internal/postgres"
)

// newData records a fictitious stored file of collector c.
func newData(t *testing.T, f *fixture, a postgres.Actor, c *postgres.Collector) *postgres.CollectedData {
	t.Helper()
	d, err := f.store.CreateData(f.ctx, a, dataFor(c.ID))
	require.NoError(t, err)
	return d
}

func dataFor(collectorID int64) postgres.NewData {
	sum := sha256.Sum256(randomBytes(8))
	return postgres.NewData{
		CollectorID:  collectorID,
		FileKey:      "s/" + hex.EncodeToString(randomBytes(8)),
		OriginalName: "capture.csv",
		Size:         42,
		SHA256:       hex.EncodeToString(sum[:]),
	}
}

func TestCollectedData(t *testing.T) {
	t.Parallel()
	forGuards(t, func(t *testing.T, f *fixture) {
		owner := postgres.Actor{UserID: newUser(t, f.store).ID}
		other := postgres.Actor{UserID: newUser(t, f.store).ID}
		admin := postgres.Actor{UserID: other.UserID, Admin: true}
		c := newCollector(t, f, owner, "m")

		n := dataFor(c.ID)
		d, err := f.store.CreateData(f.ctx, owner, n)
		require.NoError(t, err)
		require.Equal(t, n.FileKey, d.FileKey)
		require.Equal(t, "application/octet-stream", d.ContentType)
		require.Equal(t, owner.UserID, d.OwnerID)
		_, err = f.store.CreateData(f.ctx, owner, n)
		require.ErrorIs(t, err, postgres.ErrConflict)

		// Another member may not file data under the collector, nor see
		// the data; an administrator sees it.
		_, err = f.store.CreateData(f.ctx, other, dataFor(c.ID))
		require.ErrorIs(t, err, postgres.ErrNotFound)
		_, err = f.store.Data(f.ctx, other, d.ID)
		require.ErrorIs(t, err, postgres.ErrNotFound)
		_, _, err = f.store.DataOfCollector(f.ctx, other, c.ID, postgres.Page{})
		require.ErrorIs(t, err, postgres.ErrNotFound)
		_, err = f.store.DeleteData(f.ctx, other, d.ID)
		require.ErrorIs(t, err, postgres.ErrNotFound)
		got, err := f.store.Data(f.ctx, admin, d.ID)
		require.NoError(t, err)
		require.Equal(t, d, got)

		// Pages of one.
		d2 := newData(t, f, owner, c)
		page, next, err := f.store.DataOfCollector(f.ctx, owner, c.ID, postgres.Page{Limit: 1})
		require.NoError(t, err)
		require.Equal(t, []*postgres.CollectedData{d}, page)
		page, next, err = f.store.DataOfCollector(f.ctx, owner, c.ID, postgres.Page{Limit: 1, After: next})
		require.NoError(t, err)
		require.Equal(t, []*postgres.CollectedData{d2}, page)
		require.Empty(t, next)

		deleted, err := f.store.DeleteData(f.ctx, owner, d.ID)
		require.NoError(t, err)
		require.Equal(t, d, deleted)
		_, err = f.store.Data(f.ctx, owner, d.ID)
		require.ErrorIs(t, err, postgres.ErrNotFound)

		for _, bad := range []func(*postgres.NewData){
			func(n *postgres.NewData) { n.FileKey = "" },
			func(n *postgres.NewData) { n.OriginalName = strings.Repeat("x", 256) },
			func(n *postgres.NewData) { n.OriginalName = "\xff" },
			func(n *postgres.NewData) { n.ContentType = "text/plain\r\nX-Evil: 1" },
			func(n *postgres.NewData) { n.Size = -1 },
			func(n *postgres.NewData) { n.SHA256 = strings.ToUpper(n.SHA256) },
		} {
			n := dataFor(c.ID)
			bad(&n)
			_, err := f.store.CreateData(f.ctx, owner, n)
			require.ErrorIs(t, err, postgres.ErrInvalidInput)
		}
	})
}
