package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
)

// Platform is reference data shared by every partner: the kind of machine
// a collector runs on (Windows, Linux, VMware ESXi...).
type Platform struct {
	ID        int64     `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

func scanPlatform(row pgx.CollectableRow) (*Platform, error) {
	var p Platform
	err := row.Scan(&p.ID, &p.Name, &p.CreatedAt)
	return &p, err
}

// Platforms lists every platform by name.
func (s *Store) Platforms(ctx context.Context) ([]*Platform, error) {
	ps, err := controlRows(ctx, s, scanPlatform,
		`SELECT id, name, created_at FROM public.platforms ORDER BY name, id`)
	if err != nil {
		return nil, fmt.Errorf("list platforms: %w", err)
	}
	return ps, nil
}

// CreatePlatform adds a platform. name is trimmed and must be 1 to 100
// characters. It returns an InputError for a bad name and ErrConflict when
// the name is taken.
func (s *Store) CreatePlatform(ctx context.Context, name string) (*Platform, error) {
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > 100 || !utf8.ValidString(name) {
		return nil, fmt.Errorf("create platform: %w", &InputError{Field: "name", Reason: "must be 1 to 100 characters"})
	}
	p, err := controlRow(ctx, s, scanPlatform, `
		INSERT INTO public.platforms (name) VALUES ($1)
		RETURNING id, name, created_at`, name)
	if isViolation(err, uniqueViolation, "platforms_name_key") {
		err = ErrConflict
	}
	if err != nil {
		return nil, fmt.Errorf("create platform %q: %w", name, err)
	}
	return p, nil
}
