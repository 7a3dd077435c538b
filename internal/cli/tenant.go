package cli

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/xatlabs/xat/tenancy"
	"github.com/xatlabs/xat/tenancy/storage"
)

func (a *app) tenantCommand() *cobra.Command {
	return group("tenant", "Create, list and manage tenants",
		a.tenantCreateCommand(),
		a.tenantListCommand(),
		a.tenantShowCommand(),
		a.tenantActivationCommand("activate", true),
		a.tenantActivationCommand("deactivate", false),
		a.tenantDeleteCommand(),
		a.tenantExecCommand(),
		a.tenantResolveCommand(),
	)
}

// schemaArg validates a schema named on the command line.
func (a *app) schemaArg(cmd *cobra.Command, schema string) error {
	if err := a.validSchema(schema); err != nil {
		return usageErr(cmd, err)
	}
	return nil
}

// validSchema checks a tenant schema name against tenancy's rules and the
// configured prefix.
func (a *app) validSchema(schema string) error {
	return tenancy.ValidateSchemaName(schema, a.cfg.SchemaPrefix)
}

func (a *app) tenantCreateCommand() *cobra.Command {
	var schema, domain, infoURL, paidUntil string
	cmd := &cobra.Command{
		Use:   "create NAME --domain DOMAIN",
		Short: "Create a tenant: registry row, role, schema and primary domain",
		Long: `Create a tenant in one transaction: its registry row, database role and
schema, every tenant migration and its primary domain. Either all of it
exists afterwards or none of it does.

The schema name defaults to the configured prefix followed by NAME in
lowercase, with every run of other characters turned into an underscore.`,
		Example: "  xat tenant create Acme --domain acme.example.com --paid-until 2026-12-31",
		Args:    args("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			nt, err := a.newTenant(cmd, args[0], schema, domain, infoURL, paidUntil)
			if err != nil {
				return err
			}

			ctx := cmd.Context()
			db, done, err := a.open(ctx)
			if err != nil {
				return err
			}
			defer done()

			t, err := db.CreateTenant(ctx, nt)
			if errors.Is(err, tenancy.ErrDomainExists) {
				return fmt.Errorf("%w: %s", err, nt.Domain)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Created tenant %s (id %d, schema %s) with primary domain %s\n",
				t.Name, t.ID, t.Schema, tenancy.NormalizeHost(nt.Domain))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&domain, "domain", "", "primary domain of the tenant (required)")
	f.StringVar(&schema, "schema", "", "schema name (default: derived from NAME)")
	f.StringVar(&infoURL, "info-url", "", "information URL (http or https)")
	f.StringVar(&paidUntil, "paid-until", "", "date the tenant is paid until, as YYYY-MM-DD")
	return cmd
}

// newTenant checks the arguments of tenant create.
func (a *app) newTenant(cmd *cobra.Command, name, schema, domain, infoURL, paidUntil string) (tenancy.NewTenant, error) {
	nt := tenancy.NewTenant{Name: strings.TrimSpace(name), Schema: schema, InfoURL: infoURL}
	if nt.Name == "" || len(nt.Name) > 200 {
		return nt, usagef(cmd, "NAME must be 1 to 200 characters")
	}

	if nt.Schema == "" {
		nt.Schema = tenancy.SchemaFromName(a.cfg.SchemaPrefix, nt.Name)
		if err := a.validSchema(nt.Schema); err != nil {
			return nt, usagef(cmd, "cannot derive a schema name from %q (%w); pass --schema", nt.Name, err)
		}
	} else if err := a.schemaArg(cmd, nt.Schema); err != nil {
		return nt, err
	}

	if domain == "" {
		return nt, usagef(cmd, "--domain is required: the tenant's primary domain, such as acme.example.com")
	}
	nt.Domain = tenancy.NormalizeHost(domain)
	if err := tenancy.ValidateDomain(nt.Domain); err != nil {
		return nt, usageErr(cmd, fmt.Errorf("--domain: %w", err))
	}

	if infoURL != "" {
		u, err := url.Parse(infoURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nt, usagef(cmd, "--info-url: want an absolute http or https URL, got %q", infoURL)
		}
	}
	if paidUntil != "" {
		d, err := time.Parse(time.DateOnly, paidUntil)
		if err != nil {
			return nt, usagef(cmd, "--paid-until: want a date as YYYY-MM-DD, got %q", paidUntil)
		}
		nt.PaidUntil = &d
	}
	return nt, nil
}

func (a *app) tenantListCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List tenants",
		Args:  args(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			db, done, err := a.open(ctx)
			if err != nil {
				return err
			}
			defer done()

			tenants, err := db.Tenants(ctx)
			if err != nil {
				return err
			}
			if asJSON {
				if tenants == nil {
					tenants = []*tenancy.Tenant{}
				}
				return writeJSON(cmd.OutOrStdout(), tenants)
			}

			rows := make([][]string, len(tenants))
			for i, t := range tenants {
				rows[i] = []string{
					fmt.Sprint(t.ID), t.Schema, cell(t.Name), yesNo(t.Active),
					t.CreatedOn.Format(time.DateOnly), date(t.PaidUntil),
				}
			}
			return table(cmd.OutOrStdout(), []string{"ID", "SCHEMA", "NAME", "ACTIVE", "CREATED", "PAID UNTIL"}, rows)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// tenantDetail is what tenant show prints.
type tenantDetail struct {
	*tenancy.Tenant
	Role       string               `json:"role"`
	Domains    []tenancy.Domain     `json:"domains"`
	Migrations *tenancy.SchemaState `json:"migrations,omitempty"`
}

func (a *app) tenantShowCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show SCHEMA",
		Short: "Show a tenant with its domains and migration state",
		Args:  args("SCHEMA"),
		RunE: func(cmd *cobra.Command, args []string) error {
			schema := args[0]
			if err := a.schemaArg(cmd, schema); err != nil {
				return err
			}

			ctx := cmd.Context()
			db, done, err := a.open(ctx)
			if err != nil {
				return err
			}
			defer done()

			t, err := db.Tenant(ctx, schema)
			if err != nil {
				return fmt.Errorf("tenant %s: %w", schema, err)
			}
			d := tenantDetail{Tenant: t, Role: db.Config().TenantRole(schema)}
			if d.Domains, err = db.Domains(ctx, schema); err != nil {
				return err
			}
			st, err := db.SchemaStatus(ctx, schema)
			if err != nil {
				return err
			}
			d.Migrations = &st

			if asJSON {
				return writeJSON(cmd.OutOrStdout(), d)
			}
			return d.print(cmd.OutOrStdout())
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (d tenantDetail) print(w io.Writer) error {
	info := d.InfoURL
	if info == "" {
		info = "-"
	}
	rows := [][]string{
		{"Name:", cell(d.Name)},
		{"ID:", fmt.Sprint(d.ID)},
		{"Schema:", d.Schema},
		{"Role:", d.Role},
		{"Active:", yesNo(d.Active)},
		{"Created:", d.CreatedOn.Format(time.RFC3339)},
		{"Paid until:", date(d.PaidUntil)},
		{"Info URL:", cell(info)},
	}
	if m := d.Migrations; m != nil {
		rows = append(rows, []string{"Migrations:",
			fmt.Sprintf("version %d of %d, %s%s", m.Version, m.Latest, state(*m), lastError(*m))})
	}
	if err := columns(w, rows); err != nil {
		return err
	}

	fmt.Fprintln(w, "Domains:")
	for _, dom := range d.Domains {
		primary := ""
		if dom.IsPrimary {
			primary = " (primary)"
		}
		fmt.Fprintf(w, "  %s%s\n", dom.Domain, primary)
	}
	return nil
}

func (a *app) tenantActivationCommand(verb string, active bool) *cobra.Command {
	short := "Activate a tenant: its requests are served again"
	if !active {
		short = "Deactivate a tenant: its requests are refused, its data is kept"
	}
	return &cobra.Command{
		Use:   verb + " SCHEMA",
		Short: short,
		Args:  args("SCHEMA"),
		RunE: func(cmd *cobra.Command, args []string) error {
			schema := args[0]
			if err := a.schemaArg(cmd, schema); err != nil {
				return err
			}

			ctx := cmd.Context()
			db, done, err := a.open(ctx)
			if err != nil {
				return err
			}
			defer done()

			t, err := db.SetActive(ctx, schema, active)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Tenant %s (%s) %sd\n", t.Schema, t.Name, verb)
			return nil
		},
	}
}

func (a *app) tenantDeleteCommand() *cobra.Command {
	var drop, yes bool
	cmd := &cobra.Command{
		Use:   "delete SCHEMA --drop --yes",
		Short: "Delete a deactivated tenant with its schema, role and data",
		Long: `Delete a tenant for good: its schema with all its data, its database role,
its domains and its registry row, in one transaction. Only a deactivated
tenant can be deleted, and only with both --drop and --yes.`,
		Args: args("SCHEMA"),
		RunE: func(cmd *cobra.Command, args []string) error {
			schema := args[0]
			if err := a.schemaArg(cmd, schema); err != nil {
				return err
			}
			if !drop || !yes {
				return usagef(cmd, "refusing to delete %s: this drops the schema %s, the tenant's database role "+
					"and all of its data, and cannot be undone; pass --drop --yes to confirm", schema, schema)
			}

			ctx := cmd.Context()
			db, done, err := a.open(ctx)
			if err != nil {
				return err
			}
			defer done()

			t, err := db.Tenant(ctx, schema)
			if err != nil {
				return fmt.Errorf("tenant %s: %w", schema, err)
			}
			err = db.DeleteTenant(ctx, schema)
			if errors.Is(err, tenancy.ErrTenantActive) {
				return fmt.Errorf("tenant %s is active; deactivate it first with 'xat tenant deactivate %s'",
					schema, schema)
			}
			if err != nil {
				return err
			}
			// The rows are gone; the files would be unreachable.
			files, err := storage.Open(ctx, a.cfg.StorageURL)
			if err == nil {
				err = files.DeletePrefix(tenancy.WithTenant(ctx, t))
				files.Close()
			}
			if err != nil {
				return fmt.Errorf("tenant %s deleted, but its files were not: %w", schema, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Deleted tenant %s with its schema, role, data and files\n", schema)
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&drop, "drop", false, "drop the tenant's schema, role and all its data")
	f.BoolVar(&yes, "yes", false, "confirm the deletion")
	return cmd
}
