package console

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/headnode/headnode/hw/tty"
)

// Console states, as the status shows them.
const (
	// StateOpen: the device is open and being captured.
	StateOpen = "open"
	// StateNoDevice: no device yet (the node is off or still booting; its
	// USB gadget appears with it), or it went away.
	StateNoDevice = "no device"
	// StateFailed: the device is there and cannot be opened.
	StateFailed = "failed"
)

// IdleSeal is how long a partial line waits for its line end before it
// becomes a record of its own: a prompt ("login: ") is then in the log and
// in --follow without waiting for the next key.
const IdleSeal = time.Second

// retryOpen is how long a console waits before opening a device again
// after opening it failed.
const retryOpen = time.Second

// Console captures one node's console: it opens the device it is given
// whenever there is one, reads everything into its ring, and passes it on
// to the sessions attached to it, of which one at a time may write.
type Console struct {
	Name string
	log  *slog.Logger
	// notify is called, without mu, when the state changes.
	notify func()

	mu      sync.Mutex
	ring    *Ring
	files   *logFiles // nil: not kept across restarts
	saved   Pos       // the ring's records before this are on disk
	loadErr error
	saveErr bool // the last flush failed (said once in the log)

	device  Device // what to open; Path "" when there is none
	wake    chan struct{}
	port    *os.File
	state   string
	since   time.Time
	err     string
	bytes   int64
	powered *bool
	// seal is armed while an unfinished line waits for IdleSeal; nothing
	// ticks while a console is quiet.
	seal *time.Timer

	sessions map[*Session]struct{}
	writer   *Session
	sealed   chan struct{} // closed and replaced when records are sealed
}

// Device is what a console reads: a device node and its baud rate, and
// where it was found, for the status.
type Device struct {
	Path   string
	Baud   int
	Source string
}

func newConsole(name string, size int, dir string, log *slog.Logger) *Console {
	c := &Console{
		Name: name, log: log.With("node", name), notify: func() {},
		ring: NewRing(size), wake: make(chan struct{}, 1),
		state: StateNoDevice, sessions: map[*Session]struct{}{}, sealed: make(chan struct{}),
	}
	if dir != "" {
		c.files = newLogFiles(dir, name, size)
		recs, err := c.files.load()
		c.ring.Load(recs)
		c.saved = c.ring.End()
		if err != nil {
			c.loadErr = err
			c.log.Warn("console log from before the restart unreadable", "err", err)
		}
	}
	return c
}

// setDevice tells the console what to open; an open device that is no
// longer the one is closed.
func (c *Console) setDevice(d Device) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d == c.device {
		return
	}
	c.device = d
	if c.port != nil && c.port.Name() != d.Path {
		c.port.Close()
	}
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// run captures until ctx ends.
func (c *Console) run(ctx context.Context) {
	buf := make([]byte, 32<<10)
	for ctx.Err() == nil {
		c.mu.Lock()
		d := c.device
		c.mu.Unlock()
		if d.Path == "" {
			c.setState(StateNoDevice, "")
			select {
			case <-ctx.Done():
			case <-c.wake:
			}
			continue
		}
		f, err := tty.OpenSerial(d.Path, d.Baud)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				// Gone between finding and opening it (powered off).
				c.setState(StateNoDevice, "")
			} else {
				c.setState(StateFailed, err.Error())
			}
			select {
			case <-ctx.Done():
			case <-c.wake:
			case <-time.After(retryOpen):
			}
			continue
		}
		c.opened(f, d)
		openedAt := time.Now()
		stop := context.AfterFunc(ctx, func() { f.Close() })
		for {
			n, err := f.Read(buf)
			if n > 0 {
				c.output(buf[:n], time.Now())
			}
			if err != nil {
				break
			}
		}
		stop()
		f.Close()
		c.closed(ctx.Err() != nil)
		if time.Since(openedAt) < retryOpen {
			// A device that ends as soon as it is opened is not reopened
			// at full speed.
			select {
			case <-ctx.Done():
			case <-time.After(retryOpen):
			}
		}
	}
}

func (c *Console) setState(state, err string) {
	c.mu.Lock()
	changed := c.state != state || c.err != err
	if changed {
		c.state, c.err, c.since = state, err, time.Now()
	}
	path := c.device.Path
	c.mu.Unlock()
	if changed && state == StateFailed {
		c.log.Warn("console device cannot be opened", "device", path, "err", err)
	}
	if changed {
		c.notify()
	}
}

func (c *Console) opened(f *os.File, d Device) {
	defer c.notify()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.port = f
	c.state, c.err, c.since = StateOpen, "", time.Now()
	c.ring.Note("console "+d.Path+" opened", c.since)
	c.broadcastLocked()
	for s := range c.sessions {
		s.notice(fmt.Sprintf("%s's console %s is here", c.Name, d.Path))
	}
	c.log.Info("console opened", "device", d.Path, "source", d.Source)
}

