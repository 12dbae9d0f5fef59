package daemon

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
	"github.com/headnode/headnode/cmd/headnode/internal/config"
	"github.com/headnode/headnode/netcfg/bridge"
	"github.com/headnode/headnode/netcfg/dhcpwatch"
	"github.com/headnode/headnode/netcfg/links"
	"github.com/headnode/headnode/netcfg/nat"
	"github.com/headnode/headnode/netcfg/roles"
	"github.com/headnode/headnode/netcfg/routes"
)

// The roles part: which interface is the uplink and which the cluster
// side (netcfg/roles decides, from links, default routes and the board),
// whether another DHCP server answers on the cluster side
// (netcfg/dhcpwatch), and what follows: the NAT rules for the cluster
// subnet go in at once (they touch no interface), but our address, our DHCP
// server and wired bridge ports only once the interface is known not to be
// a LAN; our DHCP server is silenced while another one answers.
//
// Events in: links (applyLinks), routes, watcher reports, the board (the
// power part's detection); settleRoles derives the rest after each event.

// rolesState is the roles part of the state (loop goroutine only).
type rolesState struct {
	routes      []routes.Default
	routesKnown bool
	linksKnown  bool
	wasUplink   map[string]bool
	// before holds other DHCP servers seen on an interface before it was
	// claimed: such an interface is a LAN, not the cluster side.
	before  map[string]string
	decided roles.Roles
	known   bool
	// The check on the cluster candidate.
	watching  string
	watchStop func()
	gate      dhcpwatch.Gate
	timer     *time.Timer
	// claimed is the cluster interface we put our address on and serve.
	claimed string
	// dhcpOpen: our DHCP server may answer.
	dhcpOpen   bool
	silenced   bool
	sentKeeper *nat.Keeper
	sentWant   nat.Desired
	applied    nat.Desired // what the keeper last applied
	running    bool        // startRoles ran (not so in tests that build a state by hand)
	// ports are the checks of wired ports about to join the bridge;
	// passed those that passed (until their carrier goes).
	ports  map[string]*portCheck
	passed map[string]bool
	// bridgeSent is what the bridges were last told.
	bridgeSent  bridgePorts
	bridgeKnown bool
	carrier     map[string]bool
}

// rolesHandles are the running roles part's (the loop's, but ctx and the
// pusher are set by startRoles).
type rolesHandles struct {
	ctx     context.Context
	desired chan keeperDesired
	// bridgeOK is read by the bridges' goroutines: which interfaces may
	// be bridge ports.
	bridgeOK atomic.Pointer[bridgePorts]
	auto     *autoBridge
	wg       *sync.WaitGroup
	// watch replaces dhcpwatch.Watch in unit tests.
	watch func(context.Context, dhcpwatch.Options, func(dhcpwatch.Report))
}

type keeperDesired struct {
	k *nat.Keeper
	d nat.Desired
}

func rolesChanged(old, new *config.Config) bool {
	return old.Network != new.Network || old.DHCP.Probe != new.DHCP.Probe || old.DHCP.Quiet != new.DHCP.Quiet ||
		old.Bridge.Name != new.Bridge.Name || old.Bridge.Enabled != new.Bridge.Enabled || old.Daemon != new.Daemon
}

