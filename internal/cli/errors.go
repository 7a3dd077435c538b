package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/spf13/cobra"

	"github.com/xatlabs/xat/tenancy"
)

// exitError ends a command with a given exit code. A nil err exits
// silently, for a result already printed (psql's own exit status, say).
type exitError struct {
	code int
	err  error

	// usage, when set, is the command whose --help the message points to.
	usage string
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// usageErr marks err as a bad argument or flag of cmd.
func usageErr(cmd *cobra.Command, err error) error {
	return &exitError{code: exitUsage, err: err, usage: cmd.CommandPath()}
}

// usagef reports a bad argument or flag of cmd.
func usagef(cmd *cobra.Command, format string, args ...any) error {
	return usageErr(cmd, fmt.Errorf(format, args...))
}

// report prints err, if any, once on stderr and returns the exit code.
func (a *app) report(ctx context.Context, err error) int {
	if err == nil {
		return exitOK
	}

	code := exitFailure
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
		if ee.err == nil {
			return code
		}
	}
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		fmt.Fprintln(a.env.Stderr, "xat: interrupted")
		return exitInterrupted
	}

	fmt.Fprintf(a.env.Stderr, "xat: %s\n", withHint(err))
	if ee != nil && ee.usage != "" {
		fmt.Fprintf(a.env.Stderr, "Run '%s --help' for usage.\n", ee.usage)
	}
	return code
}

// withHint returns the message of err, followed by what to do about it
// when the cause is a common setup mistake.
func withHint(err error) string {
	msg := err.Error()
	if errors.Is(err, tenancy.ErrPrivileges) && strings.Contains(msg, "INHERIT") {
		return msg + "\nhint: 'xat migrate' sets the serving role up for the configured XAT_GUARD"
	}
	var pg *pgconn.PgError
	if !errors.As(err, &pg) {
		return msg
	}
	switch {
	case pg.Code == "28000" && strings.Contains(pg.Message, "does not exist"):
		// The serving role is created by the first migration run.
		return msg + "\nhint: run 'xat migrate' to install tenancy in this database, " +
			"or check XAT_ROLE_PREFIX and the connection settings"
	case pg.Code == "42P01" && strings.Contains(pg.Message, `"public.tenan`):
		return msg + "\nhint: tenancy is not installed in this database; run 'xat migrate'"
	}
	return msg
}
