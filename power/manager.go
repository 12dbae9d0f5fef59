package power

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/google/renameio/v2"

	"github.com/headnode/headnode/hw/wake"
	"github.com/headnode/headnode/power/board"
	"github.com/headnode/headnode/power/nodename"
)

// Boot policies: what happens to nodes after the power controller itself
// booted (the board came up reset). A daemon restart never applies one.
const (
	// BootOff leaves the nodes as the board powered up: off, unless its
	// own power-on setting (ClusterHAT POS jumper, ClusterCTRL EEPROM)
	// says otherwise.
	BootOff = "off"
	// BootOn powers every node on, staggered.
	BootOn = "on"
	// BootRestore gives every node the power state last requested for
	// it (persisted in the state directory), powering on staggered.
	BootRestore = "restore"
)

// Options configures a Manager.
type Options struct {
	// Stagger is the least time between two power-ons (inrush).
	Stagger time.Duration
	// Boot is BootOff, BootOn or BootRestore.
	Boot string
	// StateFile keeps requested power states; "" keeps them in memory.
	StateFile string
	// ReadInterval is how often the boards are read back.
	ReadInterval time.Duration
	Log          *slog.Logger
	// Report receives the state after every change and every read. It is
	// called from the manager's goroutine and must not block for long.
	Report func(Report)
	// Fan is the head node's own fan (the official tool's FANGPIO),
	// driven high for on; nil without one.
	Fan Line
	// SysRoot is where the USB devices are listed (hw/machine.SysRoot),
	// for the nodes' USB paths; HATUSBPath is a ClusterHAT v1's hub
	// there (it cannot be found), "" when not known. PathSettle is how
	// long a ClusterHAT's hub is given to vanish or return when it has to
	// be switched to be told from other hubs (the official tool waits 1 s).
	SysRoot    string
	HATUSBPath string
	PathSettle time.Duration
}

// Line is a GPIO line (the head node's fan).
type Line interface {
	Name() string
	State() (output, high bool, err error)
	Drive(high bool) error
}

// Board states in a Report.
const (
	BoardOK      = "ok"
	BoardMissing = "missing" // does not answer
	BoardFailed  = "failed"  // bus or board broken
)

// Report is the power controller's state as read back.
type Report struct {
	Boards []BoardReport
	// Powered is read back per node (index 0 = p1); nil when its board
	// cannot be read.
	Powered []*bool
	// Requested is the last request per node: "on", "off" or "".
	Requested []string
	// Queued are nodes waiting for their staggered power-on, in order.
	Queued []int
	// BootApplied is when a boot policy was last applied, and to what.
	BootApplied time.Time
	BootNote    string
	Warnings    []string
	// Fan is the head node's fan read back from its line; nil without
	// one (FanError says why it could not be read).
	Fan      *bool
	FanError string
	// LEDs is the node LED state last asked for ("on", "off", "").
	LEDs string
}

// BoardReport is one board.
type BoardReport struct {
	Info             board.Info
	First, Nodes     int
	State            string
	Error            string
	Alert, Hub, LEDs *bool
	// Read is everything read back (write protection, USBBOOT lines,
	// fan, voltages, temperature, as the board has them).
	Read board.State
}

// Request is a control request:
//
//	on, off      Nodes (All when none was named: ALERT is lit meanwhile)
//	alert        On; Nodes limit it to their boards
//	leds, wp     On
//	hub          Hub: "on", "off" or "reset"
//	fan          On; Target "" (every fan), "c" (the head node's) or an order
//	act          On; Target "" (every board) or an order
//	usbboot      On, Nodes
//	paths        Nodes (none: all): the nodes' USB paths, in Result.Paths
//	setorder     Order to NewOrder
//	save         Order, Save
//	restart      Order: the ClusterCTRL's controller restarts
//	init         nothing: the boards are initialised as they are found
//
// Nodes are 1-based and validated by Do.
type Request struct {
	Op       string
	Nodes    []int
	All      bool
	On       bool
	Hub      string
	Target   string
	Order    int
	NewOrder int
	Save     board.Saving
}

// Result is what a request did: one line per thing changed, and for
// "paths" each node's USB path.
type Result struct {
	Changes []string
	Paths   map[int]string
}