// startRoles follows the default routes and pushes the cluster side to the
// NAT keeper; the DHCP watcher and the automatic bridge are started from
// the loop as the decision moves.
func (d *Daemon) startRoles(parent context.Context, cfg *config.Config) (stop func()) {
	ctx, cancel := context.WithCancel(parent)
	var wg sync.WaitGroup
	d.roles.ctx, d.roles.wg = ctx, &wg
	d.roles.desired = make(chan keeperDesired, 1)
	desired := d.roles.desired
	d.send(ctx, func(st *state) { st.resetRoles(); st.roles.running = true })
	wg.Go(func() {
		routes.Watch(ctx, routes.WatchOptions{Log: d.log.With("part", "routes")}, func(rs []routes.Default) {
			d.send(ctx, func(st *state) { st.roles.routes, st.roles.routesKnown = rs, true })
		})
	})
	// One pusher, latest wins: SetDesired waits for the keeper's apply,
	// which must not hold up the loop.
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case kd := <-desired:
				_, err := kd.k.SetDesired(ctx, kd.d)
				if err != nil && ctx.Err() == nil {
					d.log.Warn("NAT: cluster side not applied yet", "interface", kd.d.ClusterInterface, "err", err)
				}
				if ctx.Err() == nil {
					d.send(ctx, func(st *state) {
						if st.roles.sentKeeper == kd.k {
							st.roles.applied = kd.d
						}
					})
				}
			}
		}
	})
	return func() {
		cancel() // ends the watcher and the timer too: their contexts are ours
		wg.Wait()
		if d.roles.auto != nil {
			d.roles.auto.stop()
			d.roles.auto = nil
		}
	}
}

func (st *state) resetRoles() {
	st.stopRolesWatch()
	for _, c := range st.roles.ports {
		c.stop()
	}
	st.roles = rolesState{wasUplink: map[string]bool{}, before: map[string]string{}, carrier: map[string]bool{},
		ports: map[string]*portCheck{}, passed: map[string]bool{}}
}

func (st *state) stopRolesWatch() {
	if st.roles.watchStop != nil {
		st.roles.watchStop()
		st.roles.watchStop = nil
	}
	if st.roles.timer != nil {
		st.roles.timer.Stop()
		st.roles.timer = nil
	}
	st.roles.watching = ""
}

// rolesSettled: the first decision was made from the links and routes
// and the keeper has applied it (for READY).
func (st *state) rolesSettled() bool {
	if !st.roles.running || st.status.NAT.State == api.NATDisabled || st.net.openErr != nil {
		return true
	}
	return st.roles.known && st.roles.routesKnown && st.roles.linksKnown && st.roles.sentKeeper != nil && st.roles.applied == st.roles.sentWant
}

// uplinkName and clusterName are the interfaces the status shows.
func (st *state) uplinkName() string {
	if st.cfg.Network.UplinkInterface != roles.Auto {
		return st.cfg.Network.UplinkInterface
	}
	return st.roles.decided.Uplink
}

func (st *state) clusterName() string {
	if st.roles.decided.Cluster != "" {
		return st.roles.decided.Cluster
	}
	if st.cfg.Network.ClusterInterface != roles.Auto {
		return st.cfg.Network.ClusterInterface
	}
	return ""
}

// clusterAddress is the head's address on the cluster side.
func (st *state) clusterAddress() netip.Prefix {
	p, _ := st.cfg.Network.ClusterPrefix()
	return p
}

// rolesOnLinks is called with every interface snapshot, before the
// views are derived.
func (d *Daemon) rolesOnLinks(st *state, ls map[string]links.State) {
	if st.roles.carrier == nil {
		st.resetRoles()
	}
	st.roles.linksKnown = true
	for name, l := range ls {
		was, seen := st.roles.carrier[name]
		if seen && was && !l.Carrier {
			// A cable pulled: what we knew about the network behind it
			// goes, so a swap of cables is noticed as such.
			delete(st.roles.before, name)
			delete(st.roles.wasUplink, name)
			delete(st.roles.passed, name)
		}
		st.roles.carrier[name] = l.Carrier
	}
	for name := range st.roles.carrier {
		if _, ok := ls[name]; !ok {
			delete(st.roles.carrier, name)
			delete(st.roles.before, name)
			delete(st.roles.wasUplink, name)
			delete(st.roles.passed, name)
		}
	}
	if a := d.roles.auto; a != nil {
		a.kickNow()
	}
	d.decideRoles(st)
}

// settleRoles runs after every event.
func (d *Daemon) settleRoles(st *state) { d.decideRoles(st) }

