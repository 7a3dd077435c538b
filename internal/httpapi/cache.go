package httpapi

import (
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"time"

	"github.com/xatlabs/xat/internal/postgres"
)

// How long cached entries live. The platform list is shared reference data
// that a platform administrator may extend: an instance other than the one
// that took the change serves the old list for at most platformsTTL. A
// finished analysis never changes, so it may stay longer.
const (
	platformsTTL = time.Minute
	analysisTTL  = 10 * time.Minute
)

const platformsKey = "platforms"

func analysisKey(id int64) string { return "analysis:" + strconv.FormatInt(id, 10) }

// platforms returns the platform list, from the shared cache when it holds
// it. The cache is an optimisation: when it fails, the database answers.
func (s *Server) platforms(ctx context.Context) ([]*postgres.Platform, error) {
	c := s.cfg.Cache
	if c == nil {
		return s.store.Platforms(ctx)
	}
	if b, ok, err := c.Shared().Get(ctx, platformsKey); err != nil {
		s.cacheFailed(ctx, "get", err)
	} else if ok {
		var items []*postgres.Platform
		if err := json.Unmarshal(b, &items); err == nil {
			return items, nil
		}
	}

	items, err := s.store.Platforms(ctx)
	if err != nil {
		return nil, err
	}
	s.cacheSet(ctx, items, func(b []byte) error {
		return c.Shared().Set(ctx, platformsKey, b, platformsTTL)
	})
	return items, nil
}

// forgetPlatforms drops the cached platform list after a change.
func (s *Server) forgetPlatforms(ctx context.Context) {
	if c := s.cfg.Cache; c != nil {
		if err := c.Shared().Delete(ctx, platformsKey); err != nil {
			s.cacheFailed(ctx, "delete", err)
		}
	}
}

// analysis returns an analysis the actor may see, like store.Analysis.
//
// Only finished analyses are cached, in the partner's own part of the
// cache (the tenant is part of every key there), under the analysis id
// alone. Who may see the analysis is never taken from the cache: every
// request first asks the database whether the analysis still exists and
// whether the actor may see it, so an entry cached for an administrator
// or the owner is never served to another member, and a deleted
// analysis is gone at once. The cache spares only reading the result.
func (s *Server) analysis(ctx context.Context, actor postgres.Actor, id int64) (*postgres.Analysis, error) {
	c := s.cfg.Cache
	if c == nil {
		return s.store.Analysis(ctx, actor, id)
	}
	key := analysisKey(id)
	if b, ok, err := c.Get(ctx, key); err != nil {
		s.cacheFailed(ctx, "get", err)
	} else if ok {
		var an postgres.Analysis
		// The owner check is redundant with the visibility query; it
		// keeps a wrong entry from being served should the two disagree.
		if err := json.Unmarshal(b, &an); err == nil && an.ID == id && (actor.Admin || an.OwnerID == actor.UserID) {
			if err := s.store.AnalysisVisible(ctx, actor, id); err != nil {
				return nil, err
			}
			return &an, nil
		}
	}

	an, err := s.store.Analysis(ctx, actor, id)
	if err != nil || an.Status != postgres.AnalysisDone {
		return an, err
	}
	s.cacheSet(ctx, an, func(b []byte) error { return c.Set(ctx, key, b, analysisTTL) })
	return an, nil
}

// cacheSet stores v as JSON with set, logging a failure.
func (s *Server) cacheSet(ctx context.Context, v any, set func([]byte) error) {
	b, err := json.Marshal(v)
	if err == nil {
		err = set(b)
	}
	if err != nil {
		s.cacheFailed(ctx, "set", err)
	}
}

// cacheFailed logs a cache operation that failed; the request goes on
// without the cache.
func (s *Server) cacheFailed(ctx context.Context, op string, err error) {
	logger(ctx, s.log).WarnContext(ctx, "Cache unavailable", slog.String("op", op), slog.Any("error", err))
}
