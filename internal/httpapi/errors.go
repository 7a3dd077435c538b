package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"
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
	ae, ok := errors.AsType[*apiError](err)
	if !ok {
		ae = s.mapError(err)
	}
	if ae == nil {
		// A client that went away is no server failure.
		if r.Context().Err() == nil {
			logger(r.Context(), s.log).ErrorContext(r.Context(), "Request failed", slog.Any("error", err))
		}
		ae = &apiError{http.StatusInternalServerError, "internal", "internal error"}
	}
	if ae.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", retryAfter(s.cfg.RetryAfter))
	}
	writeError(w, ae.Status, ae.Code, ae.Message)
}

// retryAfter formats d as a Retry-After value: whole seconds, at least one.
func retryAfter(d time.Duration) string {
	return strconv.FormatInt(max(1, int64((d+time.Second-1)/time.Second)), 10)
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
		return bodyError(err)
	}
	// Anything after the value, even a stray bracket, is refused.
	if err := dec.Decode(&json.RawMessage{}); err != io.EOF {
		if _, tooBig := errors.AsType[*http.MaxBytesError](err); tooBig {
			return bodyError(err)
		}
		return badRequest("invalid JSON body: unexpected data after the JSON value")
	}
	return nil
}

// bodyError says what is wrong with a request body in the client's terms,
// without the decoder's Go type names.
func bodyError(err error) error {
	if _, tooBig := errors.AsType[*http.MaxBytesError](err); tooBig {
		return &apiError{http.StatusRequestEntityTooLarge, "too_large", "request body too large"}
	}
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		if te.Field == "" {
			return badRequest("request body must be a JSON object")
		}
		return badRequest(fmt.Sprintf("%s must be %s", te.Field, jsonKind(te.Type)))
	}
	switch {
	case errors.Is(err, io.EOF):
		return badRequest("request body must be a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("invalid JSON body: unexpected end of input")
	}
	return badRequest("invalid JSON body: " + strings.TrimPrefix(err.Error(), "json: "))
}

// jsonKind names the JSON value a Go type decodes from.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "an object"
}
