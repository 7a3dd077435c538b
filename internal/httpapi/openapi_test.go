package httpapi_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"log/slog"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/xatlabs/xat/api"
	"github.com/xatlabs/xat/internal/httpapi"
	"github.com/xatlabs/xat/internal/postgres"
	"github.com/xatlabs/xat/tenancy"
)

// openAPIDoc is the part of an OpenAPI document the tests check.
type openAPIDoc struct {
	OpenAPI    string                          `yaml:"openapi"`
	Tags       []struct{ Name string }         `yaml:"tags"`
	Paths      map[string]map[string]yaml.Node `yaml:"paths"`
	Components struct {
		Parameters map[string]openAPIParam `yaml:"parameters"`
		Schemas    map[string]struct {
			Enum []string `yaml:"enum"`
		} `yaml:"schemas"`
	} `yaml:"components"`
}

// openAPIOp is one operation of the description.
type openAPIOp struct {
	OperationID string               `yaml:"operationId"`
	Tags        []string             `yaml:"tags"`
	Parameters  []openAPIParam       `yaml:"parameters"`
	Responses   map[string]yaml.Node `yaml:"responses"`
}

// openAPIParam is a parameter, or a reference to one.
type openAPIParam struct {
	Ref      string `yaml:"$ref"`
	Name     string `yaml:"name"`
	In       string `yaml:"in"`
	Required bool   `yaml:"required"`
}

// openAPIMethods are the operation keys of an OpenAPI path item.
var openAPIMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// loadSpec parses the embedded description, the one the server serves.
func loadSpec(t *testing.T) *openAPIDoc {
	t.Helper()
	var s openAPIDoc
	require.NoError(t, yaml.Unmarshal([]byte(api.OpenAPI), &s))
	require.True(t, strings.HasPrefix(s.OpenAPI, "3.1."), "openapi version %q", s.OpenAPI)
	return &s
}

// operations returns the operations of s by route ("GET /path").
func (s *openAPIDoc) operations(t *testing.T) map[string]openAPIOp {
	t.Helper()
	ops := make(map[string]openAPIOp)
	for path, item := range s.Paths {
		for key, node := range item {
			if !slices.Contains(openAPIMethods, key) {
				continue
			}
			var op openAPIOp
			require.NoError(t, node.Decode(&op), "%s %s", key, path)
			ops[strings.ToUpper(key)+" "+path] = op
		}
	}
	return ops
}

// pathParams returns the path parameters declared for the operation op at
// path, on the path item and on the operation.
func (s *openAPIDoc) pathParams(t *testing.T, path string, op openAPIOp) []string {
	t.Helper()
	var own []openAPIParam
	if node, ok := s.Paths[path]["parameters"]; ok {
		require.NoError(t, node.Decode(&own), path)
	}
	var names []string
	for _, p := range append(own, op.Parameters...) {
		if ref := p.Ref; ref != "" {
			name, ok := strings.CutPrefix(ref, "#/components/parameters/")
			require.True(t, ok, "openAPIParam reference %s", ref)
			p, ok = s.Components.Parameters[name]
			require.True(t, ok, "openAPIParam reference %s", ref)
		}
		if p.In == "path" {
			require.True(t, p.Required, "%s: path openAPIParam %s must be required", path, p.Name)
			names = append(names, p.Name)
		}
	}
	slices.Sort(names)
	return names
}

// specServer builds an API server over the test database.
func specServer(t *testing.T) (*httpapi.Server, *tenancy.DB) {
	t.Helper()
	db := openDB(t, tenancy.GuardRole)
	res := tenancy.NewResolver(db, tenancy.ResolverConfig{PublicHosts: []string{publicHost}})
	srv := httpapi.New(httpapi.Config{}, db, postgres.New(db), res, slog.New(slog.DiscardHandler))
	return srv, db
}

var pathWildcard = regexp.MustCompile(`\{([^}]*)\}`)

