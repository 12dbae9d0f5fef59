package api

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Consoles reports the capture of the nodes' serial consoles.
type Consoles struct {
	// State is "capturing" or "off" ([console] enabled = false).
	State string `json:"state"`
	// BufferBytes is each node's ring.
	BufferBytes int           `json:"buffer_bytes,omitempty"`
	Nodes       []NodeConsole `json:"nodes,omitempty"`
	// Error is why consoles cannot be looked for on USB.
	Error string `json:"error,omitempty"`
}

// Console capture states.
const (
	ConsolesCapturing = "capturing"
	ConsolesOff       = "off"
)

// NodeConsole is one node's console.
type NodeConsole struct {
	Name string `json:"name"`
	// Device is the device node, when there is one; Source says how it
	// was found ("configured", "USB gadget of node 1 at 1-1.3", ...).
	Device string `json:"device,omitempty"`
	Source string `json:"source,omitempty"`
	// State is "open", "no device" or "failed".
	State string    `json:"state"`
	Since time.Time `json:"since,omitzero"`
	Error string    `json:"error,omitempty"`
	// Bytes counts what was captured since the daemon started.
	Bytes   int64 `json:"bytes"`
	Writer  bool  `json:"writer,omitempty"`
	Viewers int   `json:"viewers,omitempty"`
	// Attention is set while the node is not coming up (unreachable, or
	// booting for longer than half its boot grace): its last lines are
	// what to look at.
	Attention bool `json:"attention,omitempty"`
	// Lines are the last few lines.
	Lines []ConsoleLine `json:"lines,omitempty"`
}

// ConsoleLine is one line of a console's log, made safe to print: escape
// sequences removed, control characters and bytes that are not UTF-8
// written as \xNN.
type ConsoleLine struct {
	Time time.Time `json:"time"`
	Text string    `json:"text"`
	// Event marks the daemon's own notes (the device came or went).
	Event bool `json:"event,omitempty"`
	// Partial marks a line still being written.
	Partial bool `json:"partial,omitempty"`
	// Missed counts bytes of output that were pushed out of the ring
	// before a follower got them (a note of its own, with no text).
	Missed int64 `json:"missed,omitempty"`
}

// ConsoleLog is the answer to GET /v1/console/{node}/log.
type ConsoleLog struct {
	Node  string        `json:"node"`
	Lines []ConsoleLine `json:"lines"`
}

// Attach modes of POST /v1/console/{node}/attach?mode=...
const (
	AttachWrite = "write"
	AttachTake  = "take"
	AttachRead  = "read"
)

// ConsoleUpgrade is the protocol an attach switches the connection to.
const ConsoleUpgrade = "headnode-console"

// Frames on an attached console connection: a kind byte, a 4-byte
// big-endian length and the payload. The daemon sends FrameHello first
// (JSON ConsoleHello), then output, notices and finally FrameEnd with the
// reason; the client sends FrameData with what the user types.
const (
	FrameHello  = 'H'
	FrameData   = 'D'
	FrameNotice = 'N'
	FrameEnd    = 'E'
)

// MaxFrame bounds a frame's payload.
const MaxFrame = 1 << 20

// ConsoleHello opens an attached session.
type ConsoleHello struct {
	Node   string `json:"node"`
	Mode   string `json:"mode"`
	Device string `json:"device,omitempty"`
}

// WriteFrame writes one frame.
func WriteFrame(w io.Writer, kind byte, payload []byte) error {
	if len(payload) > MaxFrame {
		return fmt.Errorf("frame of %d bytes is over the limit of %d", len(payload), MaxFrame)
	}
	var h [5]byte
	h[0] = kind
	binary.BigEndian.PutUint32(h[1:], uint32(len(payload)))
	if _, err := w.Write(h[:]); err != nil {
		return err
	}
	_, err := w.Write(payload)
	return err
}

// ReadFrame reads one frame of at most limit bytes.
func ReadFrame(r io.Reader, limit int) (kind byte, payload []byte, err error) {
	var h [5]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(h[1:])
	if int64(n) > int64(limit) {
		return 0, nil, fmt.Errorf("frame of %d bytes is over the limit of %d", n, limit)
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, err
	}
	return h[0], payload, nil
}

// ConsoleLog fetches node's log: the last tail lines, all when tail <= 0.
func (c *Client) ConsoleLog(ctx context.Context, node string, tail int) (*ConsoleLog, error) {
	var out ConsoleLog
	path := "/v1/console/" + url.PathEscape(node) + "/log"
	if tail > 0 {
		path += "?tail=" + strconv.Itoa(tail)
	}
	if err := c.Do(ctx, http.MethodGet, path, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ConsoleFollow streams node's log to fn: what is kept, then each line as
// it is written, until ctx ends, fn returns false or the daemon ends the
// stream.
func (c *Client) ConsoleFollow(ctx context.Context, node string, fn func(ConsoleLine) bool) error {
	resp, err := c.get(ctx, "/v1/console/"+url.PathEscape(node)+"/follow")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var l ConsoleLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return err
		}
		if !fn(l) {
			return nil
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return err
	}
	return ctx.Err()
}

// get starts a GET whose body the caller reads, turning an error answer
// into a *RequestError.
func (c *Client) get(ctx context.Context, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://headnode"+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, c.dialError(err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, errorAnswer(resp)
	}
	return resp, nil
}

func errorAnswer(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e Error
	if json.Unmarshal(b, &e) != nil || e.Error == "" {
		e.Error = fmt.Sprintf("daemon answered %s", resp.Status)
	}
	return &RequestError{Status: resp.StatusCode, Msg: e.Error}
}

// ConsoleConn is an attached console session.
type ConsoleConn struct {
	Hello ConsoleHello
	rw    io.ReadWriteCloser
	br    *bufio.Reader
}

// ConsoleAttach attaches to node's console in mode (AttachWrite,
// AttachTake or AttachRead).
func (c *Client) ConsoleAttach(ctx context.Context, node, mode string) (*ConsoleConn, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://headnode/v1/console/"+url.PathEscape(node)+"/attach?mode="+url.QueryEscape(mode), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", ConsoleUpgrade)
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, c.dialError(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer resp.Body.Close()
		return nil, errorAnswer(resp)
	}
	rw, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		resp.Body.Close()
		return nil, errors.New("the daemon's answer to attach is not a connection")
	}
	cc := &ConsoleConn{rw: rw, br: bufio.NewReader(rw)}
	kind, payload, err := ReadFrame(cc.br, MaxFrame)
	if err == nil && kind != FrameHello {
		err = fmt.Errorf("the daemon began the session with frame %q, not a hello", kind)
	}
	if err == nil {
		err = json.Unmarshal(payload, &cc.Hello)
	}
	if err != nil {
		rw.Close()
		return nil, fmt.Errorf("attaching to %s's console: %w", node, err)
	}
	return cc, nil
}

// Read returns the next frame from the daemon.
func (cc *ConsoleConn) Read() (kind byte, payload []byte, err error) {
	return ReadFrame(cc.br, MaxFrame)
}

// Send sends what the user typed.
func (cc *ConsoleConn) Send(p []byte) error { return WriteFrame(cc.rw, FrameData, p) }

// Close ends the session.
func (cc *ConsoleConn) Close() error { return cc.rw.Close() }
