package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
	"github.com/headnode/headnode/cmd/headnode/internal/config"
	"github.com/headnode/headnode/cmd/headnode/internal/console"
	"github.com/headnode/headnode/hw/wake"
	"github.com/headnode/headnode/power/nodename"
)

// The console part: it captures every node's serial console (package
// console) and serves it on the control socket only: the log, a stream
// of it, and interactive sessions. Its status is a snapshot taken once a
// second, so that a node flooding its console costs the loop one event a
// second, not one per read.

// consoleHandles are what control handlers need from the running part.
type consoleHandles struct {
	manager atomic.Pointer[console.Manager]
	// follows counts log streams, to bound them.
	follows atomic.Int32
}

// statusLines is how many of each console's last lines the status shows.
const statusLines = 10

// maxFollows bounds the log streams open at once.
const maxFollows = 32

func consoleChanged(old, new *config.Config) bool {
	return old.Console != new.Console || old.Daemon != new.Daemon || old.Hardware.Backend != new.Hardware.Backend ||
		!slices.Equal(consoleNodes(old), consoleNodes(new))
}

// consoleNodes is what [[nodes]] says about consoles.
func consoleNodes(cfg *config.Config) []string {
	var out []string
	for _, n := range cfg.Nodes {
		out = append(out, n.Name+"="+n.Console+"@"+strconv.Itoa(n.Baud))
	}
	return out
}

func (d *Daemon) startConsole(parent context.Context, cfg *config.Config) (stop func()) {
	ctx, cancel := context.WithCancel(parent)
	if !cfg.Console.Enabled {
		d.send(ctx, func(st *state) { st.status.Consoles = api.Consoles{State: api.ConsolesOff} })
		return cancel
	}
	k := cfg.Console
	o := console.Options{
		Size: k.BufferSize.Bytes, Dir: filepath.Join(cfg.Daemon.StateDir, "console"), PersistEvery: k.PersistInterval.Duration,
		Find: k.Find, USBRoot: d.hw.USBRoot(), Baud: k.Baud,
		Devices: map[string]console.Device{}, Off: map[string]bool{},
		Log: d.log.With("part", "console"),
	}
	for _, n := range cfg.Nodes {
		switch n.Console {
		case "":
		case config.ConsoleOff:
			o.Off[n.Name] = true
		default:
			baud := n.Baud
			if baud == 0 {
				baud = k.Baud
			}
			o.Devices[n.Name] = console.Device{Path: n.Console, Baud: baud, Source: "configured"}
		}
	}
	m := console.NewManager(o)
	d.console.manager.Store(m)
	var wg sync.WaitGroup
	wg.Go(func() { m.Run(ctx) })
	wg.Go(func() { d.followConsoles(ctx, cfg, m) })
	return func() {
		// Stopped for a reload, not with the daemon (which says it is
		// stopping before it stops its parts, or cancels them).
		if s, _ := d.current(); parent.Err() == nil && s.Health.State != api.HealthStopped {
			m.SetStopReason("the daemon reloaded its console settings; attach again")
		}
		cancel()
		wg.Wait()
		d.console.manager.Store(nil)
	}
}

// followConsoles tells the consoles which nodes have power (a session
// ends when its node is switched off) as the status changes, and puts the
// consoles into the status once a second while there are any (their new
// output, and time passing for Attention); with none, only on a change
// the manager signals, so that a head without consoles does no work for
// them on its beat.
func (d *Daemon) followConsoles(ctx context.Context, cfg *config.Config, m *console.Manager) {
	var tick *wake.Ticker
	defer func() {
		if tick != nil {
			tick.Stop()
		}
	}()
	var last []byte
	s, changed := d.current()
	for {
		powered := map[string]*bool{}
		for _, n := range s.Power.Nodes {
			powered[n.Name] = n.Powered
		}
		m.SetPowered(powered)
		consoles := m.Changed()
		var tickC <-chan time.Time
		switch have := len(m.Consoles()) > 0; {
		case have && tick == nil:
			tick = wake.NewTicker(time.Second)
		case !have && tick != nil:
			tick.Stop()
			tick = nil
		}
		if tick != nil {
			tickC = tick.C
		}
		if last != nil { // the first time round, the status gets them at once
			select {
			case <-ctx.Done():
				return
			case <-changed:
				s, changed = d.current()
				continue
			case <-consoles: // a device came or went, a session: show it now
			case <-tickC: // new output, and time passing for Attention
			}
		}
		s, changed = d.current()
		snap := consoleStatus(m, s, cfg, time.Now())
		b, _ := json.Marshal(snap)
		if string(b) == string(last) {
			continue
		}
		last = b
		d.send(ctx, func(st *state) { st.status.Consoles = snap })
	}
}

