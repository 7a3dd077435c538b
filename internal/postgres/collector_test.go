package postgres_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/xatlabs/xat/internal/postgres"
	"github.com/xatlabs/xat/tenancy"
)

// platformID returns the id of a seeded platform.
func platformID(t *testing.T, s *postgres.Store, name string) int64 {
	t.Helper()
	ps, err := s.Platforms(context.Background())
	require.NoError(t, err)
	for _, p := range ps {
		if p.Name == name {
			return p.ID
		}
	}
	t.Fatalf("no platform %q", name)
	return 0
}

func newCollector(t *testing.T, f *fixture, a postgres.Actor, machine string) *postgres.Collector {
	t.Helper()
	c, err := f.store.CreateCollector(f.ctx, a, "site", machine, platformID(t, f.store, "Linux"))
	require.NoError(t, err)
	return c
}

func TestCollectorCRUD(t *testing.T) {
	t.Parallel()
	f := setup(t)
	owner := postgres.Actor{UserID: newUser(t, f.store).ID}
	linux, windows := platformID(t, f.store, "Linux"), platformID(t, f.store, "Windows")

	c, err := f.store.CreateCollector(f.ctx, owner, " Paris DC ", " db-01 ", linux)
	require.NoError(t, err)
	require.Equal(t, "Paris DC", c.SiteName)
	require.Equal(t, "db-01", c.MachineName)
	require.Equal(t, linux, c.PlatformID)
	require.Equal(t, owner.UserID, c.OwnerID)
	require.Nil(t, c.LastSeenAt)

	got, err := f.store.Collector(f.ctx, owner, c.ID)
	require.NoError(t, err)
	require.Equal(t, c, got)

	// Patch one field, then another; nil fields stay.
	c, err = f.store.UpdateCollector(f.ctx, owner, c.ID, postgres.CollectorPatch{MachineName: ptr("db-02")})
	require.NoError(t, err)
	require.Equal(t, "db-02", c.MachineName)
	require.Equal(t, "Paris DC", c.SiteName)
	c, err = f.store.UpdateCollector(f.ctx, owner, c.ID, postgres.CollectorPatch{SiteName: ptr("Lyon"), PlatformID: &windows})
	require.NoError(t, err)
	require.Equal(t, "Lyon", c.SiteName)
	require.Equal(t, windows, c.PlatformID)
	same, err := f.store.UpdateCollector(f.ctx, owner, c.ID, postgres.CollectorPatch{})
	require.NoError(t, err)
	require.Equal(t, c, same)

	require.NoError(t, f.store.DeleteCollector(f.ctx, owner, c.ID))
	_, err = f.store.Collector(f.ctx, owner, c.ID)
	require.ErrorIs(t, err, postgres.ErrNotFound)
	_, err = f.store.UpdateCollector(f.ctx, owner, c.ID, postgres.CollectorPatch{SiteName: ptr("x")})
	require.ErrorIs(t, err, postgres.ErrNotFound)
	_, err = f.store.UpdateCollector(f.ctx, owner, c.ID, postgres.CollectorPatch{})
	require.ErrorIs(t, err, postgres.ErrNotFound)
	require.ErrorIs(t, f.store.DeleteCollector(f.ctx, owner, c.ID), postgres.ErrNotFound)
}

