package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/xatlabs/xat/tenancy"
)

// Actor is who acts on a partner's owned rows: a member sees and changes
// only the rows they own, a partner administrator (Admin) all of them.
type Actor struct {
	UserID int64
	Admin  bool
}

// Settings read by the row-level security policies of
// migrations/tenant/0002_owner_policies.sql.
const (
	settingUserID = "xat.user_id"
	settingRole   = "xat.role"
)

// scope returns ctx carrying the actor's transaction-local settings, so
// that the database applies the owner rule that the query applies too.
func (a Actor) scope(ctx context.Context) (context.Context, error) {
	if a.UserID <= 0 {
		return nil, ErrNoActor
	}
	role := RoleMember
	if a.Admin {
		role = RoleAdmin
	}
	return tenancy.WithSettings(ctx,
		tenancy.Setting{Name: settingUserID, Value: strconv.FormatInt(a.UserID, 10)},
		tenancy.Setting{Name: settingRole, Value: role},
	), nil
}

// ownerFilter returns the condition that keeps a list to the rows the actor
// may see, for a query whose other parameters are args ($1 to $n), with
// args extended to match: members see the rows they own, partner
// administrators every row. Each case has its own SQL text and so its own
// prepared statement, whose one generic plan uses the (owner_id, id) index
// for members; a single text with "$1 OR owner_id = $2" would get no plan
// worth keeping and be planned afresh on every call.
func (a Actor) ownerFilter(args ...any) (string, []any) {
	if a.Admin {
		return "TRUE", args
	}
	return fmt.Sprintf("owner_id = $%d", len(args)+1), append(args, a.UserID)
}

// Collector is a capture agent on one of a partner's customers' machines.
type Collector struct {
	ID          int64      `json:"id"`
	SiteName    string     `json:"site_name"`
	MachineName string     `json:"machine_name"`
	PlatformID  int64      `json:"platform_id"`
	OwnerID     int64      `json:"owner_id"`
	CreatedAt   time.Time  `json:"created_at"`
	LastSeenAt  *time.Time `json:"last_seen_at,omitempty"`
}

// CollectorPatch changes some fields of a collector; nil fields stay.
type CollectorPatch struct {
	SiteName    *string
	MachineName *string
	PlatformID  *int64
}

const collectorColumns = `id, site_name, machine_name, platform_id, owner_id, created_at, last_seen_at`

func scanCollector(row pgx.CollectableRow) (*Collector, error) {
	var c Collector
	err := row.Scan(&c.ID, &c.SiteName, &c.MachineName, &c.PlatformID,
		&c.OwnerID, &c.CreatedAt, &c.LastSeenAt)
	return &c, err
}

// collectorName trims a site or machine name and checks it is 1 to 200
// characters.
func collectorName(field, v string) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" || utf8.RuneCountInString(v) > 200 || !utf8.ValidString(v) {
		return "", &InputError{Field: field, Reason: "must be 1 to 200 characters"}
	}
	return v, nil
}

// collectorError maps the database's refusals of a collector write.
func collectorError(err error) error {
	return notFound(err)
}

// checkPlatform returns ErrInvalidPlatform when no platform has this id.
// Partner tables keep no foreign key to shared tables (see the tenant
// migrations), so the check is the application's.
func checkPlatform(ctx context.Context, tx pgx.Tx, id int64) error {
	var ok bool
	err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM public.platforms WHERE id = $1)", id).Scan(&ok)
	if err == nil && !ok {
		return ErrInvalidPlatform
	}
	return err
}

