// Package pglocal runs a private PostgreSQL cluster on the local machine,
// built from the server programs already installed there. The xat command
// uses it when no DATABASE_URL is given, keeping a cluster in a data
// directory that survives restarts; test binaries use ForTests to get a
// throwaway cluster of their own.
//
// Start initialises the data directory on first use (superuser postgres,
// UTF8, trust authentication for the unix socket and 127.0.0.1 only), picks
// a free loopback port and records it in the data directory, and starts the
// server with pg_ctl. A later Start on the same directory keeps the port and
// the data, and reuses a server that is still running:
//
//	c, err := pglocal.Start(ctx, pglocal.Config{
//		DataDir: filepath.Join(workDir, "pgdata"),
//		Logger:  logger,
//	})
//	if err != nil {
//		return fmt.Errorf("start local postgresql: %w", err)
//	}
//	defer c.Stop(context.WithoutCancel(ctx))
//
//	if err := c.CreateDatabase(ctx, "xat"); err != nil {
//		return err
//	}
//	pool, err := pgxpool.New(ctx, c.ConnString("xat"))
//
// # Running as root
//
// PostgreSQL refuses to run as root. When the process is root, as in
// containers and CI, pglocal runs initdb, pg_ctl and postgres as the postgres
// account (or nobody when there is none) and hands the data directory to it.
// That account must be able to enter every parent of the data directory;
// pglocal checks this and fails with ErrDataDirUnreachable rather than
// loosening permissions, so a data directory under /root does not work.
//
// # Security
//
// Authentication is trust: any local user who can reach 127.0.0.1 can
// connect as superuser over TCP. The unix socket lives in the data directory
// (mode 0700), or in a private 0700 directory under os.TempDir when that
// path would be too long for a socket address. Use pglocal for development
// and tests, not on shared machines holding data that matters.
//
// # Why not embedded-postgres
//
// We tried github.com/fergusstrange/embedded-postgres v1.34.0 pointed at the
// installed binaries. Debian's layout can be made to fit, but little else
// does. It runs initdb as the calling user, so as root it fails outright
// with "cannot be run as root", and it has no way to switch accounts. It
// refuses to start when its port is in use instead of adopting a running
// server from the same data directory, so a cluster cannot outlive the
// process that started it. It decides whether to reuse a data directory by
// comparing PG_VERSION with its configured version and deletes the
// directory on a mismatch, and it empties its runtime directory on every
// start; both are dangerous for a directory holding real data. It also
// needs a fixed port, authenticates with a password over TCP through
// lib/pq rather than pgx, logs to an io.Writer rather than slog, and takes
// no context. The part we would use, driving initdb and pg_ctl, is a small
// amount of os/exec code, so pglocal does that itself and owns the parts
// that matter here: switching accounts as root, adopting a running server
// and clearing stale locks.
package pglocal