// Manager owns the boards: it initialises them, applies the boot policy
// after a controller boot, carries out requests, staggers power-ons
// without blocking anyone, and reads the boards back. All hardware access
// happens on its goroutine (Run).
type Manager struct {
	c     *Cluster
	o     Options
	calls chan call

	// owned by Run
	boards      []boardRun
	requested   map[int]bool
	leds        *bool // node LEDs last asked for
	queue       []int
	lastOn      time.Time
	bootApplied time.Time
	bootNote    string
	warnings    []string
}

type boardRun struct {
	ready bool // Init done since the board last came up
	st    board.State
	err   error
	// alertHeld: ALERT was lit for a bulk sequence and goes off when the
	// board's part of it is done.
	alertHeld bool
	// restarted: the controller was told to restart; when it comes up
	// its own power-on state is what was asked for, not the boot policy.
	restarted bool
}

type call struct {
	req   Request
	reply chan result
}

type result struct {
	res Result
	err error
}

// NewManager returns a manager for c; Run starts it.
func NewManager(c *Cluster, o Options) *Manager {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.ReadInterval <= 0 {
		o.ReadInterval = time.Second
	}
	if o.Report == nil {
		o.Report = func(Report) {}
	}
	return &Manager{c: c, o: o, calls: make(chan call), boards: make([]boardRun, len(c.Boards())), requested: map[int]bool{}}
}

// ErrStopped is returned by Do when the manager is not running.
var ErrStopped = errors.New("node power control is stopped")

// Do carries out a request and returns what changed, one line per thing.
// A power-on of several nodes returns at once with the later ones queued.
// Invalid requests return an *InputError and change nothing.
func (m *Manager) Do(ctx context.Context, r Request) (Result, error) {
	c := call{req: r, reply: make(chan result, 1)}
	select {
	case m.calls <- c:
	case <-ctx.Done():
		return Result{}, ErrStopped
	}
	select {
	case res := <-c.reply:
		return res.res, res.err
	case <-ctx.Done():
		return Result{}, ErrStopped
	}
}

// Run runs the manager until ctx ends.
func (m *Manager) Run(ctx context.Context) {
	m.loadRequested()
	if m.leds != nil {
		for _, b := range m.c.Boards() {
			if lm, ok := b.(board.LEDMemory); ok {
				lm.RememberLEDs(*m.leds)
			}
		}
	}
	for i := range m.boards {
		m.readBoard(i)
	}
	m.report()
	read := time.NewTimer(wake.Until(m.o.ReadInterval))
	defer func() { read.Stop() }()
	for {
		var next *time.Timer
		var due <-chan time.Time
		if len(m.queue) > 0 {
			next = time.NewTimer(time.Until(m.lastOn.Add(m.o.Stagger)))
			due = next.C
		}
		select {
		case <-ctx.Done():
			if next != nil {
				next.Stop()
			}
			return
		case c := <-m.calls:
			res, err := m.handle(c.req)
			c.reply <- result{res, err}
		case <-due:
			m.powerOnNext()
			m.releaseAlerts()
		case <-read.C:
			for i := range m.boards {
				m.readBoard(i)
			}
			read = time.NewTimer(wake.Until(m.o.ReadInterval))
		}
		if next != nil {
			next.Stop()
		}
		m.report()
	}
}

// readBoard reads board i back; a board that is not initialised (first
// contact, came back after vanishing, or came up reset) is initialised,
// and the boot policy applied if its controller booted.
func (m *Manager) readBoard(i int) { m.readBoardOnce(i, true) }

func (m *Manager) readBoardOnce(i int, mayReinit bool) {
	b := m.c.Boards()[i]
	br := &m.boards[i]
	fresh := false
	if !br.ready {
		var err error
		if fresh, err = b.Init(); err != nil {
			m.boardError(i, err)
			return
		}
		br.ready = true
	}
	st, err := b.Read()
	if err != nil {
		m.boardError(i, err)
		return
	}
	if st.Reset && !fresh && mayReinit {
		m.o.Log.Warn("power controller came up reset (controller rebooted or lost power); initialising it", "board", b.Info().Model)
		br.ready = false
		m.readBoardOnce(i, false)
		return
	}
	if br.err != nil {
		m.o.Log.Info("power board answers again", "board", b.Info().Model)
	}
	br.st, br.err = st, nil
	switch {
	case fresh && br.restarted:
		// A restart by request: the board's own power-on state is now
		// what is asked of its nodes.
		br.restarted = false
		for k, on := range st.Powered {
			m.requested[m.c.First(i)+k] = on
		}
		if err := m.saveRequested(); err != nil {
			m.o.Log.Error("saving requested power states", "err", err)
		}
	case fresh:
		m.applyBoot(i)
	}
}

