package tenancy

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/jackc/pgx/v5"
)

// ErrInvalidSchema is returned (wrapped in a *NameError) when a schema name
// is not acceptable as a tenant schema.
var ErrInvalidSchema = errors.New("invalid schema name")

// ErrInvalidDomain is returned (wrapped in a *NameError) when a domain is not
// a valid host name.
var ErrInvalidDomain = errors.New("invalid domain")

// NameError says which name was rejected and why. It unwraps to
// ErrInvalidSchema or ErrInvalidDomain.
type NameError struct {
	Kind   error
	Name   string
	Reason string
}

func (e *NameError) Error() string {
	return fmt.Sprintf("%v %q: %s", e.Kind, e.Name, e.Reason)
}

func (e *NameError) Unwrap() error { return e.Kind }

// maxIdentifier is PostgreSQL's NAMEDATALEN minus the terminating byte.
const maxIdentifier = 63

// reservedSchemas can never belong to a tenant.
var reservedSchemas = map[string]bool{
	"public":             true,
	"information_schema": true,
}

// ValidateSchemaName reports whether name may be used as a tenant schema with
// the given required prefix (empty for none). A valid name is a lowercase
// identifier of ASCII letters, digits and underscores that starts with a
// letter, has at most 63 bytes, is not public or information_schema and does
// not start with pg_. Names that pass need no quoting, but SQL built from them
// still quotes them.
func ValidateSchemaName(name, prefix string) error {
	bad := func(reason string) error {
		return &NameError{Kind: ErrInvalidSchema, Name: name, Reason: reason}
	}
	switch {
	case name == "":
		return bad("must not be empty")
	case len(name) > maxIdentifier:
		return bad(fmt.Sprintf("must be at most %d bytes", maxIdentifier))
	case reservedSchemas[name]:
		return bad("is reserved")
	case strings.HasPrefix(name, "pg_"):
		return bad("must not start with pg_")
	case prefix != "" && !strings.HasPrefix(name, prefix):
		return bad(fmt.Sprintf("must start with %q", prefix))
	case prefix != "" && name == prefix:
		return bad(fmt.Sprintf("must have a name after the prefix %q", prefix))
	case name[0] < 'a' || name[0] > 'z':
		return bad("must start with a lowercase letter")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return bad("may hold only lowercase letters, digits and underscores")
		}
	}
	return nil
}

// NormalizeHost turns a Host header or a domain into the form stored in the
// registry: lowercased, without port and without a trailing dot. It does not
// validate; see ValidateDomain.
func NormalizeHost(host string) string {
	host = strings.TrimSpace(host)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(host, ".")
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	return strings.ToLower(host)
}

// ValidateDomain reports whether domain, already normalised, is a host name
// a tenant can be reached at: dot-separated labels of letters, digits and
// hyphens, each 1-63 bytes, not starting or ending with a hyphen, 253 bytes
// at most. IP addresses are rejected because a tenant must be named.
func ValidateDomain(domain string) error {
	bad := func(reason string) error {
		return &NameError{Kind: ErrInvalidDomain, Name: domain, Reason: reason}
	}
	if domain == "" {
		return bad("must not be empty")
	}
	if domain != NormalizeHost(domain) {
		return bad("must be lowercase, without port or trailing dot")
	}
	if len(domain) > 253 {
		return bad("must be at most 253 bytes")
	}
	if net.ParseIP(domain) != nil {
		return bad("must be a host name, not an IP address")
	}
	for _, label := range strings.Split(domain, ".") {
		if label == "" || len(label) > 63 {
			return bad("each label must be 1 to 63 bytes")
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return bad("a label must not start or end with a hyphen")
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return bad("may hold only letters, digits, hyphens and dots")
			}
		}
	}
	return nil
}

// quoteIdent quotes a validated identifier for SQL text.
func quoteIdent(name string) string {
	return pgx.Identifier{name}.Sanitize()
}

// quoteLiteral quotes a validated identifier as a string literal. Callers
// only pass names that ValidateSchemaName or roleName produced, which hold
// no quotes, so doubling quotes is enough.
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// roleName derives the database role of a tenant from its schema. Role names
// are global to the PostgreSQL cluster, hence the prefix; a name that would
// pass 63 bytes keeps its start and gains a short hash so it stays unique.
func roleName(prefix, schema string) string {
	name := prefix + schema
	if len(name) <= maxIdentifier {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	suffix := "_" + hex.EncodeToString(sum[:])[:10]
	return name[:maxIdentifier-len(suffix)] + suffix
}
