package httpapi

import (
	"net/http"
	"strconv"
)

// createAnalysis queues the analysis of collected data: the analysis row
// and its job commit together, and the answer is 202 with the analysis,
// queued. Its status and progress are then read with getAnalysis.
func (s *Server) createAnalysis(w http.ResponseWriter, r *http.Request, p *principal) error {
	if s.cfg.Data.Jobs == nil {
		return &apiError{http.StatusServiceUnavailable, "unavailable", "the job queue is not configured"}
	}
	var in struct {
		DataID *int64 `json:"data_id"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	if in.DataID == nil {
		return badRequest("data_id is required")
	}
	if *in.DataID < 1 {
		return notFound()
	}
	an, err := s.store.CreateAnalysis(r.Context(), p.actor(), *in.DataID, s.cfg.Data.Jobs.EnqueueAnalysis)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/analyses/"+strconv.FormatInt(an.ID, 10))
	writeJSON(w, http.StatusAccepted, an)
	return nil
}

func (s *Server) listAnalyses(w http.ResponseWriter, r *http.Request, p *principal) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	items, next, err := s.store.Analyses(r.Context(), p.actor(), pg)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(items, next))
	return nil
}

func (s *Server) getAnalysis(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	an, err := s.analysis(r.Context(), p.actor(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, an)
	return nil
}