// consoleStatus is the status's view of the consoles.
func consoleStatus(m *console.Manager, s *api.Status, cfg *config.Config, now time.Time) api.Consoles {
	out := api.Consoles{State: api.ConsolesCapturing, BufferBytes: cfg.Console.BufferSize.Bytes, Error: m.ScanError()}
	attention := map[string]bool{}
	for _, n := range s.Power.Nodes {
		switch {
		case n.State == api.NodeUnreachable && n.Requested != "off":
			attention[n.Name] = true
		case n.State == api.NodeBooting && !n.Since.IsZero() && now.Sub(n.Since) > cfg.Power.BootGrace.Duration/2:
			attention[n.Name] = true
		}
	}
	for _, c := range m.Consoles() {
		st := c.Status()
		nc := api.NodeConsole{
			Name: st.Name, Device: st.Device.Path, Source: st.Device.Source, State: st.State, Since: st.Since, Error: st.Error,
			Bytes: st.Bytes, Writer: st.Writer, Viewers: st.Viewers, Attention: attention[st.Name],
			Lines: consoleLines(c.Tail(statusLines)),
		}
		out.Nodes = append(out.Nodes, nc)
	}
	return out
}

func consoleLines(recs []console.Record) []api.ConsoleLine {
	out := make([]api.ConsoleLine, 0, len(recs))
	for _, r := range recs {
		out = append(out, consoleLine(r))
	}
	return out
}

func consoleLine(r console.Record) api.ConsoleLine {
	return api.ConsoleLine{Time: r.Time, Text: console.Text(r.Data), Event: r.Event, Partial: r.Partial}
}

// consoleRoutes are the console routes (control socket only: a session
// can type into a node's root shell).
func (d *Daemon) consoleRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/console/{node}/log", d.handleConsoleLog)
	mux.HandleFunc("GET /v1/console/{node}/follow", d.handleConsoleFollow)
	mux.HandleFunc("POST /v1/console/{node}/attach", d.handleConsoleAttach)
}

// consoleFor finds the request's console, or answers why there is none.
func (d *Daemon) consoleFor(w http.ResponseWriter, r *http.Request) *console.Console {
	node := r.PathValue("node")
	if _, err := nodename.Parse(node); err != nil {
		api.ReplyError(w, http.StatusBadRequest, err)
		return nil
	}
	m := d.console.manager.Load()
	if m == nil {
		api.ReplyError(w, http.StatusServiceUnavailable, errors.New("console capture is off ([console] enabled = false) or not running (see `headnode status`)"))
		return nil
	}
	c := m.Console(node)
	if c == nil {
		api.ReplyError(w, http.StatusNotFound, fmt.Errorf("%s has no console: none was found on USB, and [[nodes]] names no console device for it", node))
		return nil
	}
	return c
}

func (d *Daemon) handleConsoleLog(w http.ResponseWriter, r *http.Request) {
	tail := 0
	if t := r.URL.Query().Get("tail"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 {
			api.ReplyError(w, http.StatusBadRequest, fmt.Errorf("tail %q is not a number of lines (0 or more; 0 is all)", t))
			return
		}
		tail = n
	}
	c := d.consoleFor(w, r)
	if c == nil {
		return
	}
	// An api.ConsoleLog, written a line at a time: the text of a ring
	// of binary garbage is four times its size, and is never all in
	// memory at once.
	recs := c.Tail(tail)
	w.Header().Set("Content-Type", "application/json")
	bw := bufio.NewWriterSize(w, 32<<10)
	node, _ := json.Marshal(c.Name)
	fmt.Fprintf(bw, `{"node":%s,"lines":[`, node)
	for i, rec := range recs {
		if i > 0 {
			bw.WriteByte(',')
		}
		b, _ := json.Marshal(consoleLine(rec))
		bw.Write(b)
		recs[i] = console.Record{}
	}
	bw.WriteString("]}\n")
	bw.Flush()
}

