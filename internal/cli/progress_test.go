package cli

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestProgressNotOnPipes(t *testing.T) {
	t.Parallel()
	require.Nil(t, newProgress(&bytes.Buffer{}))
	newProgress(&bytes.Buffer{}).finish() // a nil progress is safe to finish
}

func TestProgressLine(t *testing.T) {
	t.Parallel()
	var screen bytes.Buffer
	p := &progress{w: &screen}
	log := p.logger(slog.New(slog.NewTextHandler(&screen, &slog.HandlerOptions{Level: slog.LevelWarn})))

	p.update(1, 0, 3)
	log.With(slog.String("schema", "tenant_b")).Warn("Tenant migration failed")
	log.Info("Tenant migrated") // below the level: not shown
	p.update(3, 1, 3)
	p.finish()

	out := screen.String()
	require.True(t, strings.HasPrefix(out, "\r\033[Kmigrating tenants 1/3 (0 failed)\r\033[K"), out)
	require.Contains(t, out, `msg="Tenant migration failed" schema=tenant_b`+"\n")
	require.True(t, strings.HasSuffix(out, "\r\033[Kmigrating tenants 3/3 (1 failed)\n"), out)
	require.NotContains(t, out, "Tenant migrated")
}
