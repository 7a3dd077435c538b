// Package cli implements the xat command line. Run builds the command tree
// and runs one command; every command that needs the database gets it from
// the app, which turns the configuration into a local cluster (when no
// DATABASE_URL is set) and a tenancy.DB.
//
// A new command is a method on app that returns a *cobra.Command, added to
// the tree in rootCommand. Its RunE opens the database with app.open, prints
// results on cmd.OutOrStdout() and returns errors rather than printing
// them: Run prints each error once, as "xat: <message>", and maps it to the
// exit code. Bad arguments are returned through usagef or usageErr, which
// exit with code 2 and point at --help.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"

	"github.com/xatlabs/xat/internal/config"
)

// Exit codes of the xat command.
const (
	exitOK          = 0
	exitFailure     = 1 // the command failed, or found what --check looks for
	exitUsage       = 2 // bad arguments, flags or settings
	exitInterrupted = 130
)

// Env is what one run of the command sees of its process.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer

	// LookupEnv reads an environment variable, as os.LookupEnv does.
	// Nil means an empty environment.
	LookupEnv func(string) (string, bool)

	// NewLogger builds the logger once the configuration is known.
	// Nil means the configured format and level, written to Stderr.
	NewLogger func(config.Config) *slog.Logger
}

// Run runs the xat command with args, which exclude the program name, and
// returns the process exit code. Errors are printed once on env.Stderr.
// Cancelling ctx (on SIGINT or SIGTERM in main) stops the work in progress.
func Run(ctx context.Context, args []string, env Env) int {
	if env.Stdin == nil {
		env.Stdin = strings.NewReader("")
	}
	if env.LookupEnv == nil {
		env.LookupEnv = func(string) (string, bool) { return "", false }
	}
	a := &app{env: env, logger: slog.New(slog.DiscardHandler)}

	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(env.Stdin)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	err := root.ExecuteContext(ctx)
	return a.report(ctx, err)
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "xat",
		Short: "XAT multi-tenant backend",
		Long: `xat runs and administers the XAT backend: migrations, tenants and their
domains, and tenant-scoped database access.

Settings come from environment variables, each with a matching flag that
wins over it. Without DATABASE_URL, xat runs a private PostgreSQL cluster
in <data dir>/pgdata, starting it for the command and stopping it after.`,
		SilenceUsage:      true,
		SilenceErrors:     true,
		Args:              cobra.ArbitraryArgs,
		RunE:              groupRun,
		PersistentPreRunE: a.setup,
	}
	root.CompletionOptions.HiddenDefaultCmd = true
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error { return usageErr(cmd, err) })
	config.AddFlags(root.PersistentFlags())

	root.AddCommand(
		a.migrateCommand(),
		a.tenantCommand(),
		a.domainCommand(),
		a.dbshellCommand(),
		a.serveCommand(),
		a.demoCommand(),
		a.userCommand(),
		a.memberCommand(),
		a.tokenCommand(),
		a.auditCommand(),
		a.reportCommand(),
		a.workerCommand(),
	)
	return root
}

// setup loads the configuration and builds the logger before any command
// runs. Help needs neither, and stays available with a broken setting.
func (a *app) setup(cmd *cobra.Command, _ []string) error {
	if cmd.Name() == "help" {
		return nil
	}
	cfg, err := config.Load(a.env.LookupEnv, cmd.Flags())
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	a.cfg = cfg
	if a.env.NewLogger != nil {
		a.logger = a.env.NewLogger(cfg)
	} else {
		a.logger = cfg.NewLogger(a.env.Stderr)
	}
	return nil
}

// group returns a command that only holds subcommands.
func group(use, short string, subs ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ArbitraryArgs,
		RunE:  groupRun,
	}
	cmd.AddCommand(subs...)
	return cmd
}

// groupRun shows the help of a command that holds subcommands, and rejects
// an unknown subcommand, which cobra would otherwise answer with help and
// success.
func groupRun(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return cmd.Help()
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf("; did you mean %q?", s[0])
	}
	return usageErr(cmd, errors.New(msg))
}

// args returns a validator for exactly the positional arguments named, as
// they appear in the usage line.
func args(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < len(names) {
			return usagef(cmd, "missing %s", strings.Join(names[len(args):], " and "))
		}
		if len(args) > len(names) {
			return usagef(cmd, "unexpected argument %q", args[len(names)])
		}
		return nil
	}
}
