package daemon

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/netip"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"periph.io/x/conn/v3/i2c"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
	"github.com/headnode/headnode/cmd/headnode/internal/config"
	"github.com/headnode/headnode/hw/sysinfo"
	"github.com/headnode/headnode/netcfg/links"
	"github.com/headnode/headnode/power"
	"github.com/headnode/headnode/power/board"
	"github.com/headnode/headnode/power/clusterctrl"
	"github.com/headnode/headnode/power/clusterhat"
	"github.com/headnode/headnode/power/nodename"
	"github.com/headnode/headnode/power/probe"
)

// The power part: it detects the machine's boards, runs a power.Manager
// that owns them, probes the nodes' reachability, and folds both into each
// node's lifecycle on the loop.

// powerState is the power part of the state (loop goroutine only).
type powerState struct {
	nodes    []powerNode
	life     power.Lifecycle
	report   power.Report
	head     api.Head
	problems []power.Problem
	probeErr string
	boards   int // boards in the cluster
	// off holds the nodes whose power is read back as off, for the probe
	// loop, which does not ask them (power.RunProbes); nil in tests.
	off *atomic.Pointer[map[string]bool]
}

// powerNode is a node the part follows: one with power control (n > 0
// within the cluster) or one named in [[nodes]].
type powerNode struct {
	name string
	num  int // N of its name pN
	n    int // cluster number, 0 when no board powers it
	addr netip.Addr
	// addrText and gadget (its ethpiN) are made once, not at every
	// probe round for every one of a thousand nodes ("" in tests:
	// made when needed).
	addrText, gadget string
}

// powerHandles are what control handlers need from the running part.
type powerHandles struct {
	manager atomic.Pointer[power.Manager]
	cluster atomic.Pointer[power.Cluster]
}

func powerChanged(old, new *config.Config) bool {
	return old.Power != new.Power || !slices.Equal(old.Nodes, new.Nodes) ||
		old.Network.ClusterAddress != new.Network.ClusterAddress || old.Daemon != new.Daemon
}

// powerHardware is how detection reaches the machine's boards. Buses
// always come from the machine, so the I2C trace sees every transaction.
func (d *Daemon) powerHardware() power.Hardware {
	return power.Hardware{
		HATDir: d.hw.HATDir(), DevDir: d.hw.DevDir(),
		I2C:  func(n int) (i2c.Bus, error) { return d.hw.I2C(n) },
		GPIO: func(n int) (clusterhat.Line, error) { return d.hw.GPIO(n) },
	}
}

