package cli

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/spf13/cobra"

	"github.com/xatlabs/xat/migrations"
	"github.com/xatlabs/xat/tenancy"
)

func (a *app) migrateCommand() *cobra.Command {
	var (
		opts    tenancy.MigrateOptions
		schemas []string
	)
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply pending shared and tenant migrations",
		Long: `Apply pending migrations: first the shared set to public, then the tenant
set to every tenant schema, each tenant in its own transaction. A tenant
that fails is rolled back and reported, and the others go on; the command
then exits 1, and a rerun continues where it stopped. The shared step begins
with the job queue's own migrations (River's, in public).

--shared and --tenant run one set only; --schema, which may be repeated,
limits the tenant set to the schemas named (and implies --tenant unless
--shared is given too).`,
		Args: args(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.Parallel < 1 {
				return usagef(cmd, "--parallel must be at least 1, got %d", opts.Parallel)
			}
			for _, s := range schemas {
				if err := a.validSchema(s); err != nil {
					return usageErr(cmd, fmt.Errorf("--schema: %w", err))
				}
			}
			if len(schemas) > 0 {
				opts.Schemas = slices.Compact(slices.Sorted(slices.Values(schemas)))
				opts.Tenant = true
			}
			return a.migrate(cmd, opts)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&opts.Shared, "shared", false, "apply the shared migrations")
	f.BoolVar(&opts.Tenant, "tenant", false, "apply the tenant migrations")
	f.StringArrayVar(&schemas, "schema", nil, "migrate only this tenant schema (repeatable)")
	f.IntVar(&opts.Parallel, "parallel", 1, "number of tenants migrated at once")
	f.BoolVar(&opts.DryRun, "dry-run", false, "show what would be applied, change nothing")

	cmd.AddCommand(a.migrateStatusCommand())
	return cmd
}

func (a *app) migrate(cmd *cobra.Command, opts tenancy.MigrateOptions) error {
	ctx := cmd.Context()
	out := cmd.OutOrStdout()

	progress := newProgress(a.env.Stderr)
	logger := a.logger
	if progress != nil {
		opts.Progress = progress.update
		logger = progress.logger(a.logger)
	}

	t, err := a.target(ctx)
	if err != nil {
		return err
	}
	defer t.close()
	// A dry run changes nothing, not even tenancy's own objects.
	db, err := a.connect(ctx, t, openOpts{install: !opts.DryRun, logger: logger})
	if err != nil {
		return err
	}
	defer db.Close()

	// The job queue's tables come with the shared step, before the shared
	// set, which grants tenants their access to them. River keeps their
	// version; a dry run reads it.
	switch {
	case (opts.Shared || !opts.Tenant) && opts.DryRun:
		current, latest, err := jobQueueVersion(ctx, t.adminURL)
		if err != nil {
			return err
		}
		printJobsDryRun(out, current, latest)
	case opts.Shared || !opts.Tenant:
		applied, err := a.migrateJobs(ctx, t.adminURL)
		if err != nil {
			return err
		}
		printJobsReport(out, applied)
	}

	rep, err := db.Migrate(ctx, opts)
	progress.finish()
	if rep != nil {
		printMigrateReport(out, rep, opts)
	}
	if errors.Is(err, tenancy.ErrMigrationsFailed) {
		return &exitError{code: exitFailure, err: fmt.Errorf(
			"%d of %s failed to migrate; fix the cause and rerun xat migrate",
			len(rep.Failed), plural(len(rep.Pending), "tenant schema"))}
	}
	return err
}

func printJobsReport(w io.Writer, applied []int) {
	if len(applied) == 0 {
		fmt.Fprintln(w, "job queue: nothing to apply")
		return
	}
	fmt.Fprintf(w, "job queue: applied River migrations %d -> %d\n", applied[0], applied[len(applied)-1])
}

func printJobsDryRun(w io.Writer, current, latest int) {
	if current >= latest {
		fmt.Fprintf(w, "dry run: job queue: at River version %d, nothing to apply\n", current)
		return
	}
	fmt.Fprintf(w, "dry run: job queue: would apply River migrations %d -> %d\n", current+1, latest)
}

func printMigrateReport(w io.Writer, rep *tenancy.MigrateReport, opts tenancy.MigrateOptions) {
	both := !opts.Shared && !opts.Tenant
	prefix := ""
	if opts.DryRun {
		prefix = "dry run: "
	}

	if both || opts.Shared {
		latest := latestShared()
		switch {
		case rep.SharedFrom >= latest:
			fmt.Fprintf(w, "%sshared: at version %d, nothing to apply\n", prefix, rep.SharedFrom)
		case opts.DryRun:
			fmt.Fprintf(w, "%sshared: would apply %d -> %d\n", prefix, rep.SharedFrom, latest)
		default:
			fmt.Fprintf(w, "shared: applied %d -> %d\n", rep.SharedFrom, rep.SharedTo)
		}
	}
	if !both && !opts.Tenant {
		return
	}

	if opts.DryRun {
		fmt.Fprintf(w, "%stenants: %s would migrate\n", prefix, plural(len(rep.Pending), "schema"))
		for _, s := range rep.Pending {
			fmt.Fprintf(w, "  %s: %d -> %d%s\n", s.Schema, s.Version, s.Latest, lastError(s))
		}
		return
	}
	left := len(rep.Pending) - rep.Applied - len(rep.Failed)
	fmt.Fprintf(w, "tenants: %d applied, %d failed, %d pending\n", rep.Applied, len(rep.Failed), left)
	failed := slices.SortedFunc(slices.Values(rep.Failed), func(x, y tenancy.SchemaError) int {
		return cmp.Compare(x.Schema, y.Schema)
	})
	for _, f := range failed {
		fmt.Fprintf(w, "failed: %s: %s\n", f.Schema, cell(f.Err.Error()))
	}
}

func lastError(s tenancy.SchemaState) string {
	if s.LastError == "" {
		return ""
	}
	return " (last attempt failed: " + cell(s.LastError) + ")"
}

// latestShared returns the version of the newest shared migration.
func latestShared() int {
	set, err := migrations.Shared()
	if err != nil || len(set) == 0 {
		return 0
	}
	return set[len(set)-1].Version
}