// handleConsoleFollow streams the log as JSON lines: what is kept, then
// each record as it is sealed.
func (d *Daemon) handleConsoleFollow(w http.ResponseWriter, r *http.Request) {
	c := d.consoleFor(w, r)
	if c == nil {
		return
	}
	if d.console.follows.Add(1) > maxFollows {
		d.console.follows.Add(-1)
		api.ReplyError(w, http.StatusServiceUnavailable, fmt.Errorf("%d console logs are already being followed; try again later", maxFollows))
		return
	}
	defer d.console.follows.Add(-1)
	// The stream ends with the part (a reload, the daemon stopping).
	m := d.console.manager.Load()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		for ctx.Err() == nil && d.console.manager.Load() == m {
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
		cancel()
	}()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	enc := json.NewEncoder(w)
	c.Follow(ctx, func(recs []console.Record, missed int64) error {
		rc.SetWriteDeadline(time.Now().Add(time.Minute))
		if missed > 0 {
			if err := enc.Encode(api.ConsoleLine{Time: time.Now(), Event: true, Missed: missed}); err != nil {
				return err
			}
		}
		for _, rec := range recs {
			if err := enc.Encode(consoleLine(rec)); err != nil {
				return err
			}
		}
		return rc.Flush()
	})
}

// Input from an attached client is read in frames of at most this.
const maxInputFrame = 64 << 10

// handleConsoleAttach switches the connection to the console protocol
// (api.FrameHello ...) and runs the session on it.
func (d *Daemon) handleConsoleAttach(w http.ResponseWriter, r *http.Request) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), api.ConsoleUpgrade) {
		api.ReplyError(w, http.StatusBadRequest, fmt.Errorf("attach switches protocols: send Connection: Upgrade and Upgrade: %s (`headnode console pN` does)", api.ConsoleUpgrade))
		return
	}
	mode := r.URL.Query().Get("mode")
	if mode == "" {
		mode = api.AttachWrite
	}
	c := d.consoleFor(w, r)
	if c == nil {
		return
	}
	s, err := c.Attach(mode)
	var busy *console.BusyError
	switch {
	case errors.As(err, &busy):
		api.ReplyError(w, http.StatusConflict, err)
		return
	case errors.Is(err, console.ErrTooMany):
		api.ReplyError(w, http.StatusServiceUnavailable, fmt.Errorf("%s: %w", c.Name, err))
		return
	case err != nil:
		api.ReplyError(w, http.StatusBadRequest, err)
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		s.Close()
		api.ReplyError(w, http.StatusInternalServerError, err)
		return
	}
	defer conn.Close()
	defer s.Close()
	conn.SetDeadline(time.Time{})
	fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: %s\r\n\r\n", api.ConsoleUpgrade)
	hello, _ := json.Marshal(api.ConsoleHello{Node: c.Name, Mode: map[bool]string{true: api.AttachWrite, false: api.AttachRead}[s.Writer], Device: s.Device()})
	if api.WriteFrame(brw, api.FrameHello, hello) != nil || brw.Flush() != nil {
		return
	}
	d.log.Info("console session attached", "node", c.Name, "writer", s.Writer)
	defer d.log.Info("console session detached", "node", c.Name, "writer", s.Writer)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		defer cancel()
		pumpInput(brw.Reader, s)
	}()
	pumpOutput(ctx, conn, s)
}

// pumpInput passes what the client types to the console until the client
// goes.
func pumpInput(r *bufio.Reader, s *console.Session) {
	warned := false
	for {
		kind, p, err := api.ReadFrame(r, maxInputFrame)
		if err != nil {
			return
		}
		if kind != api.FrameData {
			continue
		}
		if err := s.Write(p); err != nil && (!warned || s.Writer) {
			// A read-only session is told once; a writer each time input
			// is lost.
			s.Notice(err.Error())
			warned = true
		}
	}
}

// pumpOutput passes the session's frames to the client until the session
// ends or the client goes. A client that stops reading for a minute is
// dropped.
func pumpOutput(ctx context.Context, conn net.Conn, s *console.Session) {
	bw := bufio.NewWriterSize(conn, 32<<10)
	for {
		frames, err := s.Next(ctx)
		if err != nil {
			return
		}
		conn.SetWriteDeadline(time.Now().Add(time.Minute))
		for _, f := range frames {
			if api.WriteFrame(bw, f.Kind, f.Data) != nil {
				return
			}
			if f.Kind == console.FrameEnd {
				bw.Flush()
				return
			}
		}
		if bw.Flush() != nil {
			return
		}
	}
}