func TestCollectorInvalidInput(t *testing.T) {
	t.Parallel()
	f := setup(t)
	owner := postgres.Actor{UserID: newUser(t, f.store).ID}
	linux := platformID(t, f.store, "Linux")
	c := newCollector(t, f, owner, "m")

	_, err := f.store.CreateCollector(f.ctx, owner, "site", "m", -1)
	require.ErrorIs(t, err, postgres.ErrInvalidPlatform)
	require.ErrorIs(t, err, postgres.ErrInvalidInput)
	_, err = f.store.UpdateCollector(f.ctx, owner, c.ID, postgres.CollectorPatch{PlatformID: ptr(int64(-1))})
	require.ErrorIs(t, err, postgres.ErrInvalidPlatform)

	for _, bad := range []string{"", "  ", strings.Repeat("é", 201), "\xff"} {
		_, err = f.store.CreateCollector(f.ctx, owner, bad, "m", linux)
		require.ErrorIs(t, err, postgres.ErrInvalidInput)
		_, err = f.store.CreateCollector(f.ctx, owner, "s", bad, linux)
		require.ErrorIs(t, err, postgres.ErrInvalidInput)
		_, err = f.store.UpdateCollector(f.ctx, owner, c.ID, postgres.CollectorPatch{MachineName: &bad})
		require.ErrorIs(t, err, postgres.ErrInvalidInput)
	}
	var ie *postgres.InputError
	_, err = f.store.CreateCollector(f.ctx, owner, "s", "", linux)
	require.ErrorAs(t, err, &ie)
	require.Equal(t, "machine_name", ie.Field)
	_, err = f.store.CreateCollector(f.ctx, owner, "s", strings.Repeat("é", 200), linux)
	require.NoError(t, err)

	// Without an acting user, or without a partner, nothing runs.
	_, err = f.store.CreateCollector(f.ctx, postgres.Actor{Admin: true}, "s", "m", linux)
	require.ErrorIs(t, err, postgres.ErrNoActor)
	_, err = f.store.Collector(f.ctx, postgres.Actor{}, c.ID)
	require.ErrorIs(t, err, postgres.ErrNoActor)
	_, _, err = f.store.Collectors(f.ctx, postgres.Actor{}, postgres.Page{})
	require.ErrorIs(t, err, postgres.ErrNoActor)
	require.ErrorIs(t, f.store.DeleteCollector(f.ctx, postgres.Actor{}, c.ID), postgres.ErrNoActor)
	_, err = f.store.Collector(context.Background(), owner, c.ID)
	require.ErrorIs(t, err, tenancy.ErrNoTenant)
	_, err = f.store.CreateCollector(context.Background(), owner, "s", "m", linux)
	require.ErrorIs(t, err, tenancy.ErrNoTenant)
}

func TestCollectorsPagination(t *testing.T) {
	t.Parallel()
	f := setup(t)
	owner := postgres.Actor{UserID: newUser(t, f.store).ID}
	var want []int64
	for i := range 5 {
		want = append(want, newCollector(t, f, owner, "m"+strconv.Itoa(i)).ID)
	}

	var got []int64
	page := postgres.Page{Limit: 2}
	for i := 0; ; i++ {
		cs, next, err := f.store.Collectors(f.ctx, owner, page)
		require.NoError(t, err)
		for _, c := range cs {
			got = append(got, c.ID)
		}
		if next == "" {
			require.Equal(t, 2, i)
			break
		}
		page.After = next
	}
	require.Equal(t, want, got)

	cs, next, err := f.store.Collectors(f.ctx, owner, postgres.Page{Limit: 5})
	require.NoError(t, err)
	require.Len(t, cs, 5)
	require.Empty(t, next, "an exactly full last page has no next")

	_, _, err = f.store.Collectors(f.ctx, owner, postgres.Page{After: "bad"})
	require.ErrorIs(t, err, postgres.ErrBadCursor)
	_, _, err = f.store.Collectors(f.ctx, owner, postgres.Page{Limit: 201})
	require.ErrorIs(t, err, postgres.ErrBadLimit)
}

// owners is a partner with two members and an administrator, each with
// collectors of their own: alice two, bob one, the admin none.
type owners struct {
	alice, bob, admin postgres.Actor
	aliceIDs          []int64
	bobID             int64
}

func newOwners(t *testing.T, f *fixture) *owners {
	t.Helper()
	o := &owners{
		alice: postgres.Actor{UserID: newUser(t, f.store).ID},
		bob:   postgres.Actor{UserID: newUser(t, f.store).ID},
		admin: postgres.Actor{UserID: newUser(t, f.store).ID, Admin: true},
	}
	o.aliceIDs = []int64{newCollector(t, f, o.alice, "a1").ID, newCollector(t, f, o.alice, "a2").ID}
	o.bobID = newCollector(t, f, o.bob, "b1").ID
	return o
}

func ids(cs []*postgres.Collector) []int64 {
	var out []int64
	for _, c := range cs {
		out = append(out, c.ID)
	}
	return out
}

