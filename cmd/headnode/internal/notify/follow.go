package notify

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/google/renameio/v2"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
)

// Options configures Follow.
type Options struct {
	Head   string
	Settle time.Duration
	// MemoryFile keeps what was told, and what was not delivered yet,
	// across restarts ("" keeps nothing).
	MemoryFile string
	// Senders, and the webhook URL of each (the key of its undelivered
	// events in MemoryFile).
	Senders []*Sender
	URLs    []string
	Log     *slog.Logger
}

// Follow turns the published statuses into events for the senders until
// ctx ends. current returns the latest status and a channel closed when
// there is a newer one (the daemon's watch); Follow only ever waits on it,
// so it cannot hold the daemon up, and hands events to the senders without
// blocking.
func Follow(ctx context.Context, current func() (*api.Status, <-chan struct{}), o Options) {
	mem, err := loadMemory(o.MemoryFile)
	if err != nil {
		o.Log.Warn("notifications: cannot read what was told before; starting afresh", "file", o.MemoryFile, "err", err)
	}
	// What the last run could not deliver goes first.
	for i, s := range o.Senders {
		for _, ev := range mem.Pending[o.URLs[i]] {
			s.Enqueue(ev)
		}
	}
	tr := NewTracker(o.Head, o.Settle, mem, time.Now())
	for {
		s, changed := current()
		send := tr.Observe(s, time.Now())
		var timer <-chan time.Time
		if due := tr.Due(); !due.IsZero() {
			timer = time.After(time.Until(due))
		}
		o.tell(send, tr)
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-timer:
			o.tell(tr.Tick(s.Health.Reasons, time.Now()), tr)
		}
	}
}

func (o Options) tell(evs []Event, tr *Tracker) {
	if len(evs) == 0 {
		return
	}
	for _, ev := range evs {
		o.Log.Info("notifying", "event", ev.Summary, "webhooks", len(o.Senders))
		for _, s := range o.Senders {
			s.Enqueue(ev)
		}
	}
	if err := saveMemory(o.MemoryFile, tr.Memory()); err != nil {
		o.Log.Warn("notifications: cannot keep what was told; a restart may tell it again", "file", o.MemoryFile, "err", err)
	}
}

// SaveUndelivered records, once Follow and every sender have returned, the
// events not delivered yet, for the next start to send.
func SaveUndelivered(o Options) error {
	mem, err := loadMemory(o.MemoryFile)
	if err != nil {
		return err
	}
	mem.Pending = map[string][]Event{}
	for i, s := range o.Senders {
		if p := s.Pending(); len(p) > 0 {
			mem.Pending[o.URLs[i]] = append(mem.Pending[o.URLs[i]], p...)
		}
	}
	if len(mem.Pending) == 0 {
		mem.Pending = nil
	}
	return saveMemory(o.MemoryFile, mem)
}

func loadMemory(path string) (Memory, error) {
	var m Memory
	if path == "" {
		return m, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return m, err
	}
	return m, json.Unmarshal(b, &m)
}

func saveMemory(path string, m Memory) error {
	if path == "" {
		return nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return renameio.WriteFile(path, append(b, '\n'), 0o600)
}
