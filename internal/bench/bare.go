package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// ServeBare runs the HTTP benchmark's reference server on a free loopback
// port, prints the address on stdout and serves until ctx ends. It is the
// least a Go API over PostgreSQL does per request: net/http routing, one
// query from a pgx pool of poolSize connections (pgbench -S's, prepared by
// pgx, on a random key of pgbench_accounts) and a small JSON answer. No
// tenant, credential, log line or metric: XAT's rate over this server's
// is the share that tenancy, authentication and observability leave.
func ServeBare(ctx context.Context, url string, poolSize int) error {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return err
	}
	cfg.MaxConns = int32(poolSize)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	var accounts int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM pgbench_accounts").Scan(&accounts); err != nil {
		return fmt.Errorf("bare server: %w", err)
	}

	type account struct {
		AID      int `json:"aid"`
		ABalance int `json:"abalance"`
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/collectors", func(w http.ResponseWriter, r *http.Request) {
		a := account{AID: 1 + rand.IntN(accounts)}
		err := pool.QueryRow(r.Context(), "SELECT abalance FROM pgbench_accounts WHERE aid = $1", a.AID).Scan(&a.ABalance)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(a)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr().String())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}
