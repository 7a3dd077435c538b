package cli

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/xatlabs/xat/internal/postgres"
)

func (a *app) reportCommand() *cobra.Command {
	return group("report", "Cross-partner reports", a.reportTenantsCommand())
}

func (a *app) reportTenantsCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "tenants [--json]",
		Short: "Per-partner counts of collectors, collected data, analyses and stored bytes",
		Args:  args(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, done, err := a.open(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			rows, err := postgres.New(db).TenantReport(cmd.Context())
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if asJSON {
				return writeJSON(w, rows)
			}
			table := [][]string{{"ID", "SCHEMA", "NAME", "ACTIVE", "COLLECTORS", "DATA", "ANALYSES", "BYTES"}}
			var sum postgres.TenantUsage
			for _, r := range rows {
				table = append(table, []string{
					strconv.FormatInt(r.TenantID, 10), r.Schema, cell(r.Name), strconv.FormatBool(r.Active),
					strconv.FormatInt(r.Collectors, 10), strconv.FormatInt(r.CollectedData, 10),
					strconv.FormatInt(r.Analyses, 10), strconv.FormatInt(r.StoredBytes, 10),
				})
				sum.Collectors += r.Collectors
				sum.CollectedData += r.CollectedData
				sum.Analyses += r.Analyses
				sum.StoredBytes += r.StoredBytes
			}
			if err := columns(w, table); err != nil {
				return err
			}
			fmt.Fprintf(w, "%d partners: %d collectors, %d collected data, %d analyses, %d bytes stored\n",
				len(rows), sum.Collectors, sum.CollectedData, sum.Analyses, sum.StoredBytes)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
