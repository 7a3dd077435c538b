// Command xat runs and administers the XAT backend. See internal/cli for
// the commands and internal/config for the settings.
package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/xatlabs/xat/internal/cli"
	"github.com/xatlabs/xat/internal/config"
)

func main() {
	// The first SIGINT or SIGTERM cancels the running command, which then
	// stops cleanly; a local cluster it started is stopped too.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)

	code := cli.Run(ctx, os.Args[1:], cli.Env{
		Stdin:     os.Stdin,
		Stdout:    os.Stdout,
		Stderr:    os.Stderr,
		LookupEnv: os.LookupEnv,
		NewLogger: func(cfg config.Config) *slog.Logger { return cfg.NewLogger(os.Stderr) },
	})
	stop()
	os.Exit(code)
}