func (d *Daemon) startPower(parent context.Context, cfg *config.Config) (stop func()) {
	ctx, cancel := context.WithCancel(parent)
	var wg sync.WaitGroup
	log := d.log.With("part", "power")
	p := cfg.Power
	cluster := power.NewCluster(nil, nil)
	var problems []power.Problem
	if err := d.hw.BoardsErr(); err != nil {
		problems = append(problems, power.Problem{What: "hardware", Err: err})
	} else {
		co := clusterctrl.DefaultOpts
		co.HubResetOff = p.Stagger.Duration
		ho := clusterhat.DefaultOpts
		ho.HubResetOff = max(p.Stagger.Duration, 100*time.Millisecond)
		ho.HubPolarity, ho.Size = p.HubPolarity, p.HATSize
		cluster, problems = power.Detect(d.powerHardware(), power.DetectOptions{
			Board: p.Board, HATBus: p.I2CBus, HATAddress: uint16(p.HATAddress), HATVersion: p.HATVersion, HAT: ho, CTRL: co,
		})
	}
	for _, pr := range problems {
		log.Error("power board unavailable", "board", pr.What, "err", pr.Err)
	}
	for _, w := range cluster.Warnings {
		log.Warn(w)
	}
	for _, b := range cluster.Boards() {
		i := b.Info()
		log.Info("power board found", "board", i.Model, "bus", i.Bus, "nodes", b.Nodes())
	}
	var fan power.Line
	if p.FanGPIO >= 0 {
		l, err := d.hw.GPIO(p.FanGPIO)
		if err != nil {
			problems = append(problems, power.Problem{What: fmt.Sprintf("the head node's fan (GPIO%d)", p.FanGPIO), Err: err})
		} else {
			fan = l
		}
	}
	nodes := powerNodes(cfg, cluster)
	off := new(atomic.Pointer[map[string]bool])
	d.send(ctx, func(st *state) { st.resetPower(cfg, cluster, nodes, problems, off) })

	sysRoot := d.hw.SysRoot()
	model := readHeadModel(sysRoot)
	var head api.Head // the Report callback's: one goroutine
	var headAt time.Time
	m := power.NewManager(cluster, power.Options{
		Stagger:      p.Stagger.Duration,
		Boot:         p.Boot,
		StateFile:    filepath.Join(cfg.Daemon.StateDir, "power.json"),
		ReadInterval: p.ProbeInterval.Duration,
		Log:          log,
		Fan:          fan,
		SysRoot:      sysRoot,
		HATUSBPath:   p.HATUSBPath,
		Report: func(r power.Report) {
			// The firmware's flags are sticky ("occurred") as well as
			// current; a look every few seconds is enough, not at every
			// read-back of the boards.
			if now := time.Now(); now.Sub(headAt) >= headEvery {
				head, headAt = readHead(sysRoot, model), now
			}
			d.send(ctx, func(st *state) {
				before := st.status.Power
				st.power.report, st.power.head = r, head
				st.updatePower()
				st.quietIf(reflect.DeepEqual(before, st.status.Power))
			})
		},
	})
	d.power.cluster.Store(cluster)
	d.power.manager.Store(m)
	wg.Go(func() { m.Run(ctx) })
	wg.Go(func() { d.probeNodes(ctx, cfg, nodes, off) })
	return func() {
		cancel()
		wg.Wait()
		d.power.manager.Store(nil)
	}
}

// powerNodes lists p1..pN of the cluster and any other [[nodes]] entry.
func powerNodes(cfg *config.Config, c *power.Cluster) []powerNode {
	var out []powerNode
	seen := map[string]bool{}
	add := func(name string, n int) {
		if seen[name] {
			return
		}
		seen[name] = true
		num, err := nodename.Parse(name)
		if err != nil {
			return // validated at load
		}
		addr, _ := cfg.NodeAddress(num)
		nd := powerNode{name: name, num: num, n: n, addr: addr, gadget: gadgetLink(num)}
		if addr.IsValid() {
			nd.addrText = addr.String()
		}
		out = append(out, nd)
	}
	for n := 1; n <= c.Nodes(); n++ {
		add(nodename.Name(n), n)
	}
	for _, nd := range cfg.Nodes {
		add(nd.Name, 0)
	}
	return out
}

// probeNodes asks every node with an address once per interval and folds
// the answers into the lifecycle. Without a probe it still ticks, so that
// grace periods expire.
func (d *Daemon) probeNodes(ctx context.Context, cfg *config.Config, nodes []powerNode, off *atomic.Pointer[map[string]bool]) {
	p := cfg.Power
	prober, err := probe.New(p.Probe)
	if err != nil {
		msg := err.Error()
		d.log.Error("node reachability probe unavailable", "err", err)
		d.send(ctx, func(st *state) { st.power.probeErr = msg })
	}
	if prober != nil {
		defer prober.Close()
	}
	var addrs []netip.Addr
	var which []string
	for _, nd := range nodes {
		if nd.addr.IsValid() {
			addrs, which = append(addrs, nd.addr), append(which, nd.name)
		}
	}
	ask := func(i int) bool {
		m := off.Load()
		return m == nil || !(*m)[which[i]]
	}
	power.RunProbes(ctx, prober, addrs, p.ProbeInterval.Duration, ask, func(answered []bool, now time.Time) {
		d.send(ctx, func(st *state) {
			for i, ok := range answered {
				st.power.life.Seen(which[i], ok, now)
			}
			// Most rounds change nothing (the same nodes answer): then
			// neither the node list is rebuilt nor the status encoded.
			st.power.life.Update(now)
			if st.nodesCurrent(now) {
				st.quietIf(true)
				return
			}
			st.updatePower()
		})
	})
}

