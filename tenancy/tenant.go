package tenancy

import (
	"context"
	"errors"
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