func (d *Daemon) decideRoles(st *state) {
	if d.roles.ctx == nil || st.roles.wasUplink == nil {
		return
	}
	n := st.cfg.Network
	in := roles.Input{
		Uplink: n.UplinkInterface, Cluster: n.ClusterInterface,
		Bridge: st.cfg.Bridge.Name, BridgePorts: st.cfg.Bridge.Ports, BridgeEnabled: st.cfg.Bridge.Enabled,
		Board: st.power.boards > 0, Links: st.net.links, WasUplink: st.roles.wasUplink, OtherDHCP: st.roles.before,
	}
	for name := range st.net.links {
		if roles.IsGadget(name) {
			in.Board = true
		}
	}
	if st.cfg.Bridge.Enabled && n.ClusterInterface == roles.Auto {
		in.Board = true // an explicit bridge is the cluster side
	}
	for _, r := range st.roles.routes {
		in.Routes = append(in.Routes, roles.Route{Interface: r.Interface, Metric: r.Metric})
	}
	r := roles.Decide(in)
	if r.Uplink != "" && slices.ContainsFunc(in.Routes, func(rt roles.Route) bool { return rt.Interface == r.Uplink }) {
		st.roles.wasUplink[r.Uplink] = true
	}
	changed := !st.roles.known || !r.Equal(st.roles.decided)
	if changed {
		old := st.roles.decided
		st.roles.decided, st.roles.known = r, true
		if old.Uplink != r.Uplink {
			d.log.Info("uplink", "interface", orNone(r.Uplink), "why", r.UplinkWhy)
		}
		if old.Cluster != r.Cluster || old.ClusterWhy != r.ClusterWhy {
			d.log.Info("cluster side", "interface", orNone(r.Cluster), "why", r.ClusterWhy)
		}
		if p := r.Problem; p != nil && (old.Problem == nil || *old.Problem != *p) {
			d.log.Error(p.Line, "interface", p.Interface)
		}
		d.refreshLinkViews(st)
	}
	if d.checkPorts(st, r) {
		d.decideRoles(st) // a port turned out to be a LAN: decide again
		return
	}
	// The candidate for the cluster side, before and after the claim.
	cand := r.Cluster
	if r.Problem != nil && !r.Problem.Port || !st.roles.routesKnown || !st.roles.linksKnown {
		cand = ""
	}
	if cand != st.roles.watching {
		d.watchCluster(st, cand)
	}
	l := st.net.links[cand]
	ownBridge := cand != "" && cand == st.cfg.Bridge.Name && (st.cfg.Bridge.Enabled || r.Bridge)
	if cand != "" && st.roles.claimed == cand && !ownBridge && l.Exists && !l.Carrier {
		// The cable was pulled: whatever is plugged in next is checked
		// before our DHCP server answers there again. Our address stays
		// until the check says it is a LAN.
		d.log.Info("cluster side lost its carrier; it is checked again when it comes back", "interface", cand)
		st.roles.claimed = ""
		d.watchCluster(st, cand)
	}
	st.roles.gate.Carrier(time.Now(), l.Carrier)
	if ownBridge && l.Exists && !l.Carrier && !st.roles.gate.Checked() {
		// Our own bridge with no port up yet: nothing is on it that
		// could be a LAN, and the nodes should find our server as soon
		// as their links come up. From the first port on, the watcher
		// listens, and another server seen silences ours.
		st.roles.gate.Skip()
	}
	open, why, wait := st.roles.gate.Open(time.Now())
	if cand != "" && st.roles.claimed != cand {
		srv, _ := st.roles.gate.Other()
		switch {
		case srv.IsValid():
			// Seen before we claimed it: a LAN. The decision refuses it
			// from now on (an explicit one with a Problem).
			st.roles.before[cand] = srv.String()
			d.log.Warn("another DHCP server answers on the cluster network; ours stays off", "interface", cand, "server", srv)
			d.decideRoles(st) // it is refused now: decide again
			return
		case st.roles.gate.Checked():
			d.log.Info("cluster side checked: no other DHCP server answers; taking it", "interface", cand)
			st.roles.claimed = cand
		}
	}
	if cand == "" {
		st.roles.claimed = ""
	}
	// The claim goes to the keeper (and again to a new keeper after a
	// restart of the network part).
	// Until the check has passed, the rules for the subnet are in place
	// (they touch no interface) but the address is held back.
	want := nat.Desired{ClusterInterface: cand, ClusterAddress: st.clusterAddress(), Hold: st.roles.claimed != cand}
	if cand == "" {
		want.Hold = false
	}
	if k := d.net.keeper.Load(); k != nil && (k != st.roles.sentKeeper || want != st.roles.sentWant) {
		st.roles.sentKeeper, st.roles.sentWant = k, want
		kd := keeperDesired{k, want}
		for {
			select {
			case d.roles.desired <- kd:
			default:
				select {
				case <-d.roles.desired:
				default:
				}
				continue
			}
			break
		}
	}
	d.autoBridge(st, r)
	// Our DHCP server answers only on the claimed side with the gate open.
	open = open && st.roles.claimed != "" && st.roles.claimed == cand
	silenced := st.roles.claimed != "" && !open && func() bool { s, _ := st.roles.gate.Other(); return s.IsValid() }()
	if silenced != st.roles.silenced {
		st.roles.silenced = silenced
		srv, at := st.roles.gate.Other()
		if silenced {
			d.log.Warn("another DHCP server answers on the cluster network; ours is silent", "interface", cand, "server", srv, "seen", at.Format(time.RFC3339Nano))
		} else {
			d.log.Info("the other DHCP server has been quiet; ours answers again", "interface", cand, "quiet", st.cfg.DHCP.Quiet.Duration)
		}
	}
	if open != st.roles.dhcpOpen || changed {
		st.roles.dhcpOpen = open
		d.dhcpOnLinks(st, st.net.links)
	}
	st.overlayDHCP(why)
	st.overlayNAT(cand, why)
	st.status.Roles = st.rolesView()
	if !open && wait > 0 {
		if st.roles.timer != nil {
			st.roles.timer.Stop()
		}
		ctx := d.roles.ctx
		st.roles.timer = time.AfterFunc(wait, func() { d.send(ctx, func(*state) {}) })
	}
}