// nodesCurrent reports whether the status's nodes are what the lifecycle
// says now (state, since, reachable), so that a probe round need not
// rebuild a thousand of them.
func (st *state) nodesCurrent(now time.Time) bool {
	ps, shown := &st.power, st.status.Power.Nodes
	if len(shown) != len(ps.nodes) {
		return false
	}
	for i, nd := range ps.nodes {
		v, n := ps.life.View(nd.name, now), shown[i]
		if n.Name != nd.name || n.State != v.State || !n.Since.Equal(v.Since) || n.Reachable != v.Reachable {
			return false
		}
	}
	return true
}

// resetPower starts the part's state over for a new configuration.
func (st *state) resetPower(cfg *config.Config, c *power.Cluster, nodes []powerNode, problems []power.Problem, off *atomic.Pointer[map[string]bool]) {
	_, _, perr := probe.Parse(cfg.Power.Probe)
	st.power = powerState{
		off:      off,
		nodes:    nodes,
		problems: problems,
		boards:   len(c.Boards()),
		life: power.Lifecycle{
			Grace: cfg.Power.BootGrace.Duration, DownAfter: cfg.Power.DownAfter.Duration,
			Probing: cfg.Power.Probe != "none" && perr == nil,
		},
	}
	st.updatePower() // registers the nodes
	st.applyPowerLinks(st.net.links)
	st.updatePower()
}

// updatePower folds the latest report and links into node states and the
// published status.
func (st *state) updatePower() {
	ps := &st.power
	now := time.Now()
	keep := map[string]bool{}
	off := map[string]bool{}
	for _, nd := range ps.nodes {
		keep[nd.name] = true
		var powered *bool
		if nd.n > 0 && nd.n <= len(ps.report.Powered) {
			powered = ps.report.Powered[nd.n-1]
		}
		ps.life.SetPowered(nd.name, powered, now)
		if powered != nil && !*powered {
			off[nd.name] = true
		}
	}
	if ps.off != nil {
		if was := ps.off.Load(); was == nil || !maps.Equal(*was, off) {
			ps.off.Store(&off)
		}
	}
	ps.life.Forget(keep)
	ps.life.Update(now)

	cfg := st.cfg.Power
	out := api.Power{BootPolicy: cfg.Boot, Stagger: cfg.Stagger.String(), Probe: cfg.Probe,
		BootApplied: ps.report.BootApplied, BootNote: ps.report.BootNote, Warnings: ps.report.Warnings, Nodes: []api.Node{},
		LEDs: ps.report.LEDs, HATSize: cfg.HATSize, Head: ps.head}
	if cfg.FanGPIO >= 0 {
		out.Head.Fan, out.Head.FanGPIO, out.Head.FanError = ps.report.Fan, cfg.FanGPIO, ps.report.FanError
	}
	var models []string
	usbboot := map[int]bool{} // node number -> its USBBOOT line
	for _, b := range ps.report.Boards {
		out.Boards = append(out.Boards, boardView(b))
		models = append(models, b.Info.Model)
		for k, on := range b.Read.USBBoot {
			usbboot[b.First+k] = on
		}
	}
	out.Board = strings.Join(models, " + ")
	if out.Board == "" {
		out.Board = "none"
	}
	for _, pr := range ps.problems {
		out.Errors = append(out.Errors, pr.Error())
	}
	if ps.probeErr != "" {
		out.Errors = append(out.Errors, "reachability probe: "+ps.probeErr)
	}
	for _, n := range ps.report.Queued {
		out.Queued = append(out.Queued, nodename.Name(n))
	}
	for _, nd := range ps.nodes {
		v := ps.life.View(nd.name, now)
		node := api.Node{Name: nd.name, State: v.State, Since: v.Since, Powered: v.Powered, Reachable: v.Reachable}
		if node.Address = nd.addrText; node.Address == "" && nd.addr.IsValid() {
			node.Address = nd.addr.String()
		}
		if nd.n > 0 && nd.n <= len(ps.report.Requested) {
			node.Requested = ps.report.Requested[nd.n-1]
		}
		gadget := nd.gadget
		if gadget == "" {
			gadget = gadgetLink(nd.num)
		}
		if l, ok := st.net.links[gadget]; ok && l.Exists {
			node.Gadget = l.Name
		}
		if on, ok := usbboot[nd.n]; ok && nd.n > 0 {
			node.USBBoot = &on
		}
		out.Nodes = append(out.Nodes, node)
	}
	st.status.Power = out
}

