package httpapi

import (
	"context"
	"net/http"
	"time"
)

// healthz says the process is alive; it touches nothing else.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz says whether the server should get traffic: the database answers
// and no migration is pending.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.db.ServePool().Ping(ctx); err != nil {
		writeError(w, http.StatusServiceUnavailable, "database_unavailable", "database unreachable")
		return
	}
	current, err := s.db.MigrationsCurrent(ctx)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "database_unavailable", "cannot read migration state")
		return
	}
	if !current {
		writeError(w, http.StatusServiceUnavailable, "migrations_pending", "migrations are pending; run xat migrate")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
