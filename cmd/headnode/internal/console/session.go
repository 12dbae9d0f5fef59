package console

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
)

// Attach modes.
const (
	// ModeWrite attaches as the writer, if no one else is.
	ModeWrite = "write"
	// ModeTake attaches as the writer, ending the writer's session.
	ModeTake = "take"
	// ModeRead attaches to watch.
	ModeRead = "read"
)

// Limits on sessions, so that no client can make the daemon hold more
// than a known amount for it.
const (
	// MaxSessions per console, the writer among them.
	MaxSessions = 8
	// QueueBytes is how much output a session holds for a client that is
	// slower than its node; beyond it output is dropped for that client
	// alone (and it is told how much), never held up for the others. A
	// session has two such buffers, one filling while the other is sent,
	// made once: a flood costs no allocation per read.
	QueueBytes = 128 << 10
	maxNotices = 32
)

// ErrWriterBusy is returned by Attach in ModeWrite while another session
// writes.
var ErrWriterBusy = errors.New("another session is writing")

// ErrTooMany is returned by Attach when the console has MaxSessions.
var ErrTooMany = fmt.Errorf("the console already has %d sessions", MaxSessions)

// BusyError says who writes to a console already.
type BusyError struct {
	Node  string
	Since time.Time
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("%s's console already has a writer (attached %s ago): watch with --read-only, or take it over with --take", e.Node, time.Since(e.Since).Round(time.Second))
}

func (e *BusyError) Unwrap() error { return ErrWriterBusy }

// Frame kinds a session yields, those of the attach protocol.
const (
	FrameData   = api.FrameData   // output of the node
	FrameNotice = api.FrameNotice // a line from the daemon for the user
	FrameEnd    = api.FrameEnd    // the session is over; the payload says why
)

// Frame is one piece of what a session passes to its client.
type Frame struct {
	Kind byte
	Data []byte
}

// Session is one client attached to a console.
type Session struct {
	c      *Console
	Writer bool
	Since  time.Time

	// Guarded by c.mu. Data frames alias buf; out and outFrames were
	// handed to the client's writer by the last Next.
	frames    []Frame
	buf       []byte
	out       []byte
	outFrames []Frame
	notices   int // notice frames queued
	dropped   int64
	ended     bool
	wake      chan struct{}
}

// Attach adds a session in mode.
func (c *Console) Attach(mode string) (*Session, error) {
	defer c.notify()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.sessions) >= MaxSessions {
		return nil, ErrTooMany
	}
	s := &Session{c: c, Since: time.Now(), wake: make(chan struct{}, 1)}
	switch mode {
	case ModeWrite:
		if c.writer != nil {
			return nil, &BusyError{Node: c.Name, Since: c.writer.Since}
		}
		s.Writer = true
	case ModeTake:
		if c.writer != nil {
			c.writer.end("another session took over writing to " + c.Name + "'s console")
		}
		s.Writer = true
	case ModeRead:
	default:
		return nil, fmt.Errorf("attach mode %q: use %q, %q or %q", mode, ModeWrite, ModeTake, ModeRead)
	}
	if s.Writer {
		c.writer = s
	}
	c.sessions[s] = struct{}{}
	if c.port == nil {
		s.notice(fmt.Sprintf("%s's console has no device right now (is the node powered on?); output shows once it appears", c.Name))
	}
	return s, nil
}

// Device is the device the console has open, or "".
func (s *Session) Device() string {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	if s.c.port == nil {
		return ""
	}
	return s.c.port.Name()
}

// Close detaches the session.
func (s *Session) Close() {
	defer s.c.notify()
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	s.detachLocked()
}

func (s *Session) detachLocked() {
	delete(s.c.sessions, s)
	if s.c.writer == s {
		s.c.writer = nil
	}
}

func (s *Session) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// data queues output (c.mu held).
func (s *Session) data(p []byte) {
	if s.ended {
		return
	}
	if len(s.buf)+len(p) > QueueBytes {
		s.dropped += int64(len(p))
		return
	}
	if cap(s.buf) == 0 {
		s.buf = make([]byte, 0, QueueBytes)
	}
	if s.dropped > 0 {
		s.frames = append(s.frames, Frame{Kind: FrameNotice, Data: fmt.Appendf(nil, "%d bytes of output not shown: this terminal did not keep up", s.dropped)})
		s.notices++
		s.dropped = 0
	}
	// Output joins the data frame before it, so a client that reads
	// seldom costs one frame, not one per read of the device. buf never
	// grows past its capacity, so the frames' slices of it stay valid.
	start := len(s.buf)
	s.buf = append(s.buf, p...)
	if n := len(s.frames); n > 0 && s.frames[n-1].Kind == FrameData {
		f := &s.frames[n-1]
		f.Data = f.Data[:len(f.Data)+len(p)]
	} else {
		s.frames = append(s.frames, Frame{Kind: FrameData, Data: s.buf[start:]})
	}
	s.signal()
}

// notice queues a line for the user (c.mu held).
func (s *Session) notice(text string) {
	if s.ended || s.notices >= maxNotices {
		return
	}
	s.notices++
	s.frames = append(s.frames, Frame{Kind: FrameNotice, Data: []byte(text)})
	s.signal()
}

// end ends the session with a reason (c.mu held): the client gets what
// was queued, then the reason.
func (s *Session) end(reason string) {
	if s.ended {
		return
	}
	s.frames = append(s.frames, Frame{Kind: FrameEnd, Data: []byte(reason)})
	s.ended = true
	s.detachLocked()
	s.signal()
}

// End ends the session from outside (the daemon stops).
func (s *Session) End(reason string) {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	s.end(reason)
}

// Next returns the frames queued for the client, waiting for some; after
// a FrameEnd there are no more. They are valid until the next call.
func (s *Session) Next(ctx context.Context) ([]Frame, error) {
	for {
		s.c.mu.Lock()
		if len(s.frames) > 0 {
			frames, buf := s.frames, s.buf
			s.frames, s.buf = s.outFrames[:0], s.out[:0]
			s.outFrames, s.out = frames, buf
			s.notices = 0
			s.c.mu.Unlock()
			return frames, nil
		}
		s.c.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.wake:
		}
	}
}

// writeTimeout bounds a write to the device: a console that takes no
// input (flow control stuck) is reported rather than waited for.
const writeTimeout = 5 * time.Second

// Write sends what the user typed to the node.
func (s *Session) Write(p []byte) error {
	s.c.mu.Lock()
	if !s.Writer || s.c.writer != s {
		s.c.mu.Unlock()
		return errors.New("this session is read-only: what you type is not sent")
	}
	port := s.c.port
	s.c.mu.Unlock()
	if port == nil {
		return fmt.Errorf("%s's console has no device right now; what you typed was not sent", s.c.Name)
	}
	port.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := port.Write(p)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("%s's console took no input for %s; what you typed was not sent", s.c.Name, writeTimeout)
	}
	if err != nil {
		return fmt.Errorf("%s's console: %v; what you typed was not sent", s.c.Name, err)
	}
	return nil
}

// Notice shows the user a line.
func (s *Session) Notice(text string) {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	s.notice(text)
}
