package httpapi

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
)

// apiError is an error with its HTTP status and the code and message the
// client sees. Handlers return one; the message must say what is wrong in
// the request, never what failed inside.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func badRequest(msg string) error { return &apiError{http.StatusBadRequest, "bad_request", msg} }
func notFound() error             { return &apiError{http.StatusNotFound, "not_found", "not found"} }
func forbidden(msg string) error  { return &apiError{http.StatusForbidden, "forbidden", msg} }
func conflict(msg string) error   { return &apiError{http.StatusConflict, "conflict", msg} }
func unauthorized() error {
	return &apiError{http.StatusUnauthorized, "unauthorized", "authentication required"}
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// writeError writes the JSON error envelope.
func writeError(w http.ResponseWriter, status int, code, message string) {
	var body errorBody
	body.Error.Code = code
	body.Error.Message = message
	writeJSON(w, status, body)
}

// handleError translates err once, at the boundary: API errors go to the
// client as they are; anything else is logged with the request's logger and
// answered with a generic 500.
func (s *Server) handleError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	if errors.As(err, &ae) {
		writeError(w, ae.Status, ae.Code, ae.Message)
		return
	}
	if mapped := s.mapError(err); mapped != nil {
		writeError(w, mapped.Status, mapped.Code, mapped.Message)
		return
	}
	logger(r.Context(), s.log).ErrorContext(r.Context(), "Request failed", slog.Any("error", err))
	writeError(w, http.StatusInternalServerError, "internal", "internal error")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	enc.Encode(v)
}

// decodeJSON reads a JSON request body into v: unknown fields and trailing
// data are errors, and the body size is capped by the server.
func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return &apiError{http.StatusRequestEntityTooLarge, "too_large", "request body too large"}
		}
		return badRequest("invalid JSON body: " + err.Error())
	}
	if dec.More() {
		return badRequest("invalid JSON body: trailing data")
	}
	return nil
}
