// Package console captures the nodes' serial consoles: it finds each
// node's console device (a ClusterHAT or ClusterCTRL node's USB gadget,
// or a device named in the configuration), keeps what it prints from the
// moment it appears in a bounded ring per node, kept across daemon
// restarts in bounded space, and lets sessions attach to it: several
// watching, one writing at a time.
//
// Nothing in it waits for a client or for the disk while holding what
// capture needs: a client that reads slowly loses output of its own (and
// is told), the device is read at its own pace, and the log files are
// written in batches from copies.
package console

import (
	"cmp"
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/headnode/headnode/hw/usbtty"
	"github.com/headnode/headnode/hw/wake"
	"github.com/headnode/headnode/power/nodename"
)

// Options configures a Manager.
type Options struct {
	// Size is each console's ring, in bytes.
	Size int
	// Dir keeps the rings across restarts ("" does not).
	Dir string
	// PersistEvery is how often new records are written to Dir.
	PersistEvery time.Duration
	// Find looks for node consoles on USB under USBRoot (usbtty.List)
	// every Scan, opening them at Baud.
	Find    bool
	USBRoot string
	Baud    int
	Scan    time.Duration
	// Devices are consoles named in the configuration, by node; they
	// take the place of what Find would find for that node. Off lists
	// nodes whose console is not to be touched.
	Devices map[string]Device
	Off     map[string]bool
	Log     *slog.Logger
}

// Manager runs the consoles.
type Manager struct {
	o Options

	mu       sync.Mutex
	consoles map[string]*Console
	found    map[string]Device // by the last scan
	scanErr  string
	run      func(*Console) // starts a console's capture, once Run runs

	changeMu sync.Mutex
	changed  chan struct{} // closed and replaced when a console's state changes

	stopReason atomic.Pointer[string]
}

// SetStopReason is what sessions are told when Run ends (by default, that
// the daemon stopped).
func (m *Manager) SetStopReason(reason string) { m.stopReason.Store(&reason) }

// NewManager makes the consoles the configuration names and those whose
// logs are in Dir; Run captures.
func NewManager(o Options) *Manager {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Scan <= 0 {
		o.Scan = time.Second
	}
	if o.PersistEvery <= 0 {
		o.PersistEvery = time.Minute
	}
	m := &Manager{o: o, consoles: map[string]*Console{}, found: map[string]Device{}, changed: make(chan struct{})}
	for name := range o.Devices {
		m.console(name)
	}
	if o.Dir != "" {
		entries, _ := os.ReadDir(o.Dir)
		for _, e := range entries {
			name, ok := strings.CutSuffix(e.Name(), ".log")
			if _, err := nodename.Parse(name); ok && err == nil && !o.Off[name] {
				m.console(name)
			}
		}
	}
	return m
}

// console returns the named console, making it (m.mu held or before Run).
func (m *Manager) console(name string) *Console {
	c, ok := m.consoles[name]
	if !ok {
		c = newConsole(name, m.o.Size, m.o.Dir, m.o.Log)
		c.notify = m.notify
		m.consoles[name] = c
		m.notify()
		if m.run != nil {
			m.run(c)
		}
	}
	return c
}

// Run captures until ctx ends, then writes what is left to disk.
func (m *Manager) Run(ctx context.Context) {
	var wg sync.WaitGroup
	m.mu.Lock()
	m.run = func(c *Console) { wg.Go(func() { c.run(ctx) }) }
	for _, c := range m.consoles {
		m.run(c)
	}
	m.mu.Unlock()
	m.scan()

	scan := wake.NewTicker(m.o.Scan)
	defer scan.Stop()
	persist := wake.NewTicker(m.o.PersistEvery)
	defer persist.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			reason := "the headnode daemon stopped"
			if r := m.stopReason.Load(); r != nil {
				reason = *r
			}
			for _, c := range m.list() {
				c.mu.Lock()
				c.ring.Seal()
				for s := range c.sessions {
					s.end(reason)
				}
				c.mu.Unlock()
			}
			m.flush()
			return
		case <-scan.C:
			m.scan()
		case <-persist.C:
			m.flush()
		}
	}
}

// scan looks for node consoles and gives each console its device.
func (m *Manager) scan() {
	found := map[string]Device{}
	var scanErr string
	if m.o.Find {
		devs, err := usbtty.List(m.o.USBRoot)
		if err != nil {
			scanErr = err.Error()
		}
		found = discover(devs, m.o.Baud)
	}
	m.mu.Lock()
	errChanged := m.scanErr != scanErr
	m.found, m.scanErr = found, scanErr
	for name := range found {
		if !m.o.Off[name] {
			m.console(name)
		}
	}
	type assign struct {
		c *Console
		d Device
	}
	var todo []assign
	for name, c := range m.consoles {
		d, ok := m.o.Devices[name]
		if ok {
			// A configured device is opened when it exists.
			if _, err := os.Stat(d.Path); errors.Is(err, fs.ErrNotExist) {
				d.Path = ""
			}
		} else {
			d = found[name]
		}
		todo = append(todo, assign{c, d})
	}
	m.mu.Unlock()
	for _, a := range todo {
		a.c.setDevice(a.d)
	}
	if errChanged {
		m.notify() // the status shows it (ScanError)
	}
}

func (m *Manager) flush() {
	for _, c := range m.list() {
		if err := c.flush(); err != nil {
			m.o.Log.Warn("console log not saved", "node", c.Name, "dir", m.o.Dir, "err", err)
		}
	}
}

// list returns the consoles in node order.
func (m *Manager) list() []*Console {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*Console, 0, len(m.consoles))
	for _, c := range m.consoles {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b *Console) int {
		x, _ := nodename.Parse(a.Name)
		y, _ := nodename.Parse(b.Name)
		return cmp.Compare(x, y)
	})
	return out
}

// Consoles returns the consoles in node order.
func (m *Manager) Consoles() []*Console { return m.list() }

// Console returns node's console, or nil when it has none.
func (m *Manager) Console(node string) *Console {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.consoles[node]
}

// ScanError is why the last look for consoles on USB failed, or "".
func (m *Manager) ScanError() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.scanErr
}

// Changed returns a channel closed the next time a console changes state
// (its device comes or goes, a session attaches or ends, a console is
// found) or the look for consoles fails or recovers (ScanError); new
// output does not count.
func (m *Manager) Changed() <-chan struct{} {
	m.changeMu.Lock()
	defer m.changeMu.Unlock()
	return m.changed
}

func (m *Manager) notify() {
	m.changeMu.Lock()
	defer m.changeMu.Unlock()
	close(m.changed)
	m.changed = make(chan struct{})
}

// SetPowered tells the consoles which nodes have power (nil: unknown).
func (m *Manager) SetPowered(powered map[string]*bool) {
	for _, c := range m.list() {
		if p, ok := powered[c.Name]; ok {
			c.setPowered(p)
		}
	}
}