// boardView is one board as the status shows it: what it is and every
// fact read back from it.
func boardView(b power.BoardReport) api.PowerBoard {
	i, rd := b.Info, b.Read
	pb := api.PowerBoard{Model: i.Model, Kind: i.Kind, Chip: i.Chip, Bus: i.Bus, Order: i.Order, Firmware: i.Firmware,
		Nodes: nodename.Range(b.First, b.Nodes), First: b.First, Count: b.Nodes, State: b.State, Error: b.Error, Alert: b.Alert, Hub: b.Hub, LEDs: b.LEDs,
		UUID: i.UUID, Vendor: i.Vendor, ProductID: i.ProductID, Forced: i.Forced, WP: rd.WP, WPLink: i.WPLink,
		FirmwareMajor: i.FirmwareMajor, FirmwareMinor: i.FirmwareMinor}
	if i.Address != 0 {
		pb.Address = fmt.Sprintf("0x%02x", i.Address)
	}
	if i.Kind == "clusterhat" {
		pb.Version, pb.Major, pb.Minor = i.Revision, i.Major, i.Minor
	}
	if rd.FanStatus != nil {
		fs := int(*rd.FanStatus)
		pb.FanStatus, pb.Fan = &fs, board.Flag(fs&1 != 0)
		for k := 1; k < 8; k++ {
			if fs>>k&1 == 1 {
				pb.Cooling = append(pb.Cooling, nodename.Name(b.First+k-1))
			}
		}
	}
	for k, a := range rd.ADCs {
		if mv, ok := clusterctrl.Millivolts(a); ok {
			pb.Voltages = append(pb.Voltages, api.Voltage{ADC: k + 1, Type: int(a.Type), Raw: int(a.Raw), Volts: mv / 1000})
		}
	}
	if rd.Temp != nil {
		pb.Temperature = &api.Reading{Raw: int(*rd.Temp), Celsius: clusterctrl.Celsius(*rd.Temp)}
	}
	return pb
}

// headEvery is how often the head's throttling flags are read.
const headEvery = 5 * time.Second

// headModel is what the head node is, read once when the power part
// starts: it does not change while the machine runs.
type headModel struct {
	revision string
	pi5      bool
}

func readHeadModel(root string) headModel {
	rev, _ := sysinfo.Revision(root)
	return headModel{revision: rev, pi5: sysinfo.IsPi5(root)}
}

