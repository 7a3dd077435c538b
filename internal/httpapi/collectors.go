package httpapi

import (
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/xatlabs/xat/internal/auth"
	"github.com/xatlabs/xat/internal/postgres"
	"github.com/xatlabs/xat/tenancy"
)

// registerPartner adds the partner API, served on partner hosts to the
// partner's members. Every handler works through the store, whose queries
// run scoped to the request's partner and acting member.
func (s *Server) registerPartner(mux *http.ServeMux) {
	member := func(pattern string, h func(http.ResponseWriter, *http.Request, *principal) error) {
		s.handle(mux, pattern, func(w http.ResponseWriter, r *http.Request) error {
			p, err := requireMember(r)
			if err != nil {
				return err
			}
			return h(w, r, p)
		})
	}
	member("GET /api/v1/platforms", func(w http.ResponseWriter, r *http.Request, _ *principal) error {
		return s.writePlatforms(w, r)
	})
	member("GET /api/v1/collectors", s.listCollectors)
	member("POST /api/v1/collectors", s.createCollector)
	member("GET /api/v1/collectors/{id}", s.getCollector)
	member("PATCH /api/v1/collectors/{id}", s.updateCollector)
	member("DELETE /api/v1/collectors/{id}", s.deleteCollector)
	member("GET /api/v1/tokens", s.listTokens)
	member("POST /api/v1/tokens", s.createToken)
	member("DELETE /api/v1/tokens/{id}", s.revokeToken)
}

type collectorInput struct {
	SiteName    *string `json:"site_name"`
	MachineName *string `json:"machine_name"`
	PlatformID  *int64  `json:"platform_id"`
}

// complete checks that a new collector has every field; the store checks
// the values themselves.
func (in collectorInput) complete() error {
	switch {
	case in.SiteName == nil:
		return badRequest("site_name is required")
	case in.MachineName == nil:
		return badRequest("machine_name is required")
	case in.PlatformID == nil:
		return badRequest("platform_id is required")
	}
	return nil
}

func collectorError(err error) error {
	if errors.Is(err, postgres.ErrInvalidPlatform) {
		return badRequest("platform_id names no platform")
	}
	return err
}

func (s *Server) listCollectors(w http.ResponseWriter, r *http.Request, p *principal) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	items, next, err := s.store.Collectors(r.Context(), p.actor(), pg)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(items, next))
	return nil
}

func (s *Server) createCollector(w http.ResponseWriter, r *http.Request, p *principal) error {
	var in collectorInput
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	if err := in.complete(); err != nil {
		return err
	}
	c, err := s.store.CreateCollector(r.Context(), p.actor(), *in.SiteName, *in.MachineName, *in.PlatformID)
	if err != nil {
		return collectorError(err)
	}
	writeJSON(w, http.StatusCreated, c)
	return nil
}

func (s *Server) getCollector(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	c, err := s.store.Collector(r.Context(), p.actor(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *Server) updateCollector(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var in collectorInput
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	patch := postgres.CollectorPatch{SiteName: in.SiteName, MachineName: in.MachineName, PlatformID: in.PlatformID}
	c, err := s.store.UpdateCollector(r.Context(), p.actor(), id, patch)
	if err != nil {
		return collectorError(err)
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *Server) deleteCollector(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	// The files go after the rows: a file that outlives its row is
	// invisible, a row without its file would be a broken download.
	var keys []string
	if s.cfg.Data.Files != nil {
		if keys, err = s.store.CollectorFileKeys(r.Context(), p.actor(), id); err != nil {
			return err
		}
	}
	if err := s.store.DeleteCollector(r.Context(), p.actor(), id); err != nil {
		return err
	}
	for _, k := range keys {
		if err := s.cfg.Data.Files.Delete(r.Context(), k); err != nil {
			logger(r.Context(), s.log).WarnContext(r.Context(), "Collected file not removed",
				slog.String("key", k), slog.Any("error", err))
		}
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request, p *principal) error {
	t, _ := tenancy.FromContext(r.Context())
	items, err := s.store.Tokens(r.Context(), p.User.ID, t.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(items, ""))
	return nil
}

// createToken issues a personal token bound to this partner. The token is
// in the response once; only its hash is stored.
func (s *Server) createToken(w http.ResponseWriter, r *http.Request, p *principal) error {
	var in struct {
		Name      string     `json:"name"`
		ExpiresAt *time.Time `json:"expires_at"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	t, _ := tenancy.FromContext(r.Context())
	plain, hash := auth.NewToken(auth.KindPersonal)
	tok, err := s.store.CreateToken(r.Context(), p.User.ID, t.ID, in.Name, hash, in.ExpiresAt)
	if err != nil {
		return err
	}
	s.audit(r, postgres.AuditEvent{Kind: postgres.AuditTokenCreated, TenantID: &t.ID, UserID: &p.User.ID,
		Detail: map[string]any{"token_id": tok.ID}})
	writeJSON(w, http.StatusCreated, struct {
		*postgres.APIToken
		Token string `json:"token"`
	}{tok, plain})
	return nil
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	t, _ := tenancy.FromContext(r.Context())
	if err := s.store.RevokeToken(r.Context(), p.User.ID, t.ID, id); err != nil {
		return err
	}
	s.auth.grants.clear()
	s.audit(r, postgres.AuditEvent{Kind: postgres.AuditTokenRevoked, TenantID: &t.ID, UserID: &p.User.ID,
		Detail: map[string]any{"token_id": id}})
	w.WriteHeader(http.StatusNoContent)
	return nil
}
