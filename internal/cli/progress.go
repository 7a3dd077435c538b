package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/term"
)

// progress keeps one line on a terminal up to date while tenants migrate:
// "migrating tenants 1234/5000 (12 failed)". Log records written meanwhile
// go through its logger, which clears the line before each record and
// redraws it after, so they scroll above it.
type progress struct {
	w io.Writer

	mu          sync.Mutex
	done, total int
	failed      int
	shown       bool
	drawn       time.Time
}

// newProgress returns a progress line on w, or nil when w is not a
// terminal: redirected output gets no progress at all.
func newProgress(w io.Writer) *progress {
	f, ok := w.(interface{ Fd() uintptr })
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return &progress{w: w}
}

// update is the tenancy.MigrateOptions.Progress callback. It redraws at
// most ten times a second, and always for the last tenant.
func (p *progress) update(done, failed, total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done, p.failed, p.total = done, failed, total
	if done < total && time.Since(p.drawn) < 100*time.Millisecond {
		return
	}
	p.draw()
}

// finish ends the line, leaving its last state on the screen. It does
// nothing on a nil *progress.
func (p *progress) finish() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown {
		fmt.Fprintln(p.w)
		p.shown = false
	}
}

func (p *progress) draw() {
	fmt.Fprintf(p.w, "\r\033[Kmigrating tenants %d/%d (%d failed)", p.done, p.total, p.failed)
	p.shown = true
	p.drawn = time.Now()
}

func (p *progress) clear() {
	if p.shown {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

// logger returns a logger that writes through next around the progress
// line.
func (p *progress) logger(next *slog.Logger) *slog.Logger {
	return slog.New(&progressHandler{next: next.Handler(), p: p})
}

type progressHandler struct {
	next slog.Handler
	p    *progress
}

func (h *progressHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn || h.next.Enabled(ctx, l)
}

func (h *progressHandler) Handle(ctx context.Context, r slog.Record) error {
	h.p.mu.Lock()
	defer h.p.mu.Unlock()
	if !h.next.Enabled(ctx, r.Level) {
		return nil
	}

	shown := h.p.shown
	h.p.clear()
	err := h.next.Handle(ctx, r)
	if shown {
		h.p.draw()
	}
	return err
}

func (h *progressHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &progressHandler{next: h.next.WithAttrs(attrs), p: h.p}
}

func (h *progressHandler) WithGroup(name string) slog.Handler {
	return &progressHandler{next: h.next.WithGroup(name), p: h.p}
}
