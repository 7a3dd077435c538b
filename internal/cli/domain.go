package cli

import (
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
	return &cobra.Command{
		Use:   "remove DOMAIN",
		Short: "Stop routing a domain",
		Long: `Stop routing DOMAIN. A tenant's primary domain can be removed only when it
is the tenant's last domain; make another one primary first.`,
		Args: args("DOMAIN"),
		RunE: func(cmd *cobra.Command, args []string) error {
			domain, err := domainArg(cmd, args[0])
			if err != nil {
				return err
			}

			ctx := cmd.Context()
			db, done, err := a.open(ctx)
			if err != nil {
				return err
			}
			defer done()

			if err := db.RemoveDomain(ctx, domain); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Removed domain %s\n", domain)
			return nil
		},
	}
}

func (a *app) domainPrimaryCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "primary DOMAIN",
		Short: "Make a domain its tenant's primary domain",
		Args:  args("DOMAIN"),
		RunE: func(cmd *cobra.Command, args []string) error {
			domain, err := domainArg(cmd, args[0])
			if err != nil {
				return err
			}

			ctx := cmd.Context()
			db, done, err := a.open(ctx)
			if err != nil {
				return err
			}
			defer done()

			if err := db.SetPrimaryDomain(ctx, domain); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Domain %s is now primary\n", domain)
			return nil
		},
	}
}
