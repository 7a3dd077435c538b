// Package api holds the OpenAPI description of XAT's HTTP API. It is
// embedded so that the server can serve it at /api/v1/openapi.yaml and the
// httpapi tests can hold it against the routes the server registers.
package api

import _ "embed"

// OpenAPI is the OpenAPI 3.1 description of the HTTP API, in YAML.
//
//go:embed openapi.yaml
var OpenAPI string