// CreateCollector registers a collector of the partner in ctx, owned by
// the actor. It returns an InputError for a bad name, ErrInvalidPlatform
// when the platform does not exist and ErrNoActor without a user.
func (s *Store) CreateCollector(
	ctx context.Context,
	a Actor,
	site, machine string,
	platformID int64,
) (*Collector, error) {
	site, err := collectorName("site_name", site)
	if err != nil {
		return nil, fmt.Errorf("create collector: %w", err)
	}
	if machine, err = collectorName("machine_name", machine); err != nil {
		return nil, fmt.Errorf("create collector: %w", err)
	}
	ctx, err = a.scope(ctx)
	if err != nil {
		return nil, fmt.Errorf("create collector: %w", err)
	}

	var c *Collector
	err = s.db.InTenant(ctx, func(ctx context.Context, tx pgx.Tx) error {
		if err := checkPlatform(ctx, tx, platformID); err != nil {
			return err
		}
		rows, _ := tx.Query(ctx, `
			INSERT INTO collectors (site_name, machine_name, platform_id, owner_id)
			VALUES ($1, $2, $3, $4)
			RETURNING `+collectorColumns,
			site, machine, platformID, a.UserID)
		var err error
		c, err = pgx.CollectExactlyOneRow(rows, scanCollector)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("create collector: %w", collectorError(err))
	}
	return c, nil
}

// Collector returns a collector of the partner in ctx that the actor may
// see. A collector that does not exist and one the actor may not see are
// both ErrNotFound.
func (s *Store) Collector(ctx context.Context, a Actor, id int64) (*Collector, error) {
	ctx, err := a.scope(ctx)
	if err != nil {
		return nil, fmt.Errorf("get collector %d: %w", id, err)
	}
	c, err := tenancy.Row(ctx, s.db, scanCollector, `
		SELECT `+collectorColumns+`
		FROM collectors
		WHERE id = $1 AND ($2 OR owner_id = $3)`, id, a.Admin, a.UserID)
	if err != nil {
		return nil, fmt.Errorf("get collector %d: %w", id, notFound(err))
	}
	return c, nil
}

// Collectors lists the collectors of the partner in ctx that the actor
// may see, by id, one page at a time. It returns the next page's cursor,
// "" after the last page.
func (s *Store) Collectors(ctx context.Context, a Actor, page Page) ([]*Collector, string, error) {
	limit, err := page.limit()
	if err != nil {
		return nil, "", fmt.Errorf("list collectors: %w", err)
	}
	after, err := parseIDCursor(page.After)
	if err != nil {
		return nil, "", fmt.Errorf("list collectors: %w", err)
	}
	ctx, err = a.scope(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("list collectors: %w", err)
	}

	owner, args := a.ownerFilter(after, limit+1)
	cs, err := tenancy.Rows(ctx, s.db, scanCollector, `
		SELECT `+collectorColumns+`
		FROM collectors
		WHERE id > $1 AND `+owner+`
		ORDER BY id
		LIMIT $2`, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list collectors: %w", err)
	}
	cs, next := cut(cs, limit, func(c *Collector) string { return idCursor(c.ID) })
	return cs, next, nil
}

// UpdateCollector applies p to a collector the actor may see and returns
// the result. An empty patch changes nothing and returns the collector.
// It returns ErrNotFound like Collector, an InputError for a bad name and
// ErrInvalidPlatform for a platform that does not exist.
func (s *Store) UpdateCollector(ctx context.Context, a Actor, id int64, p CollectorPatch) (*Collector, error) {
	if p.SiteName == nil && p.MachineName == nil && p.PlatformID == nil {
		return s.Collector(ctx, a, id)
	}
	var site, machine *string
	for _, f := range []struct {
		field string
		in    *string
		out   **string
	}{{"site_name", p.SiteName, &site}, {"machine_name", p.MachineName, &machine}} {
		if f.in == nil {
			continue
		}
		v, err := collectorName(f.field, *f.in)
		if err != nil {
			return nil, fmt.Errorf("update collector %d: %w", id, err)
		}
		*f.out = &v
	}
	ctx, err := a.scope(ctx)
	if err != nil {
		return nil, fmt.Errorf("update collector %d: %w", id, err)
	}

	var c *Collector
	err = s.db.InTenant(ctx, func(ctx context.Context, tx pgx.Tx) error {
		if p.PlatformID != nil {
			if err := checkPlatform(ctx, tx, *p.PlatformID); err != nil {
				return err
			}
		}
		rows, _ := tx.Query(ctx, `
			UPDATE collectors
			SET site_name = coalesce($4, site_name),
			    machine_name = coalesce($5, machine_name),
			    platform_id = coalesce($6, platform_id)
			WHERE id = $1 AND ($2 OR owner_id = $3)
			RETURNING `+collectorColumns,
			id, a.Admin, a.UserID, site, machine, p.PlatformID)
		var err error
		c, err = pgx.CollectExactlyOneRow(rows, scanCollector)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("update collector %d: %w", id, collectorError(err))
	}
	return c, nil
}

// DeleteCollector deletes a collector the actor may see, with its tokens,
// collected data and analyses (the rows; stored files are the caller's to
// remove). It returns ErrNotFound like Collector.
func (s *Store) DeleteCollector(ctx context.Context, a Actor, id int64) error {
	ctx, err := a.scope(ctx)
	if err != nil {
		return fmt.Errorf("delete collector %d: %w", id, err)
	}
	err = s.db.InTenant(ctx, func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM collectors WHERE id = $1 AND ($2 OR owner_id = $3)`,
			id, a.Admin, a.UserID)
		if err == nil && tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("delete collector %d: %w", id, err)
	}
	return nil
}

// CollectorFileKeys returns the storage keys of the collected data of a
// collector the actor can see, so that deleting the collector can remove
// its files too.
func (s *Store) CollectorFileKeys(ctx context.Context, a Actor, id int64) ([]string, error) {
	ctx, err := a.scope(ctx)
	if err != nil {
		return nil, fmt.Errorf("file keys of collector %d: %w", id, err)
	}
	keys, err := tenancy.Rows(ctx, s.db, pgx.RowTo[string], `
		SELECT d.file_key
		FROM collected_data d
		JOIN collectors c ON c.id = d.collector_id
		WHERE c.id = $1 AND ($2 OR c.owner_id = $3)`, id, a.Admin, a.UserID)
	if err != nil {
		return nil, fmt.Errorf("file keys of collector %d: %w", id, err)
	}
	return keys, nil
}
