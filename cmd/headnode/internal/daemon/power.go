package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"periph.io/x/conn/v3/i2c"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
	"github.com/headnode/headnode/cmd/headnode/internal/config"
	"github.com/headnode/headnode/netcfg/links"
	"github.com/headnode/headnode/power"
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
	problems []power.Problem
	probeErr string
	boards   int // boards in the cluster
}

// powerNode is a node the part follows: one with power control (n > 0
// within the cluster) or one named in [[nodes]].
type powerNode struct {
	name string
	num  int // N of its name pN
	n    int // cluster number, 0 when no board powers it
	addr netip.Addr
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
	nodes := powerNodes(cfg, cluster)
	d.send(ctx, func(st *state) { st.resetPower(cfg, cluster, nodes, problems) })

	m := power.NewManager(cluster, power.Options{
		Stagger:      p.Stagger.Duration,
		Boot:         p.Boot,
		StateFile:    filepath.Join(cfg.Daemon.StateDir, "power.json"),
		ReadInterval: p.ProbeInterval.Duration,
		Log:          log,
		Report: func(r power.Report) {
			d.send(ctx, func(st *state) { st.power.report = r; st.updatePower() })
		},
	})
	d.power.cluster.Store(cluster)
	d.power.manager.Store(m)
	wg.Go(func() { m.Run(ctx) })
	wg.Go(func() { d.probeNodes(ctx, cfg, nodes) })
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
		out = append(out, powerNode{name: name, num: num, n: n, addr: addr})
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
func (d *Daemon) probeNodes(ctx context.Context, cfg *config.Config, nodes []powerNode) {
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
	power.RunProbes(ctx, prober, addrs, p.ProbeInterval.Duration, func(answered []bool, now time.Time) {
		d.send(ctx, func(st *state) {
			for i, ok := range answered {
				st.power.life.Seen(which[i], ok, now)
			}
			st.updatePower()
		})
	})
}

// resetPower starts the part's state over for a new configuration.
func (st *state) resetPower(cfg *config.Config, c *power.Cluster, nodes []powerNode, problems []power.Problem) {
	_, _, perr := probe.Parse(cfg.Power.Probe)
	st.power = powerState{
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
	for _, nd := range ps.nodes {
		keep[nd.name] = true
		var powered *bool
		if nd.n > 0 && nd.n <= len(ps.report.Powered) {
			powered = ps.report.Powered[nd.n-1]
		}
		ps.life.SetPowered(nd.name, powered, now)
	}
	ps.life.Forget(keep)
	ps.life.Update(now)

	cfg := st.cfg.Power
	out := api.Power{BootPolicy: cfg.Boot, Stagger: cfg.Stagger.String(), Probe: cfg.Probe,
		BootApplied: ps.report.BootApplied, BootNote: ps.report.BootNote, Warnings: ps.report.Warnings, Nodes: []api.Node{}}
	var models []string
	for _, b := range ps.report.Boards {
		pb := api.PowerBoard{Model: b.Info.Model, Kind: b.Info.Kind, Chip: b.Info.Chip, Bus: b.Info.Bus, Order: b.Info.Order, Firmware: b.Info.Firmware,
			Nodes: nodename.Range(b.First, b.Nodes), State: b.State, Error: b.Error, Alert: b.Alert, Hub: b.Hub, LEDs: b.LEDs}
		if b.Info.Address != 0 {
			pb.Address = fmt.Sprintf("0x%02x", b.Info.Address)
		}
		out.Boards = append(out.Boards, pb)
		models = append(models, b.Info.Model)
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
		if nd.addr.IsValid() {
			node.Address = nd.addr.String()
		}
		if nd.n > 0 && nd.n <= len(ps.report.Requested) {
			node.Requested = ps.report.Requested[nd.n-1]
		}
		if l, ok := st.net.links[gadgetLink(nd.num)]; ok && l.Exists {
			node.Gadget = l.Name
		}
		out.Nodes = append(out.Nodes, node)
	}
	st.status.Power = out
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
	for _, n := range st.status.Power.Nodes {
		// A node powered off by request is not a fault; one that should
		// be up and does not answer is.
		if n.State == api.NodeUnreachable && n.Requested != "off" {
			h.degrade(n.Name + " unreachable")
		}
	}
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

// powerRoutes are the node power control routes (control socket only).
func (d *Daemon) powerRoutes(mux *http.ServeMux) {
	for _, op := range []string{"on", "off", "alert", "hub", "leds"} {
		mux.HandleFunc("POST /v1/power/"+op, func(w http.ResponseWriter, r *http.Request) { d.handlePower(w, r, op) })
	}
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
	req := power.Request{Op: op}
	var err error
	switch op {
	case "on", "off":
		if in.State != "" {
			err = &power.InputError{Msg: fmt.Sprintf("%s takes node names, not %q", op, in.State)}
		} else {
			req.Nodes, err = c.ParseNodes(in.Nodes)
		}
	case "alert", "leds":
		switch in.State {
		case "on", "off":
			req.On = in.State == "on"
		default:
			err = &power.InputError{Msg: fmt.Sprintf("%s %q: use on or off", op, in.State)}
		}
	case "hub":
		req.Hub = in.State
	}
	if err == nil && len(in.Nodes) > 0 && op != "on" && op != "off" {
		err = &power.InputError{Msg: fmt.Sprintf("%s applies to the boards, not to nodes (%q)", op, in.Nodes[0])}
	}
	var changes []string
	if err == nil {
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		changes, err = m.Do(ctx, req)
	}
	var ie *power.InputError
	switch {
	case errors.As(err, &ie):
		api.ReplyError(w, http.StatusBadRequest, err)
	case errors.Is(err, power.ErrStopped):
		api.ReplyError(w, http.StatusServiceUnavailable, err)
	case err != nil:
		// Partly done: say what changed and what failed.
		if len(changes) > 0 {
			err = fmt.Errorf("%w (done: %s)", err, strings.Join(changes, "; "))
		}
		api.ReplyError(w, http.StatusInternalServerError, err)
	default:
		api.Reply(w, http.StatusOK, api.Changes{Changes: changes})
	}
}
