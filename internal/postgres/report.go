package postgres

import (
	"context"
	"sort"

	"github.com/jackc/pgx/v5"

	"github.com/xatlabs/xat/tenancy"
)

// TenantUsage is one partner's line of the cross-tenant report.
type TenantUsage struct {
	TenantID      int64  `json:"partner_id"`
	Schema        string `json:"schema"`
	Name          string `json:"name"`
	Active        bool   `json:"active"`
	Collectors    int64  `json:"collectors"`
	CollectedData int64  `json:"collected_data"`
	Analyses      int64  `json:"analyses"`
	StoredBytes   int64  `json:"stored_bytes"`
}

// usageSQL counts one partner's rows; tenancy's Report runs it for every
// partner through the read-only reporting role, all in one pipeline.
const usageSQL = `
	SELECT {{tenant_id}}::bigint,
	       (SELECT count(*) FROM {{schema}}.collectors),
	       (SELECT count(*) FROM {{schema}}.collected_data),
	       (SELECT count(*) FROM {{schema}}.capture_analyses),
	       (SELECT coalesce(sum(size_bytes), 0)::bigint FROM {{schema}}.collected_data)`

// TenantReport returns exact per-partner counts and stored bytes across
// every partner, ordered by partner id.
func (s *Store) TenantReport(ctx context.Context) ([]TenantUsage, error) {
	tenants, err := s.db.Tenants(ctx)
	if err != nil {
		return nil, err
	}
	byID := make(map[int64]*TenantUsage, len(tenants))
	for _, t := range tenants {
		byID[t.ID] = &TenantUsage{TenantID: t.ID, Schema: t.Schema, Name: t.Name, Active: t.Active}
	}
	// The report counts every row, whoever owns it.
	ctx = tenancy.WithSettings(ctx, tenancy.Setting{Name: "xat.role", Value: "system"})
	err = s.db.Report(ctx, usageSQL, 0, func(rows pgx.Rows) error {
		for rows.Next() {
			var id, collectors, data, analyses, bytes int64
			if err := rows.Scan(&id, &collectors, &data, &analyses, &bytes); err != nil {
				return err
			}
			// A partner created after the registry was read is skipped;
			// one deleted meanwhile cannot appear, its schema is gone.
			if u := byID[id]; u != nil {
				u.Collectors, u.CollectedData, u.Analyses, u.StoredBytes = collectors, data, analyses, bytes
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	out := make([]TenantUsage, 0, len(byID))
	for _, u := range byID {
		out = append(out, *u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].TenantID < out[j].TenantID })
	return out, nil
}
