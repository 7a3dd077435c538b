package httpapi

import (
	"cmp"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/xatlabs/xat/internal/auth"
	"github.com/xatlabs/xat/internal/postgres"
	"github.com/xatlabs/xat/tenancy"
)

// registerPublic adds the platform administration API, served on public
// hosts to platform administrators only.
func (s *Server) registerPublic(mux *http.ServeMux) {
	admin := func(pattern string, h func(http.ResponseWriter, *http.Request, *principal) error) {
		s.handle(mux, pattern, func(w http.ResponseWriter, r *http.Request) error {
			p, err := requirePlatformAdmin(r)
			if err != nil {
				return err
			}
			return h(w, r, p)
		})
	}
	admin("GET /api/v1/partners", s.listPartners)
	admin("POST /api/v1/partners", s.createPartner)
	admin("GET /api/v1/partners/{id}", s.getPartner)
	admin("PATCH /api/v1/partners/{id}", s.updatePartner)
	admin("DELETE /api/v1/partners/{id}", s.deletePartner)
	admin("GET /api/v1/partners/{id}/domains", s.listDomains)
	admin("POST /api/v1/partners/{id}/domains", s.addDomain)
	admin("DELETE /api/v1/partners/{id}/domains/{domain}", s.removeDomain)
	admin("POST /api/v1/partners/{id}/domains/{domain}/primary", s.primaryDomain)
	admin("GET /api/v1/partners/{id}/members", s.listMembers)
	admin("POST /api/v1/partners/{id}/members", s.addMember)
	admin("DELETE /api/v1/partners/{id}/members/{user_id}", s.removeMember)
	admin("GET /api/v1/users", s.listUsers)
	admin("POST /api/v1/users", s.createUser)
	admin("GET /api/v1/platforms", s.listPlatformsAdmin)
	admin("POST /api/v1/platforms", s.createPlatform)
	admin("GET /api/v1/audit-events", s.listAuditEvents)
	admin("GET /api/v1/reports/tenants", s.tenantReport)
}

func (s *Server) partner(r *http.Request) (*tenancy.Tenant, error) {
	id, err := pathID(r, "id")
	if err != nil {
		return nil, err
	}
	return s.db.TenantByID(r.Context(), id)
}

func (s *Server) listPartners(w http.ResponseWriter, r *http.Request, _ *principal) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	all, err := s.db.Tenants(r.Context())
	if err != nil {
		return err
	}
	slices.SortFunc(all, func(a, b *tenancy.Tenant) int { return cmp.Compare(a.ID, b.ID) })
	after := int64(0)
	if pg.After != "" {
		if after, err = strconv.ParseInt(pg.After, 10, 64); err != nil {
			return postgres.ErrBadCursor
		}
	}
	limit := pg.Limit
	if limit == 0 {
		limit = postgres.DefaultLimit
	}
	var items []*tenancy.Tenant
	next := ""
	for _, t := range all {
		if t.ID <= after {
			continue
		}
		if len(items) == limit {
			next = strconv.FormatInt(items[len(items)-1].ID, 10)
			break
		}
		items = append(items, t)
	}
	writeJSON(w, http.StatusOK, newList(items, next))
	return nil
}