func (m *Manager) boardError(i int, err error) {
	br := &m.boards[i]
	if br.err == nil || br.err.Error() != err.Error() {
		m.o.Log.Error("power board unavailable", "board", m.c.Boards()[i].Info().Model, "err", err)
	}
	// Ask again from the start next time: it may come back reset.
	br.ready, br.err, br.st = false, err, board.State{}
}

// applyBoot applies the boot policy to board i's nodes.
func (m *Manager) applyBoot(i int) {
	b := m.c.Boards()[i]
	first := m.c.First(i)
	var on, off []int
	for n := first; n < first+b.Nodes(); n++ {
		req, known := m.requested[n]
		switch {
		case m.o.Boot == BootOn, m.o.Boot == BootRestore && known && req:
			on = append(on, n)
		case m.o.Boot == BootRestore && known && !req:
			off = append(off, n)
		}
	}
	m.bootApplied = time.Now()
	m.bootNote = fmt.Sprintf("%s booted: boot policy %q", b.Info().Model, m.o.Boot)
	if len(on) > 0 {
		m.bootNote += ", powering on " + names(on)
	}
	m.o.Log.Info("power controller booted; applying the boot policy", "board", b.Info().Model, "policy", m.o.Boot, "on", names(on), "off", names(off))
	for _, n := range off {
		if err := m.setPower(n, false); err != nil {
			m.o.Log.Error("boot policy: power off failed", "node", nodename.Name(n), "err", err)
		}
	}
	m.enqueue(on)
}

func names(ns []int) string {
	if len(ns) == 0 {
		return "none"
	}
	s := ""
	for i, n := range ns {
		if i > 0 {
			s += " "
		}
		s += nodename.Name(n)
	}
	return s
}

func (m *Manager) setPower(n int, on bool) error {
	i, local, _ := m.c.Locate(n)
	err := m.c.Boards()[i].SetPower(local, on)
	if err != nil {
		m.boardError(i, err)
		return err
	}
	m.readBoard(i)
	return nil
}

// powered reads node n's read-back power: known false when its board
// cannot be read.
func (m *Manager) powered(n int) (on, known bool) {
	i, local, _ := m.c.Locate(n)
	st := m.boards[i].st
	if m.boards[i].err != nil || len(st.Powered) < local {
		return false, false
	}
	return st.Powered[local-1], true
}

// enqueue queues nodes for staggered power-on, skipping those already on
// or queued; the first goes at once when the stagger allows.
func (m *Manager) enqueue(ns []int) {
	for _, n := range ns {
		if on, _ := m.powered(n); on || slices.Contains(m.queue, n) {
			continue
		}
		m.queue = append(m.queue, n)
	}
	if len(m.queue) > 0 && !time.Now().Before(m.lastOn.Add(m.o.Stagger)) {
		m.powerOnNext()
	}
}

func (m *Manager) powerOnNext() {
	if len(m.queue) == 0 {
		return
	}
	n := m.queue[0]
	m.queue = m.queue[1:]
	m.lastOn = time.Now()
	if err := m.setPower(n, true); err != nil {
		m.o.Log.Error("power on failed", "node", nodename.Name(n), "err", err)
		return
	}
	m.o.Log.Info("node powered on", "node", nodename.Name(n))
}

