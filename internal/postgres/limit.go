package postgres

import (
	"context"
	"crypto/sha256"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Limit is a rate limit shared by every instance through the database:
// each key may act Burst times at once, then once every Window/Burst, so
// Burst times per Window over any long run. Keys are stored hashed.
type Limit struct {
	Burst  int
	Window time.Duration
}

// Allow records one action for key under l and reports whether it is
// within the limit. When it is not, nothing is recorded and retryAfter
// says how long until the key may act again. One statement decides,
// under the key's row lock, so concurrent attempts on any instance count
// exactly once each.
func (s *Store) Allow(ctx context.Context, l Limit, key string) (ok bool, retryAfter time.Duration, err error) {
	if l.Burst <= 0 || l.Window/time.Duration(l.Burst) <= 0 {
		return false, 0, fmt.Errorf("rate limit %q: invalid limit %d per %s", key, l.Burst, l.Window)
	}
	interval := l.Window / time.Duration(l.Burst)
	slack := l.Window - interval // how far ahead of now restored_at may run
	h := sha256.Sum256([]byte(key))
	var wait int64
	err = s.db.ControlQuery(ctx, func(rows pgx.Rows) error {
		_, err := pgx.CollectExactlyOneRow(rows, func(r pgx.CollectableRow) (struct{}, error) {
			return struct{}{}, r.Scan(&ok, &wait)
		})
		return err
	}, `
		WITH attempt AS (
			INSERT INTO public.login_limits AS l (key_hash, restored_at)
			VALUES ($1, now() + $2 * interval '1 microsecond')
			ON CONFLICT (key_hash) DO UPDATE
				SET restored_at = greatest(l.restored_at, now()) + $2 * interval '1 microsecond'
				WHERE greatest(l.restored_at, now()) <= now() + $3 * interval '1 microsecond'
			RETURNING true AS ok
		)
		SELECT EXISTS (SELECT FROM attempt),
		       coalesce((SELECT (extract(epoch FROM restored_at - now()) * 1e6)::bigint - $3
		                 FROM public.login_limits WHERE key_hash = $1), 0)`,
		h[:], interval.Microseconds(), slack.Microseconds())
	if err != nil {
		return false, 0, fmt.Errorf("rate limit: %w", err)
	}
	if ok {
		return true, 0, nil
	}
	return false, max(time.Duration(wait)*time.Microsecond, 0), nil
}

// ResetLimit gives key its whole allowance back, as a good password does
// for its account.
func (s *Store) ResetLimit(ctx context.Context, key string) error {
	h := sha256.Sum256([]byte(key))
	if _, err := controlExec(ctx, s, `DELETE FROM public.login_limits WHERE key_hash = $1`, h[:]); err != nil {
		return fmt.Errorf("reset rate limit: %w", err)
	}
	return nil
}

// DeleteRestoredLimits removes the keys whose allowance is whole again,
// which count the same as absent ones, and returns how many there were.
// It is housekeeping, meant for a periodic job.
func (s *Store) DeleteRestoredLimits(ctx context.Context) (int64, error) {
	n, err := controlExec(ctx, s, `DELETE FROM public.login_limits WHERE restored_at <= now()`)
	if err != nil {
		return 0, fmt.Errorf("delete restored rate limits: %w", err)
	}
	return n, nil
}
