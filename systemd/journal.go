package systemd

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
)

// NewLogger returns a logger writing text lines to w. Under systemd
// (JOURNAL_STREAM set) each line starts with an sd-daemon priority prefix
// such as "<4>", so journald stores warnings as warnings, and the time is
// left out because journald stamps lines itself.
func NewLogger(w io.Writer, level slog.Leveler) *slog.Logger {
	journal := os.Getenv("JOURNAL_STREAM") != ""
	return slog.New(newPriorityHandler(w, level, journal))
}

type priorityHandler struct {
	mu      *sync.Mutex
	out     io.Writer
	buf     *bytes.Buffer
	inner   slog.Handler
	journal bool
}

func newPriorityHandler(w io.Writer, level slog.Leveler, journal bool) *priorityHandler {
	buf := &bytes.Buffer{}
	opts := &slog.HandlerOptions{Level: level}
	if journal {
		opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}
	}
	return &priorityHandler{mu: &sync.Mutex{}, out: w, buf: buf, inner: slog.NewTextHandler(buf, opts), journal: journal}
}

// priority maps slog levels to syslog priorities (sd-daemon(3)).
func priority(l slog.Level) int {
	switch {
	case l >= slog.LevelError:
		return 3
	case l >= slog.LevelWarn:
		return 4
	case l >= slog.LevelInfo:
		return 6
	default:
		return 7
	}
}

func (h *priorityHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h *priorityHandler) Handle(ctx context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.buf.Reset()
	if h.journal {
		fmt.Fprintf(h.buf, "<%d>", priority(r.Level))
	}
	if err := h.inner.Handle(ctx, r); err != nil {
		return err
	}
	_, err := h.out.Write(h.buf.Bytes())
	return err
}

func (h *priorityHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.inner = h.inner.WithAttrs(attrs)
	return &c
}

func (h *priorityHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.inner = h.inner.WithGroup(name)
	return &c
}