func (m *Manager) handle(r Request) (Result, error) {
	for _, n := range r.Nodes {
		if n < 1 || n > m.c.Nodes() {
			return Result{}, inputErrorf("unknown node %q: this board has %s", nodename.Name(n), m.c.Range())
		}
	}
	if len(m.c.Boards()) == 0 && !(r.Op == "fan" && m.o.Fan != nil && (r.Target == "" || r.Target == "c")) {
		return Result{}, inputErrorf("no board with node power control was found")
	}
	changes := func(ch []string, err error) (Result, error) { return Result{Changes: ch}, err }
	switch r.Op {
	case "on":
		ch, err := m.on(r.Nodes, r.All)
		return Result{Changes: ch}, errors.Join(err, m.saveRequested())
	case "off":
		return changes(m.off(r.Nodes, r.All))
	case "alert":
		return changes(m.alert(r.Nodes, r.On))
	case "leds":
		m.leds = board.Flag(r.On)
		ch, err := m.eachBoard("leds "+onOff(r.On), func(b board.Board) error { return b.SetLEDs(r.On) })
		return Result{Changes: ch}, errors.Join(err, m.saveRequested())
	case "hub":
		switch r.Hub {
		case "on", "off":
			return changes(m.eachBoard("hub "+r.Hub, func(b board.Board) error { return b.SetHub(r.Hub == "on") }))
		case "reset":
			return changes(m.eachBoard("hub reset", func(b board.Board) error { return b.ResetHub() }))
		}
		return Result{}, inputErrorf("unknown hub action %q: use on, off or reset", r.Hub)
	case "wp":
		return changes(m.eachBoard("write protection "+onOff(r.On), func(b board.Board) error {
			if w, ok := b.(board.WriteProtect); ok {
				return w.SetWP(r.On)
			}
			return board.Unsupported("%s has no EEPROM write protection to switch", b.Info().Model)
		}))
	case "fan":
		return changes(m.fan(r.Target, r.On))
	case "act":
		return changes(m.act(r.Target, r.On))
	case "usbboot":
		return changes(m.usbboot(r.Nodes, r.On))
	case "paths":
		return m.paths(r.Nodes)
	case "setorder":
		return changes(m.setOrder(r.Order, r.NewOrder))
	case "save":
		return changes(m.save(r.Order, r.Save))
	case "restart":
		return changes(m.restart(r.Order))
	case "init":
		return Result{Changes: []string{"boards initialised as they were found"}}, nil
	}
	return Result{}, inputErrorf("unknown power operation %q: use on, off, alert, hub, leds, wp, fan, act, usbboot, paths, setorder, save, restart or init", r.Op)
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func (m *Manager) on(ns []int, all bool) ([]string, error) {
	// Queued power-ons are told as from the request's arrival, which is
	// what the user counts from.
	start := time.Now()
	var changes []string
	var errs []error
	wasOn := map[int]bool{}
	for _, n := range ns {
		m.requested[n] = true
		wasOn[n], _ = m.powered(n)
	}
	if all {
		m.holdAlerts(ns)
	}
	m.enqueue(ns)
	m.releaseAlerts()
	for _, n := range ns {
		on, _ := m.powered(n)
		switch {
		case slices.Contains(m.queue, n):
			at := m.lastOn.Add(m.o.Stagger * time.Duration(slices.Index(m.queue, n)+1))
			changes = append(changes, fmt.Sprintf("%s: queued, powers on in %s", nodename.Name(n), at.Sub(start).Round(10*time.Millisecond)))
		case on && wasOn[n]:
			changes = append(changes, nodename.Name(n)+": already on")
		case on:
			changes = append(changes, nodename.Name(n)+": on")
		default:
			i, _, _ := m.c.Locate(n)
			if err := m.boards[i].err; err != nil {
				errs = append(errs, fmt.Errorf("%s: not switched on: %w", nodename.Name(n), err))
			} else {
				errs = append(errs, fmt.Errorf("%s: switched on but reads back off", nodename.Name(n)))
			}
		}
	}
	return changes, errors.Join(errs...)
}

func (m *Manager) off(ns []int, all bool) ([]string, error) {
	var changes []string
	var errs []error
	if all {
		m.holdAlerts(ns)
		defer m.releaseAlerts()
	}
	for _, n := range ns {
		m.requested[n] = false
		if i := slices.Index(m.queue, n); i >= 0 {
			m.queue = slices.Delete(m.queue, i, i+1)
			changes = append(changes, nodename.Name(n)+": queued power-on cancelled")
		}
		if on, known := m.powered(n); known && !on {
			changes = append(changes, nodename.Name(n)+": already off")
			continue
		}
		if err := m.setPower(n, false); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", nodename.Name(n), err))
			continue
		}
		changes = append(changes, nodename.Name(n)+": off")
	}
	if err := m.saveRequested(); err != nil {
		errs = append(errs, err)
	}
	return changes, errors.Join(errs...)
}

