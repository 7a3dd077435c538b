package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/xatlabs/xat/tenancy"
)

func (a *app) domainCommand() *cobra.Command {
	return group("domain", "Route domains to tenants",
		a.domainAddCommand(),
		a.domainRemoveCommand(),
		a.domainPrimaryCommand(),
	)
}

// domainArg normalises and validates a domain named on the command line.
func domainArg(cmd *cobra.Command, domain string) (string, error) {
	d := tenancy.NormalizeHost(domain)
	if err := tenancy.ValidateDomain(d); err != nil {
		return "", usageErr(cmd, err)
	}
	return d, nil
}

func (a *app) domainAddCommand() *cobra.Command {
	var primary bool
	cmd := &cobra.Command{
		Use:   "add SCHEMA DOMAIN",
		Short: "Route a domain to a tenant",
		Long: `Route DOMAIN to the tenant whose schema is SCHEMA. A domain belongs to one
tenant only. The first domain of a tenant is its primary domain; --primary
makes the new one primary in its place.`,
		Args: args("SCHEMA", "DOMAIN"),
		RunE: func(cmd *cobra.Command, args []string) error {
			schema := args[0]
			if err := a.schemaArg(cmd, schema); err != nil {
				return err
			}
			domain, err := domainArg(cmd, args[1])
			if err != nil {
				return err
			}

			ctx := cmd.Context()
			db, done, err := a.open(ctx)
			if err != nil {
				return err
			}
			defer done()

			if err := db.AddDomain(ctx, schema, domain, primary); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Added domain %s to %s\n", domain, schema)
			return nil
		},
	}
	cmd.Flags().BoolVar(&primary, "primary", false, "make it the tenant's primary domain")
	return cmd
}

func (a *app) domainRemoveCommand() *cobra.Command {
	return a.domainActionCommand("remove DOMAIN", "Stop routing a domain",
		`Stop routing DOMAIN. A tenant's primary domain can be removed only when it
is the tenant's last domain; make another one primary first.`,
		(*tenancy.DB).RemoveDomain, "Removed domain %s\n")
}

func (a *app) domainPrimaryCommand() *cobra.Command {
	return a.domainActionCommand("primary DOMAIN", "Make a domain its tenant's primary domain", "",
		(*tenancy.DB).SetPrimaryDomain, "Domain %s is now primary\n")
}

// domainActionCommand is a command that does one thing to one domain and
// says so with done, a format taking the domain.
func (a *app) domainActionCommand(use, short, long string,
	act func(db *tenancy.DB, ctx context.Context, domain string) error, done string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Long:  long,
		Args:  args("DOMAIN"),
		RunE: func(cmd *cobra.Command, args []string) error {
			domain, err := domainArg(cmd, args[0])
			if err != nil {
				return err
			}

			ctx := cmd.Context()
			db, closeDB, err := a.open(ctx)
			if err != nil {
				return err
			}
			defer closeDB()

			if err := act(db, ctx, domain); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), done, domain)
			return nil
		},
	}
}
