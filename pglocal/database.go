package pglocal

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ErrInvalidDatabaseName is returned, wrapped with the name, for a database
// name that is not a lowercase SQL identifier of at most 63 bytes.
var ErrInvalidDatabaseName = errors.New("invalid database name")

var databaseNamePattern = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

const (
	databaseExistsSQL = `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`

	// SQLSTATEs that CREATE DATABASE meets when callers race: the name
	// taken between check and create, caught either by the catalog lookup
	// or by the unique index, or the template briefly in use.
	codeDuplicateDatabase = "42P04"
	codeUniqueViolation   = "23505"
	codeObjectInUse       = "55006"
)

// CreateDatabase creates the database name unless it exists. The name must
// be a lowercase identifier ([a-z_][a-z0-9_]*, at most 63 bytes), otherwise
// the error wraps ErrInvalidDatabaseName. Concurrent calls for the same name
// are safe.
func (c *Cluster) CreateDatabase(ctx context.Context, name string) error {
	return createDatabase(ctx, c.ConnString("postgres"), name)
}

func validateDatabaseName(name string) error {
	if !databaseNamePattern.MatchString(name) {
		return fmt.Errorf("%w: %q: want a lowercase identifier of at most 63 bytes", ErrInvalidDatabaseName, name)
	}
	return nil
}

// createDatabase creates name on the server connString reaches.
func createDatabase(ctx context.Context, connString, name string) error {
	if err := validateDatabaseName(name); err != nil {
		return err
	}

	conn, err := pgx.Connect(ctx, connString)
	if err != nil {
		return fmt.Errorf("connect to create database %s: %w", name, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))

	var exists bool
	if err := conn.QueryRow(ctx, databaseExistsSQL, name).Scan(&exists); err != nil {
		return fmt.Errorf("check database %s: %w", name, err)
	}
	if exists {
		return nil
	}

	create := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize()
	for attempt := 1; ; attempt++ {
		_, err = conn.Exec(ctx, create)

		// Another caller may create the same database between our check and
		// our create, or hold the template open for a moment.
		var pgErr *pgconn.PgError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &pgErr) && (pgErr.Code == codeDuplicateDatabase || pgErr.Code == codeUniqueViolation):
			return nil
		case errors.As(err, &pgErr) && pgErr.Code == codeObjectInUse && attempt < 5:
			select {
			case <-ctx.Done():
				return fmt.Errorf("create database %s: %w", name, ctx.Err())
			case <-time.After(time.Duration(attempt) * 100 * time.Millisecond):
			}
		default:
			return fmt.Errorf("create database %s: %w", name, err)
		}
	}
}

// dropDatabase drops name on the server connString reaches, disconnecting
// anyone still using it.
func dropDatabase(ctx context.Context, connString, name string) error {
	if err := validateDatabaseName(name); err != nil {
		return err
	}

	conn, err := pgx.Connect(ctx, connString)
	if err != nil {
		return fmt.Errorf("connect to drop database %s: %w", name, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))

	drop := "DROP DATABASE IF EXISTS " + pgx.Identifier{name}.Sanitize() + " WITH (FORCE)"
	if _, err := conn.Exec(ctx, drop); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}
