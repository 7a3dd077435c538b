package httpapi

import (
	"net/http"

	"github.com/xatlabs/xat/internal/auth"
	"github.com/xatlabs/xat/internal/postgres"
	"github.com/xatlabs/xat/tenancy"
)

// Collector tokens are managed by whoever may see their collector: its
// owner, or a partner administrator. A token is shown once, when made;
// only its hash is stored.

func (s *Server) listCollectorTokens(w http.ResponseWriter, r *http.Request, p *principal) error {
	return listOfCollector(w, r, p, s.store.CollectorTokens)
}

func (s *Server) createCollectorToken(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var in struct {
		Name string `json:"name"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	plain, hash := auth.NewToken(auth.KindCollector)
	tok, err := s.store.CreateCollectorToken(r.Context(), p.actor(), id, in.Name, hash)
	if err != nil {
		return err
	}
	t, _ := tenancy.FromContext(r.Context())
	s.audit(r, postgres.AuditEvent{Kind: postgres.AuditCollectorTokenCreated, TenantID: &t.ID, UserID: &p.User.ID,
		Detail: map[string]any{"collector_id": id, "token_id": tok.ID}})
	writeJSON(w, http.StatusCreated, struct {
		*postgres.CollectorToken
		Token string `json:"token"`
	}{tok, plain})
	return nil
}

func (s *Server) revokeCollectorToken(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	tokenID, err := pathID(r, "token_id")
	if err != nil {
		return err
	}
	if err := s.store.RevokeCollectorToken(r.Context(), p.actor(), id, tokenID); err != nil {
		return err
	}
	t, _ := tenancy.FromContext(r.Context())
	s.audit(r, postgres.AuditEvent{Kind: postgres.AuditCollectorTokenRevoked, TenantID: &t.ID, UserID: &p.User.ID,
		Detail: map[string]any{"collector_id": id, "token_id": tokenID}})
	w.WriteHeader(http.StatusNoContent)
	return nil
}