func TestCollectorOwnerVisibility(t *testing.T) {
	t.Parallel()
	forGuards(t, func(t *testing.T, f *fixture) {
		o := newOwners(t, f)

		cs, _, err := f.store.Collectors(f.ctx, o.alice, postgres.Page{})
		require.NoError(t, err)
		require.Equal(t, o.aliceIDs, ids(cs))
		cs, _, err = f.store.Collectors(f.ctx, o.bob, postgres.Page{})
		require.NoError(t, err)
		require.Equal(t, []int64{o.bobID}, ids(cs))
		cs, _, err = f.store.Collectors(f.ctx, o.admin, postgres.Page{})
		require.NoError(t, err)
		require.Equal(t, append(append([]int64(nil), o.aliceIDs...), o.bobID), ids(cs))

		// Someone else's collector is not found, for every operation.
		_, err = f.store.Collector(f.ctx, o.alice, o.bobID)
		require.ErrorIs(t, err, postgres.ErrNotFound)
		_, err = f.store.UpdateCollector(f.ctx, o.alice, o.bobID, postgres.CollectorPatch{SiteName: ptr("mine now")})
		require.ErrorIs(t, err, postgres.ErrNotFound)
		require.ErrorIs(t, f.store.DeleteCollector(f.ctx, o.alice, o.bobID), postgres.ErrNotFound)
		got, err := f.store.Collector(f.ctx, o.bob, o.bobID)
		require.NoError(t, err)
		require.Equal(t, "site", got.SiteName)

		// The administrator manages everyone's.
		got, err = f.store.UpdateCollector(f.ctx, o.admin, o.bobID, postgres.CollectorPatch{SiteName: ptr("renamed")})
		require.NoError(t, err)
		require.Equal(t, "renamed", got.SiteName)
		require.Equal(t, o.bob.UserID, got.OwnerID)
		require.NoError(t, f.store.DeleteCollector(f.ctx, o.admin, o.aliceIDs[0]))
		cs, _, err = f.store.Collectors(f.ctx, o.alice, postgres.Page{})
		require.NoError(t, err)
		require.Equal(t, o.aliceIDs[1:], ids(cs))

		// An administrator's own collectors are theirs; a member does not
		// see them.
		adminsID := newCollector(t, f, o.admin, "adm").ID
		_, err = f.store.Collector(f.ctx, o.alice, adminsID)
		require.ErrorIs(t, err, postgres.ErrNotFound)
	})
}

// settings of a member, an admin and background work, as the policies
// read them.
func member(userID int64) []tenancy.Setting {
	return []tenancy.Setting{
		{Name: "xat.user_id", Value: strconv.FormatInt(userID, 10)},
		{Name: "xat.role", Value: "member"},
	}
}

var (
	adminSettings  = []tenancy.Setting{{Name: "xat.role", Value: "admin"}}
	systemSettings = []tenancy.Setting{{Name: "xat.role", Value: "system"}}
)

func requireRLSViolation(t *testing.T, err error) {
	t.Helper()
	var pg *pgconn.PgError
	require.True(t, errors.As(err, &pg), "want a row-level security violation, got %v", err)
	require.Equal(t, "42501", pg.Code, pg.Message)
	require.Contains(t, pg.Message, "row-level security")
}

// exec runs one raw statement under the partner's scope with settings and
// returns the rows it affected.
func exec(f *fixture, settings []tenancy.Setting, sql string, args ...any) (int64, error) {
	var n int64
	err := f.db.InTenant(tenancy.WithSettings(f.ctx, settings...), func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, sql, args...)
		n = tag.RowsAffected()
		return err
	})
	return n, err
}