// portCheck is the check of one wired port before it joins the bridge.
type portCheck struct {
	gate  dhcpwatch.Gate
	stop  func()
	timer *time.Timer
}

// checkPorts checks every wired port that is to join the cluster bridge
// (a [bridge] ports pattern, or the automatic bridge's Ports) the way the
// cluster side is checked before it is claimed: carrier, then the probe
// window without another DHCP server answering. Until then the bridge
// leaves it out. It reports whether a port was found to be a LAN.
func (d *Daemon) checkPorts(st *state, r roles.Roles) (lan bool) {
	want := map[string]bool{}
	if (st.cfg.Bridge.Enabled || r.Bridge) && st.roles.routesKnown && st.roles.linksKnown {
		for name := range st.net.links {
			if _, refused := r.Refused[name]; refused || !roles.IsWired(name) || name == st.cfg.Bridge.Name {
				continue
			}
			if st.cfg.Bridge.Enabled && matchesAny(st.cfg.Bridge.Ports, name) || !st.cfg.Bridge.Enabled && slices.Contains(r.Ports, name) {
				want[name] = true
			}
		}
	}
	for name, c := range st.roles.ports {
		if !want[name] {
			c.stop()
			delete(st.roles.ports, name)
		}
	}
	now := time.Now()
	passedOne := false
	for name := range want {
		if st.roles.passed[name] {
			continue
		}
		c := st.roles.ports[name]
		if c == nil {
			c = d.startPortCheck(st, name)
		}
		c.gate.Carrier(now, st.net.links[name].Carrier)
		if srv, _ := c.gate.Other(); srv.IsValid() {
			d.log.Warn("another DHCP server answers on a port meant for the cluster bridge; it stays out", "interface", name, "server", srv)
			st.roles.before[name] = srv.String()
			c.stop()
			delete(st.roles.ports, name)
			lan = true
			continue
		}
		ok, _, wait := c.gate.Open(now)
		switch {
		case ok:
			d.log.Info("port checked: no other DHCP server answers; it joins the bridge", "interface", name)
			st.roles.passed[name] = true
			c.stop()
			delete(st.roles.ports, name)
			passedOne = true
		case wait > 0:
			if c.timer != nil {
				c.timer.Stop()
			}
			ctx := d.roles.ctx
			c.timer = time.AfterFunc(wait, func() { d.send(ctx, func(*state) {}) })
		}
	}
	if ok := (bridgePorts{refused: r.Refused, passed: st.roles.passed}); !st.roles.bridgeKnown || !maps.Equal(ok.refused, st.roles.bridgeSent.refused) || passedOne {
		ok.refused, ok.passed = maps.Clone(ok.refused), maps.Clone(ok.passed)
		st.roles.bridgeSent, st.roles.bridgeKnown = ok, true
		d.roles.bridgeOK.Store(&ok)
		passedOne = true
	}
	if passedOne {
		if a := d.roles.auto; a != nil {
			a.kickNow()
		}
		if br := d.dhcp.bridge.Load(); br != nil {
			select {
			case br.kick <- struct{}{}:
			default:
			}
		}
	}
	return lan
}

func matchesAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

func (d *Daemon) startPortCheck(st *state, name string) *portCheck {
	c := &portCheck{gate: dhcpwatch.Gate{First: st.cfg.DHCP.Probe.Duration, Quiet: st.cfg.DHCP.Quiet.Duration}, stop: func() {}}
	st.roles.ports[name] = c
	if d.roles.ctx == nil {
		return c
	}
	ctx, cancel := context.WithCancel(d.roles.ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.dhcpWatch(ctx, dhcpwatch.Options{Interface: name, Log: d.log.With("part", "dhcpwatch")}, dhcpwatch.Changes(func(r dhcpwatch.Report) {
			d.send(ctx, func(st *state) {
				if st.roles.ports[name] == c {
					c.gate.Report(r)
				}
			})
		}))
	}()
	c.stop = func() {
		cancel()
		<-done
		if c.timer != nil {
			c.timer.Stop()
		}
	}
	return c
}

// dhcpWatch runs a DHCP watcher; unit tests replace it
// (rolesHandles.watch) with reports of their own.
func (d *Daemon) dhcpWatch(ctx context.Context, o dhcpwatch.Options, report func(dhcpwatch.Report)) {
	if d.roles.watch != nil {
		d.roles.watch(ctx, o, report)
		return
	}
	dhcpwatch.Watch(ctx, o, report)
}

// watchCluster starts the DHCP watcher on name (stopping the one before).
func (d *Daemon) watchCluster(st *state, name string) {
	st.stopRolesWatch()
	st.roles.gate = dhcpwatch.Gate{First: st.cfg.DHCP.Probe.Duration, Quiet: st.cfg.DHCP.Quiet.Duration}
	st.roles.watching = name
	if name == "" {
		return
	}
	ctx, cancel := context.WithCancel(d.roles.ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.dhcpWatch(ctx, dhcpwatch.Options{Interface: name, Log: d.log.With("part", "dhcpwatch")}, dhcpwatch.Changes(func(r dhcpwatch.Report) {
			d.send(ctx, func(st *state) {
				if st.roles.watching == name {
					st.roles.gate.Report(r)
				}
			})
		}))
	}()
	st.roles.watchStop = func() { cancel(); <-done }
}