func (c *Console) closed(stopping bool) {
	defer c.notify()
	c.mu.Lock()
	defer c.mu.Unlock()
	path := c.port.Name()
	c.port = nil
	if stopping {
		c.ring.Note("console closed: the daemon stopped", time.Now())
		c.broadcastLocked()
		return
	}
	c.state, c.err, c.since = StateNoDevice, "", time.Now()
	c.ring.Note("console "+path+" went away", c.since)
	c.broadcastLocked()
	for s := range c.sessions {
		s.notice(fmt.Sprintf("%s's console %s went away; waiting for it to come back (Ctrl-] detaches)", c.Name, path))
	}
	c.log.Info("console went away", "device", path)
}

// output takes what the device gave: into the ring, and to every session.
func (c *Console) output(p []byte, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.bytes += int64(len(p))
	before := c.ring.End()
	c.ring.Write(p, now)
	if c.ring.End() != before {
		c.broadcastLocked()
	}
	c.armSealLocked(now)
	for s := range c.sessions {
		s.data(p)
	}
}

// armSealLocked sets the seal timer for the unfinished line, if there is
// one and no timer is set.
func (c *Console) armSealLocked(now time.Time) {
	since, partial := c.ring.PartialSince()
	if !partial || c.seal != nil {
		return
	}
	c.seal = time.AfterFunc(max(since.Add(IdleSeal).Sub(now), 0)+time.Millisecond, func() { c.tick(time.Now()) })
}

// tick seals a line the node stopped writing in the middle of.
func (c *Console) tick(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seal = nil
	if c.ring.Idle(now.Add(-IdleSeal)) {
		c.ring.Seal()
		c.broadcastLocked()
	}
	c.armSealLocked(now) // a newer unfinished line
}

func (c *Console) broadcastLocked() {
	close(c.sealed)
	c.sealed = make(chan struct{})
}

// flushChunk is how much of the ring a flush copies at a time: the copy
// is made under the lock, the disk written without it, so capture never
// waits for the SD card, and a flush never needs a ring's worth of memory.
const flushChunk = 64 << 10

// flush writes the records sealed since the last flush to disk. What was
// evicted before it got to them is not written at all: one flush writes at
// most a ring.
func (c *Console) flush() error {
	if c.files == nil {
		return nil
	}
	var buf []byte
	for {
		c.mu.Lock()
		if c.saved >= c.ring.End() {
			c.mu.Unlock()
			break
		}
		if buf == nil {
			buf = make([]byte, flushChunk)
		}
		n, next := c.ring.Encoded(c.saved, buf)
		c.mu.Unlock()
		if n == 0 {
			break // only what was evicted (or a record over the chunk, which MaxLine rules out)
		}
		err := c.files.append(buf[:n])
		c.mu.Lock()
		if err != nil {
			first := !c.saveErr
			c.saveErr = true
			c.mu.Unlock()
			if first {
				return err
			}
			return nil // said already
		}
		if c.saveErr {
			c.log.Info("console log saved again", "path", c.files.path)
		}
		c.saveErr = false
		c.saved = next
		c.mu.Unlock()
	}
	return nil
}

// setPowered tells the console whether its node has power. Sessions end
// when the node is switched off: there is nothing left to talk to.
func (c *Console) setPowered(on *bool) {
	c.mu.Lock()
	was := c.powered
	c.powered = on
	ended := false
	if on != nil && !*on && (was == nil || *was) {
		for s := range c.sessions {
			s.end(c.Name + " was powered off; console session ended")
			ended = true
		}
	}
	c.mu.Unlock()
	if ended {
		c.notify()
	}
}

// Tail returns the last n records (all when n <= 0), the partial line
// last.
func (c *Console) Tail(n int) []Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ring.Tail(n)
}

// Follow calls fn with the sealed records from pos on, and then with
// each new batch, until ctx ends or fn returns an error. missed counts
// the bytes evicted before they could be passed on. A zero pos starts at
// the oldest record.
func (c *Console) Follow(ctx context.Context, fn func(recs []Record, missed int64) error) error {
	var pos Pos
	for {
		c.mu.Lock()
		recs, next, missed := c.ring.Since(pos)
		wait := c.sealed
		c.mu.Unlock()
		pos = next
		if len(recs) > 0 || missed > 0 {
			if err := fn(recs, missed); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wait:
		}
	}
}

// Status is a console's state as the status shows it.
type Status struct {
	Name    string
	Device  Device
	State   string
	Since   time.Time
	Error   string
	Bytes   int64
	Writer  bool
	Viewers int
	Size    int
}

// Status reports the console's state.
func (c *Console) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := Status{Name: c.Name, Device: c.device, State: c.state, Since: c.since, Error: c.err, Bytes: c.bytes, Writer: c.writer != nil, Size: c.ring.Size()}
	if c.state == StateOpen {
		st.Device.Path = c.port.Name()
	}
	st.Viewers = len(c.sessions)
	if c.writer != nil {
		st.Viewers--
	}
	if st.Error == "" && c.loadErr != nil {
		st.Error = "the log from before the restart is unreadable: " + c.loadErr.Error()
	}
	return st
}
