package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/xatlabs/xat/internal/auth"
	"github.com/xatlabs/xat/internal/postgres"
	"github.com/xatlabs/xat/tenancy"
)

func (a *app) userCommand() *cobra.Command {
	return group("user", "Manage user accounts", a.userCreateCommand())
}

func (a *app) userCreateCommand() *cobra.Command {
	var platformAdmin bool
	cmd := &cobra.Command{
		Use:   "create EMAIL [--platform-admin]",
		Short: "Create a user; the password is read from XAT_PASSWORD, the terminal or stdin",
		Args:  args("EMAIL"),
		RunE: func(cmd *cobra.Command, args []string) error {
			email := postgres.NormalizeEmail(args[0])
			if err := postgres.ValidateEmail(email); err != nil {
				return usageErr(cmd, err)
			}
			password, err := a.readPassword(cmd)
			if err != nil {
				return err
			}
			if err := auth.ValidatePassword(password); err != nil {
				return usageErr(cmd, err)
			}
			hash, err := auth.DefaultHasher.Hash(password)
			if err != nil {
				return err
			}

			db, done, err := a.open(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			store := postgres.New(db)
			u, err := store.CreateUser(cmd.Context(), email, hash, platformAdmin)
			if errors.Is(err, postgres.ErrEmailTaken) {
				return fmt.Errorf("a user with email %s exists", email)
			}
			if err != nil {
				return err
			}
			store.Audit(cmd.Context(), postgres.AuditEvent{Kind: postgres.AuditUserCreated, UserID: &u.ID, Actor: "cli"})
			fmt.Fprintf(cmd.OutOrStdout(), "created user %d %s%s\n", u.ID, u.Email, adminNote(platformAdmin))
			return nil
		},
	}
	cmd.Flags().BoolVar(&platformAdmin, "platform-admin", false, "make the user a platform administrator")
	return cmd
}

func adminNote(admin bool) string {
	if admin {
		return " (platform administrator)"
	}
	return ""
}

// readPassword takes the password from XAT_PASSWORD, else asks on the
// terminal (twice), else reads the first line of stdin.
func (a *app) readPassword(cmd *cobra.Command) (string, error) {
	if v, ok := a.env.LookupEnv("XAT_PASSWORD"); ok && v != "" {
		return v, nil
	}
	if f, ok := a.env.Stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(cmd.ErrOrStderr(), "Password: ")
		p1, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(cmd.ErrOrStderr())
		if err != nil {
			return "", err
		}
		fmt.Fprint(cmd.ErrOrStderr(), "Again: ")
		p2, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(cmd.ErrOrStderr())
		if err != nil {
			return "", err
		}
		if string(p1) != string(p2) {
			return "", usagef(cmd, "the passwords differ")
		}
		return string(p1), nil
	}
	line, err := bufio.NewReader(a.env.Stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", usagef(cmd, "no password: set XAT_PASSWORD or pass it on stdin")
	}
	return line, nil
}

func (a *app) memberCommand() *cobra.Command {
	return group("member", "Manage partner memberships", a.memberAddCommand(), a.memberRemoveCommand())
}

