package tenancy

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// RegistryChannel is the notification channel on which the registry
// triggers announce every change to public.tenants and public.domains.
const RegistryChannel = "tenancy_registry"

const (
	// listenCheck is how long the listener waits for a notification before
	// it pings its connection, so that a silently dead connection is found
	// in about this time rather than when TCP keepalive gives up.
	listenCheck = 30 * time.Second

	listenBackoffMin = 500 * time.Millisecond
	listenBackoffMax = 30 * time.Second
)

// Listen keeps the cache current across every process that serves the same
// registry. It holds a dedicated connection (not one from the pools) that
// listens on RegistryChannel and empties the cache on each notification,
// and once more as soon as it listens, for changes made before. When the
// connection is lost it empties the cache, logs a warning and reconnects
// with a growing, jittered delay (at most 30s), logging once per failed
// attempt; until it listens again the TTL alone bounds staleness.
//
// connString names the registry's database. It must reach PostgreSQL
// itself or a session-mode pooler: LISTEN does not work through PgBouncer
// in transaction mode. The connection's application_name defaults to
// Config.AppName + ":listener".
//
// Listen blocks until ctx ends and then returns nil; it returns an error
// at once only when connString cannot be parsed. Run it in its own
// goroutine.
func (rs *Resolver) Listen(ctx context.Context, connString string) error {
	cfg, err := pgx.ParseConfig(connString)
	if err != nil {
		return fmt.Errorf("registry listener: %w", err)
	}
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = rs.db.cfg.AppName + ":listener"
	}

	delay := listenBackoffMin
	for {
		listened, err := rs.listen(ctx, cfg)
		rs.listening.Store(false)
		rs.Invalidate()
		if ctx.Err() != nil {
			return nil
		}
		if listened {
			delay = listenBackoffMin
		}

		// Jitter spreads the reconnects of many instances after a restart.
		wait := delay/2 + rand.N(delay/2)
		rs.log.WarnContext(ctx, "Registry listener failed; resolver cache cleared",
			slog.String("error", err.Error()),
			slog.Duration("retry_in", wait))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		delay = min(2*delay, listenBackoffMax)
	}
}

// Listening reports whether Listen currently holds a listening connection,
// for readiness checks: while it does not, cached answers may be as old as
// the TTL.
func (rs *Resolver) Listening() bool { return rs.listening.Load() }

// listen runs one listening connection until it fails or ctx ends. It
// reports whether it got as far as listening.
func (rs *Resolver) listen(ctx context.Context, cfg *pgx.ConnConfig) (bool, error) {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return false, fmt.Errorf("connect: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		conn.Close(cctx)
	}()
	subs := rs.subscriptions()
	for _, ch := range append([]string{RegistryChannel}, mapKeys(subs)...) {
		if _, err := conn.Exec(ctx, "LISTEN "+quoteIdent(ch)); err != nil {
			return false, fmt.Errorf("listen %s: %w", ch, err)
		}
	}

	// Changes committed before LISTEN took effect notified someone else.
	rs.Invalidate()
	for _, fn := range subs {
		fn()
	}
	rs.listening.Store(true)
	rs.log.InfoContext(ctx, "Registry listener started", slog.String("channel", RegistryChannel))

	for {
		wctx, cancel := context.WithTimeout(ctx, listenCheck)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil && n.Channel != RegistryChannel:
			if fn := subs[n.Channel]; fn != nil {
				fn()
			}
		case err == nil:
			rs.Invalidate()
		case ctx.Err() != nil:
			return true, ctx.Err()
		case pgconn.Timeout(err):
			if err := ping(ctx, conn); err != nil {
				return true, fmt.Errorf("ping: %w", err)
			}
		default:
			return true, fmt.Errorf("wait for notification: %w", err)
		}
	}
}

func ping(ctx context.Context, conn *pgx.Conn) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return conn.Ping(ctx)
}

// Subscribe makes the listener also LISTEN on channel and call fn on each
// notification there, and whenever the listener (re)connects, since
// notifications may have been missed meanwhile. Applications use it to drop
// their own caches (credentials, say) across instances with the same
// connection. Subscribe before calling Listen; a later subscription takes
// effect at the next reconnection.
func (rs *Resolver) Subscribe(channel string, fn func()) {
	rs.subMu.Lock()
	defer rs.subMu.Unlock()
	if rs.subs == nil {
		rs.subs = make(map[string]func())
	}
	rs.subs[channel] = fn
}

func (rs *Resolver) subscriptions() map[string]func() {
	rs.subMu.Lock()
	defer rs.subMu.Unlock()
	out := make(map[string]func(), len(rs.subs))
	for k, v := range rs.subs {
		out[k] = v
	}
	return out
}

func mapKeys(m map[string]func()) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
