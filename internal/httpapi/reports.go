package httpapi

import (
	"net/http"
)

// tenantReport answers the cross-partner usage report for platform
// administrators: exact per-partner counts and stored bytes, computed
// through the read-only reporting role, one statement per partner, all
// pipelined in one round trip.
func (s *Server) tenantReport(w http.ResponseWriter, r *http.Request, _ *principal) error {
	rows, err := s.store.TenantReport(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(rows, ""))
	return nil
}