// TestOwnerPolicies checks that the database itself enforces owner
// visibility: raw SQL without the application's owner filter still sees
// and changes only what the settings allow.
func TestOwnerPolicies(t *testing.T) {
	t.Parallel()
	forGuards(t, func(t *testing.T, f *fixture) {
		o := newOwners(t, f)
		const all = "SELECT count(*) FROM collectors"

		require.Equal(t, 2, count(t, f, all, member(o.alice.UserID)...))
		require.Equal(t, 1, count(t, f, all, member(o.bob.UserID)...))
		require.Equal(t, 3, count(t, f, all, adminSettings...))
		require.Equal(t, 3, count(t, f, all, systemSettings...))
		require.Equal(t, 0, count(t, f, all), "no settings: nothing visible")
		require.Equal(t, 0, count(t, f, all, tenancy.Setting{Name: "xat.role", Value: "member"}))
		require.Equal(t, 0, count(t, f, all, tenancy.Setting{Name: "xat.role", Value: "superuser"}))
		require.Equal(t, 0, count(t, f, all, member(o.admin.UserID)...), "admin as member: own rows only")

		// Alice cannot change Bob's row: it is not there for her.
		n, err := exec(f, member(o.alice.UserID), "UPDATE collectors SET site_name = 'pwned' WHERE id = $1", o.bobID)
		require.NoError(t, err)
		require.Zero(t, n)
		n, err = exec(f, member(o.alice.UserID), "DELETE FROM collectors WHERE id = $1", o.bobID)
		require.NoError(t, err)
		require.Zero(t, n)

		// Nor plant a row on him, nor hand hers to him.
		linux := platformID(t, f.store, "Linux")
		_, err = exec(f, member(o.alice.UserID), `
			INSERT INTO collectors (site_name, machine_name, platform_id, owner_id)
			VALUES ('s', 'planted', $1, $2)`, linux, o.bob.UserID)
		requireRLSViolation(t, err)
		_, err = exec(f, member(o.alice.UserID), "UPDATE collectors SET owner_id = $1 WHERE id = $2",
			o.bob.UserID, o.aliceIDs[0])
		requireRLSViolation(t, err)

		// Without settings nothing can be written either.
		_, err = exec(f, nil, `
			INSERT INTO collectors (site_name, machine_name, platform_id, owner_id)
			VALUES ('s', 'm', $1, $2)`, linux, o.alice.UserID)
		requireRLSViolation(t, err)

		// Bob's row is as it was.
		c, err := f.store.Collector(f.ctx, o.bob, o.bobID)
		require.NoError(t, err)
		require.Equal(t, "site", c.SiteName)
		require.Equal(t, 3, count(t, f, all, systemSettings...))
	})
}

// TestOwnerPoliciesDependents covers the tables that hang off collectors:
// data and analyses by their own owner, tokens by their collector's.
func TestOwnerPoliciesDependents(t *testing.T) {
	t.Parallel()
	forGuards(t, func(t *testing.T, f *fixture) {
		o := newOwners(t, f)

		// Each owner gets a token, a file and an analysis, written by
		// background work.
		for i, c := range []struct {
			collector int64
			owner     int64
		}{{o.aliceIDs[0], o.alice.UserID}, {o.bobID, o.bob.UserID}} {
			err := f.db.InTenant(tenancy.WithSettings(f.ctx, systemSettings...), func(ctx context.Context, tx pgx.Tx) error {
				_, err := tx.Exec(ctx, `INSERT INTO collector_tokens (collector_id, token_hash) VALUES ($1, $2)`,
					c.collector, []byte{byte(i), 1, 2, 3})
				if err != nil {
					return err
				}
				var dataID int64
				err = tx.QueryRow(ctx, `
					INSERT INTO collected_data (collector_id, file_key, size_bytes, sha256, owner_id)
					VALUES ($1, $2, 0, $3, $4) RETURNING id`,
					c.collector, "k"+strconv.Itoa(i), strings.Repeat("0", 64), c.owner).Scan(&dataID)
				if err != nil {
					return err
				}
				_, err = tx.Exec(ctx, `INSERT INTO capture_analyses (collected_data_id, owner_id) VALUES ($1, $2)`,
					dataID, c.owner)
				return err
			})
			require.NoError(t, err)
		}

		for _, table := range []string{"collector_tokens", "collected_data", "capture_analyses"} {
			sql := "SELECT count(*) FROM " + table
			require.Equal(t, 1, count(t, f, sql, member(o.alice.UserID)...), table)
			require.Equal(t, 1, count(t, f, sql, member(o.bob.UserID)...), table)
			require.Equal(t, 2, count(t, f, sql, adminSettings...), table)
			require.Equal(t, 2, count(t, f, sql, systemSettings...), table)
			require.Equal(t, 0, count(t, f, sql), table)
		}

		// Alice cannot give Bob's collector a token, file data in Bob's
		// name, or hang her own data and analyses off Bob's rows.
		alice := member(o.alice.UserID)
		_, err := exec(f, alice,
			`INSERT INTO collector_tokens (collector_id, token_hash) VALUES ($1, '\x09')`, o.bobID)
		requireRLSViolation(t, err)
		insertData := `
			INSERT INTO collected_data (collector_id, file_key, size_bytes, sha256, owner_id)
			VALUES ($1, $2, 0, $3, $4)`
		_, err = exec(f, alice, insertData, o.aliceIDs[0], "in bob's name", strings.Repeat("0", 64), o.bob.UserID)
		requireRLSViolation(t, err)
		_, err = exec(f, alice, insertData, o.bobID, "on bob's collector", strings.Repeat("0", 64), o.alice.UserID)
		requireRLSViolation(t, err)
		_, err = exec(f, alice, `
			INSERT INTO capture_analyses (collected_data_id, owner_id)
			SELECT id, $1 FROM collected_data WHERE file_key = 'k1'`, o.alice.UserID)
		require.NoError(t, err, "bob's data is invisible to her: nothing selected, nothing inserted")
		var bobsData int64
		err = f.db.InTenant(tenancy.WithSettings(f.ctx, systemSettings...), func(ctx context.Context, tx pgx.Tx) error {
			return tx.QueryRow(ctx, "SELECT id FROM collected_data WHERE file_key = 'k1'").Scan(&bobsData)
		})
		require.NoError(t, err)
		_, err = exec(f, alice, `INSERT INTO capture_analyses (collected_data_id, owner_id) VALUES ($1, $2)`,
			bobsData, o.alice.UserID)
		requireRLSViolation(t, err)

		// Her own data and analyses remain hers to write.
		_, err = exec(f, alice, insertData, o.aliceIDs[1], "hers", strings.Repeat("0", 64), o.alice.UserID)
		require.NoError(t, err)
		_, err = exec(f, alice,
			`INSERT INTO collector_tokens (collector_id, token_hash) VALUES ($1, '\x0a')`, o.aliceIDs[1])
		require.NoError(t, err)
		n, err := exec(f, alice, "UPDATE capture_analyses SET status = 'failed'")
		require.NoError(t, err)
		require.Equal(t, int64(1), n, "only her own analysis")
	})
}

