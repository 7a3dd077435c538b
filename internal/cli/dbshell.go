package cli

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/xatlabs/xat/internal/config"
	"github.com/xatlabs/xat/pglocal"
	"github.com/xatlabs/xat/tenancy"
)

func (a *app) dbshellCommand() *cobra.Command {
	var schema string
	cmd := &cobra.Command{
		Use:   "dbshell --schema SCHEMA",
		Short: "Open psql inside a tenant",
		Long: `Open psql connected as the serving role and scoped to one tenant, as tenant
work is: the search path is the tenant's schema then public, the tenant
setting names it, and under the role guard the session runs as the
tenant's role. Unlike tenant work, the scope is set for the whole session.

The scope is a convenience for operators, not a boundary: RESET ROLE or SET
commands in the shell change it. psql is taken from PATH, or else from the
directory of the PostgreSQL server programs.`,
		Args: args(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if schema == "" {
				return usagef(cmd, "--schema is required: the schema of the tenant to open")
			}
			if err := a.schemaArg(cmd, schema); err != nil {
				return err
			}
			return a.dbshell(cmd, schema)
		},
	}
	cmd.Flags().StringVar(&schema, "schema", "", "schema of the tenant (required)")
	return cmd
}

func (a *app) dbshell(cmd *cobra.Command, schema string) error {
	ctx := cmd.Context()
	t, err := a.target(ctx)
	if err != nil {
		return err
	}
	// Stops a local cluster this process started, once psql has exited.
	defer t.close()

	db, err := a.connect(ctx, t, openOpts{})
	if err != nil {
		return err
	}
	_, err = db.Tenant(ctx, schema)
	cfg := db.Config()
	db.Close()
	if err != nil {
		return fmt.Errorf("tenant %s: %w", schema, err)
	}

	psql, err := findPsql(t.binDir)
	if err != nil {
		return err
	}
	conn, password, err := config.SplitPassword(t.serveURL)
	if err != nil {
		return fmt.Errorf("serving connection: %w", err)
	}

	// The child gets no context: Ctrl-C belongs to psql, which cancels its
	// query and keeps running, while this process ignores it.
	sh := exec.Command(psql, conn)
	sh.Stdin, sh.Stdout, sh.Stderr = a.env.Stdin, cmd.OutOrStdout(), a.env.Stderr
	sh.Env = shellEnv(os.Environ(), pgOptions(cfg, schema), schema, password)
	err = sh.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return &exitError{code: exit.ExitCode()}
	}
	if err != nil {
		return fmt.Errorf("run %s: %w", psql, err)
	}
	return nil
}

// pgOptions returns the PGOPTIONS that scope a psql session to the tenant
// whose schema is schema. Schema and role names are validated identifiers,
// so they need no escaping here.
func pgOptions(cfg tenancy.Config, schema string) string {
	opts := []string{"-c search_path=" + schema + ",public"}
	if cfg.Guard == tenancy.GuardRole {
		opts = append(opts, "-c role="+cfg.TenantRole(schema))
	}
	opts = append(opts,
		"-c "+tenancy.TenantSetting+"="+schema,
		"-c application_name=xat:dbshell:"+schema,
		"-c "+systemRole.Name+"="+systemRole.Value,
	)
	return strings.Join(opts, " ")
}

// shellEnv returns the environment of psql: the process's own, with the
// variables that set the scope (and the password, kept off the command
// line) replaced.
func shellEnv(environ []string, options, schema, password string) []string {
	replaced := []string{"PGOPTIONS", "PGAPPNAME", "PGPASSWORD"}
	env := make([]string, 0, len(environ)+3)
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(replaced, name) {
			env = append(env, kv)
		}
	}
	env = append(env, "PGOPTIONS="+options, "PGAPPNAME=xat:dbshell:"+schema)
	if password != "" {
		env = append(env, "PGPASSWORD="+password)
	}
	return env
}

// findPsql looks for psql on PATH, then beside the server programs.
func findPsql(binDir string) (string, error) {
	if p, err := exec.LookPath("psql"); err == nil {
		return p, nil
	}
	if binDir == "" {
		binDir, _ = pglocal.FindBinDir()
	}
	if binDir != "" {
		p := filepath.Join(binDir, "psql")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errors.New("psql not found on PATH or beside the PostgreSQL server programs; " +
		"install the PostgreSQL client (apt-get install postgresql-client, dnf install postgresql, brew install libpq)")
}