func (s *Server) createPartner(w http.ResponseWriter, r *http.Request, p *principal) error {
	var in struct {
		Name      string  `json:"name"`
		Schema    string  `json:"schema"`
		Domain    string  `json:"domain"`
		InfoURL   string  `json:"info_url"`
		PaidUntil *string `json:"paid_until"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	paid, err := parseDate("paid_until", in.PaidUntil)
	if err != nil {
		return err
	}
	if err := checkInfoURL(in.InfoURL); err != nil {
		return err
	}
	t, err := s.db.CreateTenant(r.Context(), tenancy.NewTenant{
		Name: in.Name, Schema: in.Schema, Domain: in.Domain, InfoURL: in.InfoURL, PaidUntil: paid,
	})
	if err != nil {
		return tenantError(err)
	}
	s.registryChanged()
	s.audit(r, postgres.AuditEvent{Kind: postgres.AuditTenantCreated, TenantID: &t.ID, UserID: &p.User.ID,
		Detail: map[string]any{"schema": t.Schema, "domain": tenancy.NormalizeHost(in.Domain)}})
	writeJSON(w, http.StatusCreated, t)
	return nil
}

// registryChanged empties this instance's host cache after the admin API
// changed partners or domains, so that the next request here sees the
// change. Other instances learn of it through the resolver's listener.
func (s *Server) registryChanged() { s.resolver.Invalidate() }

// checkInfoURL accepts an empty information URL or an absolute http or
// https one: it is shown to users as a link.
func checkInfoURL(v string) error {
	if v == "" {
		return nil
	}
	u, err := url.Parse(v)
	if err != nil || len(v) > 2048 || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return badRequest("info_url must be an http or https URL of at most 2048 bytes")
	}
	return nil
}

// tenantError maps tenancy's validation and conflict errors to API errors.
func tenantError(err error) error {
	var ne *tenancy.NameError
	switch {
	case errors.As(err, &ne):
		return badRequest(ne.Error())
	case errors.Is(err, tenancy.ErrSchemaExists), errors.Is(err, tenancy.ErrDomainExists),
		errors.Is(err, tenancy.ErrRoleExists):
		return conflict(strings.TrimPrefix(err.Error(), "create tenant "))
	case errors.Is(err, tenancy.ErrTenantActive), errors.Is(err, tenancy.ErrPrimaryDomain):
		return conflict(err.Error())
	case strings.Contains(err.Error(), "tenant name must be"):
		return badRequest(err.Error())
	}
	return err
}

func (s *Server) getPartner(w http.ResponseWriter, r *http.Request, _ *principal) error {
	t, err := s.partner(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}

func (s *Server) updatePartner(w http.ResponseWriter, r *http.Request, p *principal) error {
	t, err := s.partner(r)
	if err != nil {
		return err
	}
	var in struct {
		Active    *bool   `json:"active"`
		InfoURL   *string `json:"info_url"`
		PaidUntil *string `json:"paid_until"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	ctx := r.Context()
	if in.InfoURL != nil || in.PaidUntil != nil {
		info, paid := t.InfoURL, t.PaidUntil
		if in.InfoURL != nil {
			if err := checkInfoURL(*in.InfoURL); err != nil {
				return err
			}
			info = *in.InfoURL
		}
		if in.PaidUntil != nil {
			if paid, err = parseDate("paid_until", in.PaidUntil); err != nil {
				return err
			}
		}
		if t, err = s.db.UpdateTenant(ctx, t.Schema, info, paid); err != nil {
			return err
		}
	}
	if in.Active != nil && *in.Active != t.Active {
		if t, err = s.db.SetActive(ctx, t.Schema, *in.Active); err != nil {
			return err
		}
	}
	s.registryChanged()
	s.audit(r, postgres.AuditEvent{Kind: postgres.AuditTenantUpdated, TenantID: &t.ID, UserID: &p.User.ID,
		Detail: map[string]any{"active": t.Active}})
	writeJSON(w, http.StatusOK, t)
	return nil
}

// deletePartner drops a partner with all its data. It needs the partner to
// be inactive and ?drop=true, so that no single request can destroy data.
func (s *Server) deletePartner(w http.ResponseWriter, r *http.Request, p *principal) error {
	t, err := s.partner(r)
	if err != nil {
		return err
	}
	if r.URL.Query().Get("drop") != "true" {
		return badRequest("deleting a partner drops its schema and all its data; confirm with ?drop=true")
	}
	if err := s.db.DeleteTenant(r.Context(), t.Schema); err != nil {
		return tenantError(err)
	}
	s.registryChanged()
	if s.cfg.Data.Files != nil {
		// The rows are gone; files left behind would be unreachable.
		if err := s.cfg.Data.Files.DeletePrefix(tenancy.WithTenant(r.Context(), t)); err != nil {
			logger(r.Context(), s.log).WarnContext(r.Context(), "Partner files not removed",
				slog.String("schema", t.Schema), slog.Any("error", err))
		}
	}
	s.audit(r, postgres.AuditEvent{Kind: postgres.AuditTenantDeleted, TenantID: &t.ID, UserID: &p.User.ID,
		Detail: map[string]any{"schema": t.Schema}})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listDomains(w http.ResponseWriter, r *http.Request, _ *principal) error {
	t, err := s.partner(r)
	if err != nil {
		return err
	}
	ds, err := s.db.Domains(r.Context(), t.Schema)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(ds, ""))
	return nil
}

func (s *Server) addDomain(w http.ResponseWriter, r *http.Request, p *principal) error {
	t, err := s.partner(r)
	if err != nil {
		return err
	}
	var in struct {
		Domain  string `json:"domain"`
		Primary bool   `json:"primary"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	if err := s.db.AddDomain(r.Context(), t.Schema, in.Domain, in.Primary); err != nil {
		return tenantError(err)
	}
	s.registryChanged()
	s.audit(r, postgres.AuditEvent{Kind: postgres.AuditDomainAdded, TenantID: &t.ID, UserID: &p.User.ID,
		Detail: map[string]any{"domain": tenancy.NormalizeHost(in.Domain)}})
	return s.listDomainsStatus(w, r, t, http.StatusCreated)
}

func (s *Server) listDomainsStatus(w http.ResponseWriter, r *http.Request, t *tenancy.Tenant, status int) error {
	ds, err := s.db.Domains(r.Context(), t.Schema)
	if err != nil {
		return err
	}
	writeJSON(w, status, newList(ds, ""))
	return nil
}

// domainOf checks that the domain in the path belongs to the partner in the
// path, so that one partner's URL cannot act on another's domain.
func (s *Server) domainOf(r *http.Request) (*tenancy.Tenant, string, error) {
	t, err := s.partner(r)
	if err != nil {
		return nil, "", err
	}
	domain := tenancy.NormalizeHost(r.PathValue("domain"))
	owner, err := s.db.TenantByDomain(r.Context(), domain)
	if err != nil {
		return nil, "", err
	}
	if owner.ID != t.ID {
		return nil, "", notFound()
	}
	return t, domain, nil
}

func (s *Server) removeDomain(w http.ResponseWriter, r *http.Request, p *principal) error {
	t, domain, err := s.domainOf(r)
	if err != nil {
		return err
	}
	if err := s.db.RemoveDomain(r.Context(), domain); err != nil {
		return tenantError(err)
	}
	s.registryChanged()
	s.audit(r, postgres.AuditEvent{Kind: postgres.AuditDomainRemoved, TenantID: &t.ID, UserID: &p.User.ID,
		Detail: map[string]any{"domain": domain}})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) primaryDomain(w http.ResponseWriter, r *http.Request, _ *principal) error {
	t, domain, err := s.domainOf(r)
	if err != nil {
		return err
	}
	if err := s.db.SetPrimaryDomain(r.Context(), domain); err != nil {
		return tenantError(err)
	}
	return s.listDomainsStatus(w, r, t, http.StatusOK)
}

func (s *Server) listMembers(w http.ResponseWriter, r *http.Request, _ *principal) error {
	t, err := s.partner(r)
	if err != nil {
		return err
	}
	pg, err := page(r)
	if err != nil {
		return err
	}
	items, next, err := s.store.Members(r.Context(), t.ID, pg)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(items, next))
	return nil
}

func (s *Server) addMember(w http.ResponseWriter, r *http.Request, p *principal) error {
	t, err := s.partner(r)
	if err != nil {
		return err
	}
	var in struct {
		Email string `json:"email"`
		Role  string `json:"role"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	if in.Role != "admin" && in.Role != "member" {
		return badRequest("role must be admin or member")
	}
	u, _, err := s.store.UserByEmail(r.Context(), strings.ToLower(strings.TrimSpace(in.Email)))
	if errors.Is(err, postgres.ErrNotFound) {
		return badRequest("no user with that email")
	}
	if err != nil {
		return err
	}
	if err := s.store.AddMember(r.Context(), t.ID, u.ID, in.Role); err != nil {
		return err
	}
	s.auth.grants.clear()
	s.audit(r, postgres.AuditEvent{Kind: postgres.AuditMemberAdded, TenantID: &t.ID, UserID: &p.User.ID,
		Detail: map[string]any{"member_id": u.ID, "role": in.Role}})
	writeJSON(w, http.StatusCreated, map[string]any{"user_id": u.ID, "partner_id": t.ID, "role": in.Role})
	return nil
}

func (s *Server) removeMember(w http.ResponseWriter, r *http.Request, p *principal) error {
	t, err := s.partner(r)
	if err != nil {
		return err
	}
	uid, err := pathID(r, "user_id")
	if err != nil {
		return err
	}
	if err := s.store.RemoveMember(r.Context(), t.ID, uid); err != nil {
		return err
	}
	s.auth.grants.clear()
	s.audit(r, postgres.AuditEvent{Kind: postgres.AuditMemberRemoved, TenantID: &t.ID, UserID: &p.User.ID,
		Detail: map[string]any{"member_id": uid}})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request, _ *principal) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	items, next, err := s.store.Users(r.Context(), pg)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(items, next))
	return nil
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request, p *principal) error {
	var in struct {
		Email         string `json:"email"`
		Password      string `json:"password"`
		PlatformAdmin bool   `json:"platform_admin"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	if err := auth.ValidatePassword(in.Password); err != nil {
		return badRequest(err.Error())
	}
	hash, err := s.hasher().Hash(in.Password)
	if err != nil {
		return err
	}
	u, err := s.store.CreateUser(r.Context(), in.Email, hash, in.PlatformAdmin)
	if errors.Is(err, postgres.ErrEmailTaken) {
		return conflict("a user with that email exists")
	}
	if errors.Is(err, postgres.ErrInvalidEmail) {
		return badRequest("invalid email address")
	}
	if err != nil {
		return err
	}
	s.audit(r, postgres.AuditEvent{Kind: postgres.AuditUserCreated, UserID: &p.User.ID,
		Detail: map[string]any{"new_user_id": u.ID}})
	writeJSON(w, http.StatusCreated, u)
	return nil
}

func (s *Server) listPlatformsAdmin(w http.ResponseWriter, r *http.Request, _ *principal) error {
	return s.writePlatforms(w, r)
}

func (s *Server) writePlatforms(w http.ResponseWriter, r *http.Request) error {
	items, err := s.platforms(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(items, ""))
	return nil
}

func (s *Server) createPlatform(w http.ResponseWriter, r *http.Request, _ *principal) error {
	var in struct {
		Name string `json:"name"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	name := strings.TrimSpace(in.Name)
	if name == "" || len(name) > 100 {
		return badRequest("name must be 1 to 100 characters")
	}
	pl, err := s.store.CreatePlatform(r.Context(), name)
	if errors.Is(err, postgres.ErrConflict) {
		return conflict("a platform with that name exists")
	}
	if err != nil {
		return err
	}
	s.forgetPlatforms(r.Context())
	writeJSON(w, http.StatusCreated, pl)
	return nil
}

func (s *Server) listAuditEvents(w http.ResponseWriter, r *http.Request, _ *principal) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	f := postgres.AuditFilter{Kind: r.URL.Query().Get("kind")}
	if v := r.URL.Query().Get("tenant_id"); v != "" {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return badRequest("tenant_id must be a number")
		}
		f.TenantID = &id
	}
	if f.Since, err = parseTime(r, "since"); err != nil {
		return err
	}
	if f.Until, err = parseTime(r, "until"); err != nil {
		return err
	}
	items, next, err := s.store.AuditEvents(r.Context(), f, pg)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(items, next))
	return nil
}
