package httpapi

import (
	"cmp"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/xatlabs/xat/api"
)

// The kinds of host a route is served on.
const (
	HostsPublic  = "public"  // the platform's public hosts
	HostsPartner = "partner" // partner hosts, and /t/<schema>/ paths in path-prefix mode
	HostsAny     = "any"     // both
)

// Route is one route the server registered.
type Route struct {
	Method string // GET, POST, ...
	Path   string // the path template, with {name} wildcards
	Hosts  string // HostsPublic, HostsPartner or HostsAny
}

// String returns the route as a ServeMux pattern: "GET /api/v1/me".
func (rt Route) String() string { return rt.Method + " " + rt.Path }

// Routes lists the server's routes, sorted by path, then method. A route
// registered for both public and partner hosts is listed once, as
// HostsAny. A route registered on a mux the server does not know as
// either has empty Hosts. Routes is safe for concurrent use.
func (s *Server) Routes() []Route {
	var out []Route
	for pattern, hosts := range s.registered.patterns {
		method, path, ok := strings.Cut(pattern, " ")
		if !ok {
			method, path = "", pattern
		}
		rt := Route{Method: method, Path: path}
		switch {
		case hosts[HostsAny], hosts[HostsPublic] && hosts[HostsPartner]:
			rt.Hosts = HostsAny
		case hosts[HostsPublic]:
			rt.Hosts = HostsPublic
		case hosts[HostsPartner]:
			rt.Hosts = HostsPartner
		}
		out = append(out, rt)
	}
	slices.SortFunc(out, func(a, b Route) int {
		return cmp.Or(cmp.Compare(a.Path, b.Path), cmp.Compare(a.Method, b.Method))
	})
	return out
}

// routeTable records the patterns registered on each mux while the server
// is built; it is not changed afterwards.
type routeTable struct {
	kinds    map[*http.ServeMux]string  // the hosts each mux serves
	patterns map[string]map[string]bool // pattern to the hosts it is on
}

func newRouteTable(public, partner *http.ServeMux) routeTable {
	return routeTable{
		kinds:    map[*http.ServeMux]string{public: HostsPublic, partner: HostsPartner},
		patterns: make(map[string]map[string]bool),
	}
}

// add records pattern as registered on mux.
func (t *routeTable) add(mux *http.ServeMux, pattern string) {
	t.addHosts(t.kinds[mux], pattern)
}

func (t *routeTable) addHosts(hosts, pattern string) {
	if t.patterns == nil {
		t.patterns = make(map[string]map[string]bool)
	}
	if t.patterns[pattern] == nil {
		t.patterns[pattern] = make(map[string]bool)
	}
	t.patterns[pattern][hosts] = true
}

// handleRoot registers a route on the root mux, which answers before the
// host is resolved and so on every host, even an unknown one.
func (s *Server) handleRoot(root *http.ServeMux, pattern string, h http.Handler) {
	root.Handle(pattern, routed(pattern, h))
	s.registered.addHosts(HostsAny, pattern)
}

// openAPI serves the API's OpenAPI description. It needs no credentials.
func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) error {
	h := w.Header()
	h.Set("Content-Type", "application/yaml")
	h.Set("Content-Length", strconv.Itoa(len(api.OpenAPI)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	// A client that goes away mid-body is no failure of ours.
	io.WriteString(w, api.OpenAPI)
	return nil
}