// overlayDHCP shows the gate in the DHCP status: while our server may not
// answer, the service only waits, and the status says why.
func (st *state) overlayDHCP(why string) {
	v := &st.status.DHCP
	if name := st.clusterName(); name != "" && v.Interface == st.cfg.Network.ClusterInterface {
		v.Interface = name
	}
	if v.State == api.DHCPOff || v.State == api.DHCPFailed || st.roles.dhcpOpen {
		return
	}
	srv, _ := st.roles.gate.Other()
	switch p := st.roles.decided.Problem; {
	case p != nil && p.Port:
		// The bridge stays the cluster side; the gate below decides.
		if why != "" && st.clusterName() != "" {
			v.State, v.Reason = api.DHCPProbing, why+" on "+st.clusterName()
		}
	case srv.IsValid():
		v.State, v.OtherServer = api.DHCPOtherServer, srv.String()
		iface := orNone(st.roles.watching)
		if st.roles.claimed == "" {
			v.Reason = fmt.Sprintf("another DHCP server (%v) answers on %s, so ours is not started; that network is a LAN, not the cluster side", srv, iface)
		} else {
			v.Reason = fmt.Sprintf("another DHCP server (%v) answers on %s, so ours is silent until it has been quiet for %v; turn one of them off", srv, iface, st.cfg.DHCP.Quiet.Duration)
		}
	case p != nil:
		v.State, v.Reason = api.DHCPWaiting, p.Line
		if other, ok := st.roles.before[p.Interface]; ok {
			v.State, v.OtherServer = api.DHCPOtherServer, other
			v.Reason = fmt.Sprintf("another DHCP server (%s) answers on %s, so ours is not started; %s", other, p.Interface, p.Line)
		}
	case st.clusterName() == "":
		v.State, v.Reason = api.DHCPWaiting, "no cluster interface yet: "+st.roles.decided.ClusterWhy
	case why != "":
		v.State, v.Reason = api.DHCPProbing, why+" on "+st.clusterName()
	}
}

// overlayNAT says in the NAT status what the unclaimed cluster side waits
// for (the keeper only knows it has none).
func (st *state) overlayNAT(cand, why string) {
	n := &st.status.NAT
	if n.State != api.NATWaiting || st.roles.claimed != "" {
		return
	}
	var w string
	l := st.net.links[cand]
	switch p := st.roles.decided.Problem; {
	case p != nil && !p.Port:
		w = "cluster side refused: " + p.Short
	case cand == "" && st.roles.decided.Cluster == "":
		w = "no cluster interface yet: " + st.roles.decided.ClusterWhy
	case cand == "":
		w = "waiting for the interfaces and routes to be read"
	case !l.Exists:
		w = fmt.Sprintf("cluster interface %s does not exist yet", cand)
	case why != "":
		w = why + " on " + cand
	default:
		w = "taking " + cand
	}
	n.Waiting = []string{w}
}

// rolesHealth: a LAN on the cluster side is a failure (the LED's uplink
// class), another DHCP server while ours serves a degradation.
func (st *state) rolesHealth(h *health) {
	if p := st.roles.decided.Problem; p != nil {
		h.fail(4, p.Short)
		h.fail(4, "swap cables?")
	}
	if st.roles.silenced {
		srv, _ := st.roles.gate.Other()
		// Short enough that a 16-column LCD shows what it is about.
		h.degrade(fmt.Sprintf("other DHCP server %v on %s; ours is silent", srv, st.roles.claimed))
	}
}

// rolesView is what status shows about the roles.
func (st *state) rolesView() *api.Roles {
	r := st.roles.decided
	v := &api.Roles{
		Uplink:  api.Role{Interface: r.Uplink, Why: r.UplinkWhy, Auto: st.cfg.Network.UplinkInterface == roles.Auto},
		Cluster: api.Role{Interface: r.Cluster, Why: r.ClusterWhy, Auto: st.cfg.Network.ClusterInterface == roles.Auto, Claimed: st.roles.claimed != "" && st.roles.claimed == r.Cluster},
	}
	if p := r.Problem; p != nil {
		v.Problem = p.Line
	}
	names := make([]string, 0, len(r.Refused))
	for n := range r.Refused {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		v.LeftAlone = append(v.LeftAlone, n+" "+r.Refused[n])
	}
	return v
}

