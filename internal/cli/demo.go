package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/spf13/cobra"

	"github.com/xatlabs/xat/internal/auth"
	"github.com/xatlabs/xat/internal/postgres"
	"github.com/xatlabs/xat/tenancy"
)

// demoPassword is the password of every demo account. The demo runs on a
// private local cluster; never use it against a shared database.
const demoPassword = "demo-password"

type demoPartner struct {
	name, schema, domain string
	admin, member        string
}

var demoPartners = []demoPartner{
	{"Acme", "tenant_acme", "acme.localhost", "admin@acme.test", "member@acme.test"},
	{"Globex", "tenant_globex", "globex.localhost", "admin@globex.test", "member@globex.test"},
}

const demoPlatformAdmin = "platform@xat.test"

func (a *app) demoCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "demo",
		Short: "Run XAT for real with two demo partners, and print how to call them",
		Long: `Run XAT with demo data: migrate, create the partners Acme (acme.localhost)
and Globex (globex.localhost) with an admin and a member each, a platform
administrator, a collector, fresh API tokens, then serve the API and print
the commands to try. Acme's collector gets a sample capture, uploaded and
queued for analysis once, which the server's worker then analyses. Without
DATABASE_URL everything lives in a local PostgreSQL under --data-dir;
running it again reuses that data.`,
		Args: args(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.serve(cmd.Context(), true, func(ctx context.Context, b *backend) error {
				return a.seedDemo(ctx, cmd.OutOrStdout(), b)
			})
		},
	}
}

func (a *app) seedDemo(ctx context.Context, w io.Writer, b *backend) error {
	db, store := b.db, b.store
	hash, err := auth.DefaultHasher.Hash(demoPassword)
	if err != nil {
		return err
	}
	user := func(email string, platformAdmin bool) (*postgres.User, error) {
		u, _, err := store.UserByEmail(ctx, email)
		if errors.Is(err, postgres.ErrNotFound) {
			return store.CreateUser(ctx, email, hash, platformAdmin)
		}
		return u, err
	}
	if _, err := user(demoPlatformAdmin, true); err != nil {
		return err
	}

	tokens := map[string]string{}
	var sample demoSample
	for i, p := range demoPartners {
		t, err := db.Tenant(ctx, p.schema)
		if errors.Is(err, tenancy.ErrTenantNotFound) {
			t, err = db.CreateTenant(ctx, tenancy.NewTenant{Name: p.name, Schema: p.schema, Domain: p.domain})
		}
		if err != nil {
			return fmt.Errorf("demo partner %s: %w", p.name, err)
		}
		for email, role := range map[string]string{p.admin: postgres.RoleAdmin, p.member: postgres.RoleMember} {
			u, err := user(email, false)
			if err != nil {
				return err
			}
			if err := store.AddMember(ctx, t.ID, u.ID, role); err != nil {
				return err
			}
		}
		if tokens[p.admin], err = issueToken(ctx, db, store, p.admin, p.schema, "demo"); err != nil {
			return err
		}
		if tokens[p.member], err = issueToken(ctx, db, store, p.member, p.schema, "demo"); err != nil {
			return err
		}
		actor, collectorID, err := demoCollector(ctx, store, t, p)
		if err != nil {
			return err
		}
		if i == 0 {
			if sample, err = demoCapture(tenancy.WithTenant(ctx, t), b, actor, collectorID); err != nil {
				return fmt.Errorf("demo capture: %w", err)
			}
		}
	}
	printDemo(w, a.cfg.Addr, tokens, sample)
	return nil
}

// demoCollector gives the partner's admin one collector, once, and returns
// the admin, as the actor, with the collector's id.
func demoCollector(
	ctx context.Context,
	store *postgres.Store,
	t *tenancy.Tenant,
	p demoPartner,
) (postgres.Actor, int64, error) {
	u, _, err := store.UserByEmail(ctx, p.admin)
	if err != nil {
		return postgres.Actor{}, 0, err
	}
	ctx = tenancy.WithTenant(ctx, t)
	actor := postgres.Actor{UserID: u.ID, Admin: true}
	existing, _, err := store.Collectors(ctx, actor, postgres.Page{Limit: 1})
	if err != nil {
		return actor, 0, err
	}
	if len(existing) > 0 {
		return actor, existing[0].ID, nil
	}
	platforms, err := store.Platforms(ctx)
	if err != nil || len(platforms) == 0 {
		return actor, 0, fmt.Errorf("demo collector: no platforms: %w", err)
	}
	c, err := store.CreateCollector(ctx, actor, p.name+" HQ", "db-01", platforms[0].ID)
	if err != nil {
		return actor, 0, err
	}
	return actor, c.ID, nil
}

func printDemo(w io.Writer, addr string, tokens map[string]string, sample demoSample) {
	_, port, _ := net.SplitHostPort(addr)
	base := func(host string) string { return "http://" + host + ":" + port }
	acme, globex := demoPartners[0], demoPartners[1]
	fmt.Fprintf(w, `
XAT demo is running on %s (Ctrl-C stops it).

Partners: Acme at %s, Globex at %s (curl resolves *.localhost to 127.0.0.1).
Accounts (password %q): %s, %s, %s, %s; platform admin %s on localhost.

  # Acme's admin lists Acme's collectors
  curl -H 'Authorization: Bearer %s' %s/api/v1/collectors

  # Acme's member sees only what the member owns (nothing yet)
  curl -H 'Authorization: Bearer %s' %s/api/v1/collectors

  # Acme's token on Globex's host is refused (403) and audited
  curl -i -H 'Authorization: Bearer %s' %s/api/v1/collectors

  # Globex's admin creates a collector
  curl -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' \
       -d '{"site_name":"Globex HQ","machine_name":"web-02","platform_id":2}' %s/api/v1/collectors

  # Log in with a session cookie on Acme's host
  curl -c /tmp/xat-cookies -H 'Content-Type: application/json' \
       -d '{"email":"%s","password":"%s"}' %s/api/v1/auth/login
  curl -b /tmp/xat-cookies %s/api/v1/me

  # Platform administration on the public host
  curl -c /tmp/xat-admin -H 'Content-Type: application/json' \
       -d '{"email":"%s","password":"%s"}' %s/api/v1/auth/login
  curl -b /tmp/xat-admin %s/api/v1/partners
  curl -b /tmp/xat-admin '%s/api/v1/audit-events?kind=cross_tenant.denied'
`,
		addr, acme.domain, globex.domain, demoPassword, acme.admin, acme.member, globex.admin, globex.member,
		demoPlatformAdmin,
		tokens[acme.admin], base(acme.domain),
		tokens[acme.member], base(acme.domain),
		tokens[acme.admin], base(globex.domain),
		tokens[globex.admin], base(globex.domain),
		acme.admin, demoPassword, base(acme.domain), base(acme.domain),
		demoPlatformAdmin, demoPassword, base("localhost"), base("localhost"), base("localhost"))
	printSample(w, base(acme.domain), tokens[acme.admin], sample)
	fmt.Fprintf(w, "\nHealth: %[1]s/healthz  Readiness: %[1]s/readyz  Metrics: %[1]s/metrics\n", base("localhost"))
}