func (a *app) memberAddCommand() *cobra.Command {
	var schema, role string
	cmd := &cobra.Command{
		Use:   "add EMAIL --tenant SCHEMA --role admin|member",
		Short: "Make a user a member of a partner",
		Args:  args("EMAIL"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if role != postgres.RoleAdmin && role != postgres.RoleMember {
				return usagef(cmd, "--role must be admin or member, not %q", role)
			}
			if err := a.requireSchemaFlag(cmd, schema); err != nil {
				return err
			}
			return a.withMember(cmd, schema, args[0], func(ctx context.Context, store *postgres.Store, t *tenancy.Tenant, u *postgres.User) error {
				if err := store.AddMember(ctx, t.ID, u.ID, role); err != nil {
					return err
				}
				store.Audit(ctx, postgres.AuditEvent{Kind: postgres.AuditMemberAdded, TenantID: &t.ID, Actor: "cli",
					Detail: map[string]any{"member_id": u.ID, "role": role}})
				fmt.Fprintf(cmd.OutOrStdout(), "%s is now %s of %s\n", u.Email, role, t.Schema)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&schema, "tenant", "", "schema of the partner")
	cmd.Flags().StringVar(&role, "role", "member", "admin or member")
	return cmd
}

func (a *app) memberRemoveCommand() *cobra.Command {
	var schema string
	cmd := &cobra.Command{
		Use:   "remove EMAIL --tenant SCHEMA",
		Short: "Remove a user from a partner",
		Args:  args("EMAIL"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := a.requireSchemaFlag(cmd, schema); err != nil {
				return err
			}
			return a.withMember(cmd, schema, args[0], func(ctx context.Context, store *postgres.Store, t *tenancy.Tenant, u *postgres.User) error {
				if err := store.RemoveMember(ctx, t.ID, u.ID); err != nil {
					return fmt.Errorf("remove %s from %s: %w", u.Email, t.Schema, err)
				}
				store.Audit(ctx, postgres.AuditEvent{Kind: postgres.AuditMemberRemoved, TenantID: &t.ID, Actor: "cli",
					Detail: map[string]any{"member_id": u.ID}})
				fmt.Fprintf(cmd.OutOrStdout(), "%s is no longer a member of %s\n", u.Email, t.Schema)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&schema, "tenant", "", "schema of the partner")
	return cmd
}

func (a *app) requireSchemaFlag(cmd *cobra.Command, schema string) error {
	if schema == "" {
		return usagef(cmd, "--tenant is required")
	}
	if err := a.validSchema(schema); err != nil {
		return usageErr(cmd, err)
	}
	return nil
}

func (a *app) tokenCommand() *cobra.Command {
	return group("token", "Manage personal API tokens", a.tokenCreateCommand())
}

func (a *app) tokenCreateCommand() *cobra.Command {
	var schema, name string
	cmd := &cobra.Command{
		Use:   "create EMAIL --tenant SCHEMA [--name NAME]",
		Short: "Issue a personal API token bound to one partner; it is printed once",
		Args:  args("EMAIL"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := a.requireSchemaFlag(cmd, schema); err != nil {
				return err
			}
			ctx := cmd.Context()
			db, done, err := a.open(ctx)
			if err != nil {
				return err
			}
			defer done()
			plain, err := issueToken(ctx, db, postgres.New(db), args[0], schema, name)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), plain)
			return nil
		},
	}
	cmd.Flags().StringVar(&schema, "tenant", "", "schema of the partner the token is bound to")
	cmd.Flags().StringVar(&name, "name", "cli", "a name to recognise the token by")
	return cmd
}

// memberOf looks up the partner with this schema and the user with this
// email, for the membership commands.
func memberOf(ctx context.Context, db *tenancy.DB, store *postgres.Store, schema, email string) (*tenancy.Tenant, *postgres.User, error) {
	t, err := db.Tenant(ctx, schema)
	if err != nil {
		return nil, nil, fmt.Errorf("tenant %s: %w", schema, err)
	}
	u, _, err := store.UserByEmail(ctx, postgres.NormalizeEmail(email))
	if errors.Is(err, postgres.ErrNotFound) {
		return nil, nil, fmt.Errorf("no user with email %s", email)
	}
	if err != nil {
		return nil, nil, err
	}
	return t, u, nil
}

// withMember opens the database and runs fn with the partner of schema and
// the user of email, for the membership commands.
func (a *app) withMember(cmd *cobra.Command, schema, email string,
	fn func(ctx context.Context, store *postgres.Store, t *tenancy.Tenant, u *postgres.User) error) error {
	ctx := cmd.Context()
	db, done, err := a.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	store := postgres.New(db)
	t, u, err := memberOf(ctx, db, store, schema, email)
	if err != nil {
		return err
	}
	return fn(ctx, store, t, u)
}
