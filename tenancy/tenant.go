package tenancy

import (
	"context"
	"errors"
	"strings"
	"time"
)

// Tenant is one registered tenant: a row of the registry and the schema
// holding its data.
type Tenant struct {
	ID        int64      `json:"id"`
	Name      string     `json:"name"`
	Schema    string     `json:"schema"`
	Active    bool       `json:"active"`
	InfoURL   string     `json:"info_url,omitempty"`
	CreatedOn time.Time  `json:"created_on"`
	PaidUntil *time.Time `json:"paid_until,omitempty"`
}

// ErrNoTenant is returned by every tenant-scoped call made with a context
// that carries no tenant. Nothing falls back to the public schema.
var ErrNoTenant = errors.New("no tenant in context")

// ErrTenantNotFound is returned when a tenant, schema or domain is not in the
// registry.
var ErrTenantNotFound = errors.New("tenant not found")

// ErrTenantInactive is returned when work is asked of a deactivated tenant.
var ErrTenantInactive = errors.New("tenant is inactive")

type tenantKey struct{}

// WithTenant returns a copy of ctx that carries t. Tenant-scoped calls take
// their tenant from there.
func WithTenant(ctx context.Context, t *Tenant) context.Context {
	return context.WithValue(ctx, tenantKey{}, t)
}

// FromContext returns the tenant carried by ctx, or nil and false.
func FromContext(ctx context.Context) (*Tenant, bool) {
	t, ok := ctx.Value(tenantKey{}).(*Tenant)
	return t, ok && t != nil
}

// tenantFrom returns the tenant carried by ctx or ErrNoTenant.
func tenantFrom(ctx context.Context) (*Tenant, error) {
	t, ok := FromContext(ctx)
	if !ok {
		return nil, ErrNoTenant
	}
	return t, nil
}

// Setting is an extra transaction-local setting for a tenant scope, such as
// the acting user that the application's row-level security policies read.
type Setting struct {
	Name  string // a custom setting: two lowercase identifiers joined by a dot
	Value string
}

type settingsKey struct{}

// WithSettings returns a copy of ctx whose tenant scopes also set these
// transaction-local settings, after the tenant's own. Settings accumulate;
// a later one with the same name wins. Names are checked when the scope
// opens: a malformed name fails the call.
func WithSettings(ctx context.Context, settings ...Setting) context.Context {
	prev, _ := ctx.Value(settingsKey{}).([]Setting)
	all := append(append([]Setting(nil), prev...), settings...)
	return context.WithValue(ctx, settingsKey{}, all)
}

func settingsFrom(ctx context.Context) []Setting {
	s, _ := ctx.Value(settingsKey{}).([]Setting)
	return s
}

// validSettingName accepts custom settings only (prefix.name), so that a
// scope can never change the search path, role or tenant it set itself.
func validSettingName(name string) bool {
	prefix, rest, ok := strings.Cut(name, ".")
	if !ok || prefix == "tenancy" {
		return false
	}
	for _, part := range []string{prefix, rest} {
		if part == "" || len(part) > maxIdentifier || part[0] < 'a' || part[0] > 'z' {
			return false
		}
		for i := 0; i < len(part); i++ {
			c := part[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
				return false
			}
		}
	}
	return true
}