// TestOpenAPIRoutes checks api/openapi.yaml against the routes the server
// registers: the same routes, each tagged with the hosts it is served on,
// with a success and an error response and its path parameters declared.
func TestOpenAPIRoutes(t *testing.T) {
	t.Parallel()
	s := loadSpec(t)
	ops := s.operations(t)
	srv, _ := specServer(t)

	registered := make(map[string]httpapi.Route)
	for _, rt := range srv.Routes() {
		registered[rt.String()] = rt
		op, ok := ops[rt.String()]
		if !ok {
			t.Errorf("%s (%s hosts) is registered but not in api/openapi.yaml", rt, rt.Hosts)
			continue
		}
		var hosts []string
		for _, tag := range op.Tags {
			if tag == httpapi.HostsPublic || tag == httpapi.HostsPartner || tag == httpapi.HostsAny {
				hosts = append(hosts, tag)
			}
		}
		require.Equal(t, []string{rt.Hosts}, hosts, "%s: host tag", rt)
	}
	for route := range ops {
		_, ok := registered[route]
		require.True(t, ok, "the description has %s, which the server does not register", route)
	}

	var tags []string
	for _, tag := range s.Tags {
		tags = append(tags, tag.Name)
	}
	ids := make(map[string]string)
	for route, op := range ops {
		require.NotEmpty(t, op.OperationID, route)
		for _, tag := range op.Tags {
			require.Contains(t, tags, tag, "%s: tag %q is not declared", route, tag)
		}
		require.NotContains(t, ids, op.OperationID, "%s: operationId taken by %s", route, ids[op.OperationID])
		ids[op.OperationID] = route

		var ok2xx, okError bool
		for code := range op.Responses {
			ok2xx = ok2xx || strings.HasPrefix(code, "2")
			okError = okError || code == "default" || code[0] == '4' || code[0] == '5'
		}
		require.True(t, ok2xx, "%s: no 2xx response", route)
		require.True(t, okError, "%s: no error response", route)

		_, path, _ := strings.Cut(route, " ")
		var want []string
		for _, m := range pathWildcard.FindAllStringSubmatch(path, -1) {
			want = append(want, m[1])
		}
		slices.Sort(want)
		require.Equal(t, want, s.pathParams(t, path, op), "%s: path parameters", route)
	}
}

// TestOpenAPIReferences checks that every $ref of the description points
// at something in it.
func TestOpenAPIReferences(t *testing.T) {
	t.Parallel()
	var doc yaml.Node
	require.NoError(t, yaml.Unmarshal([]byte(api.OpenAPI), &doc))
	root := doc.Content[0]

	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		for i := 0; i < len(n.Content); i++ {
			c := n.Content[i]
			if n.Kind == yaml.MappingNode && i%2 == 0 && c.Value == "$ref" {
				ref := n.Content[i+1].Value
				require.NotNil(t, resolveRef(root, ref), "line %d: %s points at nothing", c.Line, ref)
			}
			walk(c)
		}
	}
	walk(root)
}

// resolveRef follows a local reference (#/a/b) from root, or returns nil.
func resolveRef(root *yaml.Node, ref string) *yaml.Node {
	path, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil
	}
	n := root
	for _, key := range strings.Split(path, "/") {
		var next *yaml.Node
		for i := 0; n.Kind == yaml.MappingNode && i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				next = n.Content[i+1]
			}
		}
		if next == nil {
			return nil
		}
		n = next
	}
	return n
}

// TestOpenAPIErrorCodes checks that the description lists every error code
// the package writes: the codes of its apiError literals and writeError
// calls, and those of tenant resolution.
func TestOpenAPIErrorCodes(t *testing.T) {
	t.Parallel()
	listed := loadSpec(t).Components.Schemas["ErrorCode"].Enum
	require.NotEmpty(t, listed)

	used := []string{
		tenancy.CodeBadHost, tenancy.CodeUnknownHost, tenancy.CodeUnknownTenant,
		tenancy.CodeTenantInactive, tenancy.CodeInternal,
	}
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		require.NoError(t, err)
		ast.Inspect(f, func(n ast.Node) bool {
			var lit ast.Expr
			switch n := n.(type) {
			case *ast.CompositeLit:
				if id, ok := n.Type.(*ast.Ident); ok && id.Name == "apiError" && len(n.Elts) == 3 {
					lit = n.Elts[1]
				}
			case *ast.CallExpr:
				if id, ok := n.Fun.(*ast.Ident); ok && id.Name == "writeError" && len(n.Args) == 4 {
					lit = n.Args[2]
				}
			}
			if bl, ok := lit.(*ast.BasicLit); ok && bl.Kind == token.STRING {
				code, err := strconv.Unquote(bl.Value)
				require.NoError(t, err)
				used = append(used, code)
			}
			return true
		})
	}
	require.Contains(t, used, "not_found", "the source scan found no codes")
	for _, code := range used {
		require.Contains(t, listed, code, "error code %q is not listed in ErrorCode", code)
	}
}

// TestOpenAPIServed checks that public and partner hosts serve the
// description, unauthenticated, and an unknown host does not.
func TestOpenAPIServed(t *testing.T) {
	t.Parallel()
	srv, db := specServer(t)
	_, partnerHost := newTenant(t, db)

	for _, host := range []string{publicHost, partnerHost} {
		res := newClient(t, srv, host).Get("/api/v1/openapi.yaml")
		require.Equal(t, http.StatusOK, res.Status, "%s: %s", host, res.Body)
		require.Equal(t, "application/yaml", res.Header.Get("Content-Type"), host)
		require.Equal(t, api.OpenAPI, string(res.Body), host)
	}
	res := newClient(t, srv, "nobody-"+randomHex(4)+".test").Get("/api/v1/openapi.yaml")
	requireError(t, res, http.StatusNotFound, tenancy.CodeUnknownHost)
}
