package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"

	"github.com/xatlabs/xat/tenancy"
)

func (a *app) tenantExecCommand() *cobra.Command {
	var (
		schema   string
		all      bool
		parallel int
	)
	cmd := &cobra.Command{
		Use:   "exec (--schema SCHEMA | --all [--parallel N]) -- SQL",
		Short: "Run one SQL statement inside tenants",
		Long: `Run one SQL statement inside a tenant, or inside every active tenant with
--all, as tenant work runs: in a transaction that sets the tenant's search
path and database guard, so unqualified names are the tenant's tables and
other tenants' schemas are out of reach. The transaction commits when the
statement succeeds.

Each tenant's result is printed under its schema: the rows as a table, or
the command tag of a statement that returns none. --schema also reaches a
deactivated tenant; --all visits the active ones, and a tenant that fails
does not stop the others: failures are printed and the command exits 1.`,
		Example: `  xat tenant exec --schema tenant_acme -- 'SELECT count(*) FROM collectors'
  xat tenant exec --all --parallel 8 -- 'SELECT count(*) FROM collectors'`,
		RunE: func(cmd *cobra.Command, args []string) error {
			sql := strings.TrimSpace(strings.Join(args, " "))
			switch {
			case sql == "":
				return usagef(cmd, "missing SQL; pass it after --")
			case all == (schema != ""):
				return usagef(cmd, "pass either --schema SCHEMA or --all")
			case parallel < 1:
				return usagef(cmd, "--parallel must be at least 1, got %d", parallel)
			case !all && cmd.Flags().Changed("parallel"):
				return usagef(cmd, "--parallel works only with --all")
			}
			if schema != "" {
				if err := a.schemaArg(cmd, schema); err != nil {
					return err
				}
			}

			ctx := cmd.Context()
			db, done, err := a.open(ctx)
			if err != nil {
				return err
			}
			defer done()

			if all {
				return a.execAll(ctx, cmd.OutOrStdout(), db, parallel, sql)
			}
			return a.execOne(ctx, cmd.OutOrStdout(), db, schema, sql)
		},
	}
	f := cmd.Flags()
	f.StringVar(&schema, "schema", "", "run in this tenant")
	f.BoolVar(&all, "all", false, "run in every active tenant")
	f.IntVar(&parallel, "parallel", 1, "with --all, number of tenants run at once")
	return cmd
}

// execOne runs sql in one tenant, active or not: operators may need to look
// into a deactivated tenant.
func (a *app) execOne(ctx context.Context, w io.Writer, db *tenancy.DB, schema, sql string) error {
	t, err := db.Tenant(ctx, schema)
	if err != nil {
		return fmt.Errorf("tenant %s: %w", schema, err)
	}
	ctx = tenancy.WithSettings(tenancy.WithTenant(ctx, t), systemRole)
	out, err := execIn(ctx, tenantLogger(a.logger, t), db, t, sql)
	if err != nil {
		return fmt.Errorf("%s: %w", schema, err)
	}
	_, err = w.Write(out)
	return err
}

// execAll runs sql in every active tenant and prints each result as it
// completes.
func (a *app) execAll(ctx context.Context, w io.Writer, db *tenancy.DB, parallel int, sql string) error {
	var (
		mu             sync.Mutex
		tenants, fails int
	)
	err := db.ForEachTenant(ctx, parallel, func(ctx context.Context, t *tenancy.Tenant) error {
		log := tenantLogger(a.logger, t)
		out, err := execIn(ctx, log, db, t, sql)
		if err != nil {
			// Handled: printed with the results and counted in the exit code.
			log.WarnContext(ctx, "SQL failed in tenant", slog.Any("error", err))
			out = fmt.Appendf(nil, "== %s\nerror: %v\n\n", t.Schema, err)
		}

		mu.Lock()
		defer mu.Unlock()
		tenants++
		if err != nil {
			fails++
		}
		_, werr := w.Write(out)
		return errors.Join(err, werr)
	})
	if err == nil && tenants == 0 {
		_, err = fmt.Fprintln(w, "(no active tenants)")
	}
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if fails == 0 {
		return err
	}
	return &exitError{code: exitFailure, err: fmt.Errorf("SQL failed in %d of %s", fails, plural(tenants, "tenant"))}
}

// tenantLogger returns logger naming t on every line.
func tenantLogger(logger *slog.Logger, t *tenancy.Tenant) *slog.Logger {
	return logger.With(slog.Int64("tenant_id", t.ID), slog.String("schema", t.Schema))
}

// execIn runs sql in t's scope and returns its printed result. ctx must
// carry t.
func execIn(ctx context.Context, log *slog.Logger, db *tenancy.DB, t *tenancy.Tenant, sql string) ([]byte, error) {
	log.DebugContext(ctx, "Running SQL in tenant")

	var buf bytes.Buffer
	fmt.Fprintf(&buf, "== %s\n", t.Schema)
	err := db.InTenant(ctx, func(ctx context.Context, tx pgx.Tx) error {
		return printResult(ctx, &buf, tx, sql)
	})
	if err != nil {
		return nil, err
	}
	buf.WriteString("\n")
	return buf.Bytes(), nil
}

// printResult runs sql in tx and writes its rows, or its command tag when
// it returns none. Every column comes in text format, so raw values print as
// PostgreSQL writes them, whatever their type.
func printResult(ctx context.Context, w io.Writer, tx pgx.Tx, sql string) error {
	rows, err := tx.Query(ctx, sql, pgx.QueryResultFormats{pgx.TextFormatCode})
	if err != nil {
		return err
	}
	defer rows.Close()

	var out [][]string
	for rows.Next() {
		raw := rows.RawValues()
		row := make([]string, len(raw))
		for i, v := range raw {
			if v == nil {
				row[i] = "NULL"
			} else {
				row[i] = cell(string(v))
			}
		}
		out = append(out, row)
	}
	fields := rows.FieldDescriptions()
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}

	if len(fields) == 0 {
		_, err := fmt.Fprintln(w, rows.CommandTag().String())
		return err
	}
	header := make([]string, len(fields))
	for i, f := range fields {
		header[i] = cell(f.Name)
	}
	if err := table(w, header, out); err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "(%s)\n", plural(len(out), "row"))
	return err
}

// systemRole is the acting role of operator commands inside a tenant: the
// application's row-level security policies let it see every row of the
// tenant, as a tenant administrator would.
var systemRole = tenancy.Setting{Name: "xat.role", Value: "system"}