// readHead is what the head node says about itself: its revision and
// model (as read at start), and the firmware's throttling flags, read now (see hw/sysinfo for where
// they come from, without vcgencmd).
func readHead(root string, model headModel) api.Head {
	h := api.Head{Revision: model.revision, Pi5: model.pi5}
	t := sysinfo.ReadThrottling(root)
	h.ThrottledSource = t.Source
	if t.Source == "firmware" {
		h.Throttled = fmt.Sprintf("0x%x", t.Flags)
	}
	f := t.Flags
	h.UnderVoltage, h.UnderVoltageOccurred = f&sysinfo.UnderVoltage != 0, f&sysinfo.UnderVoltageOccurred != 0
	h.FrequencyCapped, h.Throttling, h.SoftTempLimit = f&sysinfo.FrequencyCapped != 0, f&sysinfo.ThrottledNow != 0, f&sysinfo.SoftTempLimit != 0
	return h
}

func (st *state) powerHealth(h *health) {
	for _, pr := range st.power.problems {
		if pr.Missing {
			h.degrade("power board missing: " + pr.Error())
		} else {
			h.fail(3, "power board failed: "+pr.Error())
		}
	}
	for _, b := range st.status.Power.Boards {
		switch b.State {
		case power.BoardMissing:
			h.degrade(b.Model + " missing: " + b.Error)
		case power.BoardFailed:
			h.fail(3, b.Model+" failed: "+b.Error)
		}
	}
	if st.power.probeErr != "" {
		h.degrade("node probe unavailable: " + st.power.probeErr)
	}
	var down []string
	for _, n := range st.status.Power.Nodes {
		// A node powered off by request is not a fault; one that should
		// be up and does not answer is.
		if n.State == api.NodeUnreachable && n.Requested != "off" {
			down = append(down, n.Name)
		}
	}
	// One reason per node up to two; more are one reason naming the first
	// few, so that a thousand-node cluster's health stays a line.
	if len(down) <= 2 {
		for _, name := range down {
			h.degrade(name + " unreachable")
		}
		return
	}
	first := down[:min(len(down), 8)]
	more := ""
	if len(down) > len(first) {
		more = " …"
	}
	h.degrade(fmt.Sprintf("%d nodes unreachable: %s%s", len(down), strings.Join(first, " "), more))
}

// powerOnLinks is called on the loop with every interface snapshot:
// ClusterHAT gadget nodes have a USB network link, ethpiN (ethupiN when
// USB-booted), whose carrier shows the node's gadget is running.
func (d *Daemon) powerOnLinks(st *state, links map[string]links.State) {
	st.applyPowerLinks(links)
	st.updatePower()
}

// gadgetLink and usbBootLink name node pN's USB gadget interface on the
// head node: ethpiN, or ethupiN when the node boots over USB.
func gadgetLink(n int) string  { return "ethpi" + strconv.Itoa(n) }
func usbBootLink(n int) string { return "ethupi" + strconv.Itoa(n) }

func (st *state) applyPowerLinks(links map[string]links.State) {
	now := time.Now()
	for _, nd := range st.power.nodes {
		l, ok := links[gadgetLink(nd.num)]
		if !ok || !l.Exists {
			l = links[usbBootLink(nd.num)]
		}
		st.power.life.SetLink(nd.name, l.Exists, l.Carrier, now)
	}
}

// powerOps are the node power control routes, POST /v1/power/OP.
var powerOps = []string{"on", "off", "alert", "hub", "leds", "wp", "fan", "act", "usbboot", "paths", "setorder", "save", "restart", "init"}

// powerRoutes are the node power control routes (control socket only).
func (d *Daemon) powerRoutes(mux *http.ServeMux) {
	for _, op := range powerOps {
		mux.HandleFunc("POST /v1/power/"+op, func(w http.ResponseWriter, r *http.Request) { d.handlePower(w, r, op) })
	}
}

// onOffState parses an on/off State.
func onOffState(op, state string) (bool, error) {
	switch state {
	case "on", "off":
		return state == "on", nil
	}
	return false, &power.InputError{Msg: fmt.Sprintf("%s %q: use on or off", op, state)}
}