// TestCollectorCrossTenant fetches partner A's collector with partner B's
// context: B's schema answers, and A's row is not there.
func TestCollectorCrossTenant(t *testing.T) {
	t.Parallel()
	forGuards(t, func(t *testing.T, f *fixture) {
		owner := postgres.Actor{UserID: newUser(t, f.store).ID, Admin: true}
		c := newCollector(t, f, owner, "a's machine")

		b := newTenant(t, f.db)
		bctx := tenancy.WithTenant(context.Background(), b)
		_, err := f.store.Collector(bctx, owner, c.ID)
		require.ErrorIs(t, err, postgres.ErrNotFound)
		_, err = f.store.UpdateCollector(bctx, owner, c.ID, postgres.CollectorPatch{SiteName: ptr("x")})
		require.ErrorIs(t, err, postgres.ErrNotFound)
		require.ErrorIs(t, f.store.DeleteCollector(bctx, owner, c.ID), postgres.ErrNotFound)
		cs, _, err := f.store.Collectors(bctx, owner, postgres.Page{})
		require.NoError(t, err)
		require.Empty(t, cs)

		got, err := f.store.Collector(f.ctx, owner, c.ID)
		require.NoError(t, err)
		require.Equal(t, c, got)
	})
}

// TestDeleteTenant deletes a partner holding a row in every XAT table,
// policies included. It does not run in parallel: see newTenant.
func TestDeleteTenant(t *testing.T) {
	f := setup(t)
	owner := postgres.Actor{UserID: newUser(t, f.store).ID}
	c := newCollector(t, f, owner, "m")
	err := f.db.InTenant(tenancy.WithSettings(f.ctx, systemSettings...), func(ctx context.Context, tx pgx.Tx) error {
		var dataID int64
		err := tx.QueryRow(ctx, `
			INSERT INTO collected_data (collector_id, file_key, size_bytes, sha256, owner_id)
			VALUES ($1, 'k', 0, $2, $3) RETURNING id`,
			c.ID, strings.Repeat("0", 64), owner.UserID).Scan(&dataID)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO capture_analyses (collected_data_id, owner_id) VALUES ($1, $2)`,
			dataID, owner.UserID)
		return err
	})
	require.NoError(t, err)

	ctx := context.Background()
	_, err = f.db.SetActive(ctx, f.tenant.Schema, false)
	require.NoError(t, err)
	require.NoError(t, f.db.DeleteTenant(ctx, f.tenant.Schema))
	_, err = f.db.Tenant(ctx, f.tenant.Schema)
	require.ErrorIs(t, err, tenancy.ErrTenantNotFound)
}