// refreshLinkViews derives the uplink and cluster views from the latest
// snapshot and the decided names.
func (d *Daemon) refreshLinkViews(st *state) {
	ls := st.net.links
	upName, clName := st.uplinkName(), st.clusterName()
	up := linkView(ls[upName], upName)
	cl := linkView(ls[clName], clName)
	if up.Address != st.status.Uplink.Address || up.Interface != st.status.Uplink.Interface {
		if up.Address != st.status.Uplink.Address {
			d.log.Info("uplink address changed", "interface", orNone(upName), "from", orNone(st.status.Uplink.Address), "to", orNone(up.Address))
		}
		up.Since, up.Changes = time.Now(), st.status.Uplink.Changes+1
	} else {
		up.Since, up.Changes = st.status.Uplink.Since, st.status.Uplink.Changes
	}
	if cl.Address != st.status.Cluster.Address {
		cl.Since, cl.Changes = time.Now(), st.status.Cluster.Changes+1
	} else {
		cl.Since, cl.Changes = st.status.Cluster.Since, st.status.Cluster.Changes
	}
	st.status.Uplink, st.status.Cluster = up, cl
	if st.roles.known {
		st.status.Roles = st.rolesView()
	}
}

// bridgePorts says which interfaces may join a bridge: none that is
// refused (a LAN), and a wired port only once it passed its check.
type bridgePorts struct {
	refused map[string]string
	passed  map[string]bool
}

// excludedFromBridge is the bridges' Exclude: never a LAN as a port.
// Until the first decision, no wired port joins.
func (d *Daemon) excludedFromBridge(name string) bool {
	p := d.roles.bridgeOK.Load()
	if p == nil {
		return roles.IsWired(name)
	}
	if _, refused := p.refused[name]; refused {
		return true
	}
	return roles.IsWired(name) && !p.passed[name]
}

// autoBridge keeps the bridge of gadget links when the decision chose it
// and the configuration has no [bridge] of its own.
type autoBridge struct {
	ports  []string
	kick   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
	b      *bridge.Bridge
}

func (a *autoBridge) kickNow() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

func (a *autoBridge) stop() {
	a.cancel()
	<-a.done
	a.b.Close()
}

func (d *Daemon) autoBridge(st *state, r roles.Roles) {
	if st.cfg.Bridge.Enabled {
		return // the dhcp part keeps the configured bridge
	}
	want := r.Bridge
	ports := append(slices.Clone(st.cfg.Bridge.Ports), r.Ports...)
	if a := d.roles.auto; a != nil && (!want || !slices.Equal(a.ports, ports)) {
		a.stop()
		d.roles.auto = nil
		if !want {
			if b, err := bridge.New(bridge.Options{StateDir: st.cfg.Daemon.StateDir}); err == nil {
				changes, _ := b.Remove()
				for _, c := range changes {
					d.log.Info("bridge no longer needed", "change", c.Text)
				}
				b.Close()
			}
			st.status.Bridge = nil
		}
	}
	if !want {
		return
	}
	if st.status.Bridge == nil {
		st.status.Bridge = &api.Bridge{Name: st.cfg.Bridge.Name}
	}
	if d.roles.auto != nil {
		return
	}
	b, err := bridge.New(bridge.Options{Name: st.cfg.Bridge.Name, Ports: ports, StateDir: st.cfg.Daemon.StateDir, Exclude: d.excludedFromBridge})
	if err != nil {
		st.dhcp.bridgeErr = err.Error()
		return
	}
	ctx, cancel := context.WithCancel(d.roles.ctx)
	a := &autoBridge{ports: ports, kick: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{}), b: b}
	d.roles.auto = a
	log := d.log.With("part", "bridge")
	d.log.Info("keeping the bridge of the nodes' gadget links", "bridge", st.cfg.Bridge.Name, "ports", strings.Join(ports, " "))
	go func() {
		defer close(a.done)
		b.Keep(ctx, a.kick, bridgeRecheck, d.bridgeReport(ctx, log))
	}()
}