// powerRequest turns an API request into a manager request, checking
// what the manager does not: the shape of each operation's arguments.
func powerRequest(op string, in api.PowerRequest, c *power.Cluster) (power.Request, error) {
	req := power.Request{Op: op, Target: in.Target, Order: in.Order, NewOrder: in.NewOrder, Save: board.Saving(in.Save)}
	var err error
	takesNodes := map[string]bool{"on": true, "off": true, "alert": true, "usbboot": true, "paths": true}
	if len(in.Nodes) > 0 && !takesNodes[op] {
		return req, &power.InputError{Msg: fmt.Sprintf("%s applies to the boards, not to nodes (%q)", op, in.Nodes[0])}
	}
	if in.Target != "" && op != "fan" && op != "act" {
		return req, &power.InputError{Msg: fmt.Sprintf("%s takes no target (%q)", op, in.Target)}
	}
	switch op {
	case "on", "off", "paths":
		if in.State != "" {
			return req, &power.InputError{Msg: fmt.Sprintf("%s takes node names, not %q", op, in.State)}
		}
		req.All = len(in.Nodes) == 0
		req.Nodes, err = c.ParseNodes(in.Nodes)
	case "alert", "usbboot":
		if req.On, err = onOffState(op, in.State); err == nil && len(in.Nodes) > 0 {
			req.Nodes, err = c.ParseNodes(in.Nodes)
		}
	case "leds", "wp", "fan", "act":
		req.On, err = onOffState(op, in.State)
	case "hub":
		req.Hub = in.State
	case "save":
		if req.Save == "" {
			req.Save = board.SaveAll
		}
		switch req.Save {
		case board.SaveAll, board.SaveOrder, board.SaveUSBBoot, board.SavePOS, board.SaveLEDs, board.SaveDefaults:
		default:
			err = &power.InputError{Msg: fmt.Sprintf("nothing called %q to save: use all, order, usbboot, pos, leds or defaults", in.Save)}
		}
	}
	if err == nil && (op == "save" || op == "restart" || op == "setorder") && (in.Order < 1 || in.Order > 255) {
		err = &power.InputError{Msg: fmt.Sprintf("order %d is out of range: use the order `headnode status` lists (1-255)", in.Order)}
	}
	return req, err
}

func (d *Daemon) handlePower(w http.ResponseWriter, r *http.Request, op string) {
	var in api.PowerRequest
	if r.ContentLength != 0 {
		if !api.ReadRequest(w, r, &in, `send {"nodes": ["p1"]} or {"state": "on"}`) {
			return
		}
	}
	m, c := d.power.manager.Load(), d.power.cluster.Load()
	if m == nil || c == nil {
		api.ReplyError(w, http.StatusServiceUnavailable, errors.New("node power control is not running (see `headnode status`)"))
		return
	}
	req, err := powerRequest(op, in, c)
	var res power.Result
	if err == nil {
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		res, err = m.Do(ctx, req)
	}
	var ie *power.InputError
	switch {
	case errors.As(err, &ie):
		api.ReplyError(w, http.StatusBadRequest, err)
	case errors.Is(err, power.ErrStopped):
		api.ReplyError(w, http.StatusServiceUnavailable, err)
	case err != nil && op == "paths" && len(res.Paths) > 0:
		d.log.Warn("USB paths: some nodes' could not be found", "err", err)
		fallthrough
	case op == "paths" && err == nil:
		out := api.PowerPaths{Paths: map[string]string{}}
		for n, p := range res.Paths {
			out.Paths[nodename.Name(n)] = p
		}
		api.Reply(w, http.StatusOK, out)
	case err != nil:
		// Partly done: say what changed and what failed.
		if len(res.Changes) > 0 {
			err = fmt.Errorf("%w (done: %s)", err, strings.Join(res.Changes, "; "))
		}
		api.ReplyError(w, http.StatusInternalServerError, err)
	default:
		api.Reply(w, http.StatusOK, api.Changes{Changes: res.Changes})
	}
}