// eachBoard does f on every board that supports it, as the official tool
// does for alert/led on a HAT plus ClusterCTRL boards. When no board
// supports it, the request is refused as invalid.
func (m *Manager) eachBoard(what string, f func(board.Board) error) ([]string, error) {
	all := make([]int, len(m.c.Boards()))
	for i := range all {
		all[i] = i
	}
	changes, unsupported, errs := m.onBoards(all, what, f)
	if len(unsupported) == len(m.c.Boards()) {
		return nil, &InputError{Msg: unsupported[0].Error()}
	}
	return changes, errors.Join(errs...)
}

func (m *Manager) report() {
	r := Report{
		Powered:     make([]*bool, m.c.Nodes()),
		Requested:   make([]string, m.c.Nodes()),
		Queued:      slices.Clone(m.queue),
		BootApplied: m.bootApplied,
		BootNote:    m.bootNote,
		Warnings:    slices.Concat(m.c.Warnings, m.warnings),
	}
	for i, b := range m.c.Boards() {
		br := m.boards[i]
		rep := BoardReport{Info: b.Info(), First: m.c.First(i), Nodes: b.Nodes(), State: BoardOK, Alert: br.st.Alert, Hub: br.st.Hub, LEDs: br.st.LEDs, Read: br.st}
		if br.err != nil {
			rep.State, rep.Error = BoardFailed, br.err.Error()
			if board.IsMissing(br.err) {
				rep.State = BoardMissing
			}
		}
		r.Boards = append(r.Boards, rep)
	}
	for n := 1; n <= m.c.Nodes(); n++ {
		if on, known := m.powered(n); known {
			r.Powered[n-1] = board.Flag(on)
		}
		if req, ok := m.requested[n]; ok {
			r.Requested[n-1] = onOff(req)
		}
	}
	if m.leds != nil {
		r.LEDs = onOff(*m.leds)
	}
	if m.o.Fan != nil {
		if out, high, err := m.o.Fan.State(); err != nil {
			r.FanError = err.Error()
		} else {
			r.Fan = board.Flag(out && high)
		}
	}
	m.o.Report(r)
}

// requestedFile is the persisted form: node name -> "on" | "off", and the
// node LEDs last asked for.
type requestedFile struct {
	Requested map[string]string `json:"requested"`
	LEDs      string            `json:"leds,omitempty"`
}

func (m *Manager) loadRequested() {
	if m.o.StateFile == "" {
		return
	}
	b, err := os.ReadFile(m.o.StateFile)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	var f requestedFile
	if err == nil {
		err = json.Unmarshal(b, &f)
	}
	if err != nil {
		m.warnings = append(m.warnings, fmt.Sprintf("requested power states unreadable (%v); boot policy restore has nothing to restore", err))
		return
	}
	for name, v := range f.Requested {
		if n, err := nodename.Parse(name); err == nil {
			m.requested[n] = v == "on"
		}
	}
	if f.LEDs != "" {
		m.leds = board.Flag(f.LEDs == "on")
	}
}

// saveRequested writes the requested states atomically (a temporary file
// renamed over the old one), so a power cut leaves the old or the new.
func (m *Manager) saveRequested() error {
	if m.o.StateFile == "" {
		return nil
	}
	f := requestedFile{Requested: map[string]string{}}
	for n, on := range m.requested {
		f.Requested[nodename.Name(n)] = onOff(on)
	}
	if m.leds != nil {
		f.LEDs = onOff(*m.leds)
	}
	b, _ := json.MarshalIndent(f, "", "  ")
	if err := writeAtomic(m.o.StateFile, append(b, '\n')); err != nil {
		return fmt.Errorf("saving requested power states: %w", err)
	}
	return nil
}

// writeAtomic replaces path with data (temporary file, fsync, rename):
// a power cut leaves the old or the new requests, never half a file.
func writeAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return renameio.WriteFile(path, data, 0o644)
}
