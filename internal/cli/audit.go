package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/xatlabs/xat/tenancy"
)

func (a *app) auditCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "audit [--json]",
		Short: "Check the live database against the tenant isolation checklist",
		Long: `Check the live database against the isolation checklist: every registered
partner has its schema and role and every tenant-like schema is registered;
each partner schema holds exactly the tables and columns of a fresh one at
its version; no tenant table exists in public; no privilege reaches from one
partner to another; row-level security is on and forced with the guard
policy on every tenant table; the serving role is not a superuser, cannot
bypass row-level security and does not inherit tenant privileges.

Exits 1 when anything is found.`,
		Args: args(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, done, err := a.open(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			rep, err := db.Audit(cmd.Context())
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if asJSON {
				if rep.Findings == nil {
					rep.Findings = []tenancy.Finding{}
				}
				if err := writeJSON(w, rep); err != nil {
					return err
				}
			} else if err := printAudit(w, rep); err != nil {
				return err
			}
			if len(rep.Findings) > 0 {
				return &exitError{code: exitFailure}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

func printAudit(w io.Writer, rep *tenancy.AuditReport) error {
	byCheck := map[string][]tenancy.Finding{}
	for _, f := range rep.Findings {
		byCheck[f.Check] = append(byCheck[f.Check], f)
	}
	for _, c := range rep.Checks {
		found := byCheck[c]
		status := "ok"
		if len(found) > 0 {
			status = fmt.Sprintf("%d finding(s)", len(found))
		}
		fmt.Fprintf(w, "%-20s %s\n", c, status)
		for _, f := range found {
			where := f.Schema
			if where == "" {
				where = "-"
			}
			fmt.Fprintf(w, "  %s: %s\n", where, cell(f.Detail))
		}
	}
	fmt.Fprintf(w, "%d tenants checked, %d finding(s)\n", rep.Tenants, len(rep.Findings))
	return nil
}

func (a *app) tenantResolveCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "resolve HOST",
		Short: "Explain which partner a host maps to, and why",
		Args:  args("HOST"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			db, done, err := a.open(ctx)
			if err != nil {
				return err
			}
			defer done()
			w := cmd.OutOrStdout()
			host := args[0]
			norm := tenancy.NormalizeHost(host)
			fmt.Fprintf(w, "host        %q\nnormalised  %q (lowercase, port and trailing dot removed)\n", host, norm)

			res := tenancy.NewResolver(db, tenancy.ResolverConfig{PublicHosts: a.cfg.PublicHosts})
			r, err := res.Resolve(ctx, host)
			switch {
			case errors.Is(err, tenancy.ErrMalformedHost):
				fmt.Fprintf(w, "result      400 bad_host: %v\n", err)
				return &exitError{code: exitFailure}
			case errors.Is(err, tenancy.ErrTenantNotFound):
				fmt.Fprintf(w, "result      404 unknown_host: no domain row for %q and not a public host (public: %s)\n",
					norm, strings.Join(a.cfg.PublicHosts, ", "))
				return &exitError{code: exitFailure}
			case errors.Is(err, tenancy.ErrTenantInactive):
				fmt.Fprintf(w, "partner     %s (id %d, schema %s)\nresult      403 tenant_inactive: the partner is deactivated; its data is kept\n",
					r.Tenant.Name, r.Tenant.ID, r.Tenant.Schema)
				return &exitError{code: exitFailure}
			case err != nil:
				return err
			case r.Public:
				fmt.Fprintf(w, "result      public host (listed in XAT_PUBLIC_HOSTS): platform routes\n")
				return nil
			}
			fmt.Fprintf(w, "domain      %q belongs to partner %s (id %d)\nschema      %s\nresult      partner routes, scoped to %s\n",
				norm, r.Tenant.Name, r.Tenant.ID, r.Tenant.Schema, r.Tenant.Schema)
			return nil
		},
	}
}
