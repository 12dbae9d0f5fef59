package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
	"github.com/headnode/headnode/cmd/headnode/internal/config"
	"github.com/headnode/headnode/hw/wake"
	"github.com/headnode/headnode/netcfg/bridge"
	"github.com/headnode/headnode/netcfg/links"
	"github.com/headnode/headnode/netcfg/netlinksafe"
	"github.com/headnode/headnode/netcfg/routes"
	"github.com/headnode/headnode/netcfg/subnet"
	"github.com/headnode/headnode/power"
)

// The subnet part: with cluster_address = "auto" the daemon chooses the
// cluster subnet (package netcfg/subnet) around every address and route
// on the head's other interfaces, keeps the choice in the state directory
// so that the nodes keep their addresses across restarts, and when a
// network plugged in later overlaps it, moves the cluster to the next
// free candidate and moves the nodes with it:
//
//   - USB gadget nodes (ClusterHAT, ClusterCTRL): the boards' USB hub is
//     switched off for carrierOff and on again, which disconnects every
//     gadget: each Zero's usb0 loses carrier, and its DHCP client asks
//     again when it comes back.
//   - Ethernet nodes: the cluster's Ethernet ports are held down for
//     carrierOff, so a node cabled to one of them loses carrier too.
//
// Both are held for carrierOff because NetworkManager (Raspberry Pi OS
// since Bookworm) ignores a carrier loss shorter than its grace period
// (CARRIER_WAIT_TIME_MS, 6 s, in src/core/devices/nm-device.c); dhcpcd
// (Bullseye and earlier) drops its lease at once on "carrier lost" and
// starts over on "carrier acquired" (dhcpcd.c, dhcpcd_handlecarrier). While
// they are held, the network and dhcp parts are stopped, so that nothing
// brings the ports back early; they start again with the new address.

// carrierOff is how long the nodes' links are held without carrier.
const carrierOff = 7 * time.Second

// subnetRecheck is how often routes (which the link watcher does not
// see: a VPN's, say) are checked against the cluster subnet besides at
// every route change: a safety net, as the route watcher's relist is.
const subnetRecheck = time.Minute

// subnetState is the subnet part of the state (loop goroutine only).
type subnetState struct {
	// file is cluster_address as configured ("auto", "" or an address).
	file   string
	layout subnet.Layout // in use; zero when none
	// problem: nothing was put on the cluster side (start or reload),
	// or a fixed address clashes now; one line.
	problem  string
	moving   bool
	moves    int
	lastMove time.Time
	from     string
	why      string
}

// inUse is a prefix taken on the head node, and by what.
type inUse struct {
	p    netip.Prefix
	what string // "eth1's network 10.213.0.0/24", "a route to 10.0.0.0/8 via wg0"
	addr bool   // an interface's own network (not only a route)
}

func prefixes(u []inUse) []netip.Prefix {
	out := make([]netip.Prefix, len(u))
	for i, x := range u {
		out[i] = x.p
	}
	return out
}

func describe(u []inUse, p netip.Prefix) string {
	for _, x := range u {
		if x.p == p {
			return x.what
		}
	}
	return p.String()
}

// clusterSide reports whether an interface is the cluster's own: the
// cluster interface, its bridge ports, and what would join the bridge
// (gadget links before they do). Those are never "in use elsewhere".
//
// With cluster_interface = "auto" not yet decided (the roles part), the
// bridge and the node gadget links count as the cluster's, as the roles
// part would take them.
func clusterSide(cfg *config.Config, name string, master, clusterIndex int) bool {
	if name == cfg.Network.ClusterInterface || name == "lo" || (clusterIndex != 0 && master == clusterIndex) {
		return true
	}
	auto := cfg.Network.ClusterInterface == config.Auto
	if _, gadget := bridge.GadgetNode(name); gadget && (auto || cfg.Bridge.Enabled) {
		return true
	}
	if auto && name == cfg.Bridge.Name {
		return true
	}
	if cfg.Bridge.Enabled || auto {
		for _, pat := range cfg.Bridge.Ports {
			if ok, _ := path.Match(pat, name); ok {
				return true
			}
		}
	}
	return false
}

// holds reports whether addrs include exactly p (address and length).
func holds(addrs []netlink.Addr, p netip.Prefix) bool {
	if !p.IsValid() {
		return false
	}
	for _, ad := range addrs {
		ip, ok := netip.AddrFromSlice(ad.IP.To4())
		if ones, _ := ad.Mask.Size(); ok && ad.IPNet != nil && netip.PrefixFrom(ip, ones) == p {
			return true
		}
	}
	return false
}

var (
	loopback  = netip.MustParsePrefix("127.0.0.0/8")
	linkLocal = netip.MustParsePrefix("169.254.0.0/16")
)

// readInUse lists every IPv4 network on the head's other interfaces and
// every route through them (all routing tables: Tailscale's live in table
// 52), except default routes. An interface that holds exactly own, the
// head address chosen before, is the cluster's too: with cluster_interface
// = "auto" not yet decided at a restart, it is where our address stayed.
func readInUse(cfg *config.Config, own netip.Prefix) ([]inUse, error) {
	h, err := netlinksafe.Open(nil)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	ls, err := netlinksafe.LinkList(h)
	if err != nil {
		return nil, err
	}
	names := map[int]string{}
	side := map[int]bool{}
	clusterIndex := 0
	for _, l := range ls {
		if l.Attrs().Name == cfg.Network.ClusterInterface {
			clusterIndex = l.Attrs().Index
		}
	}
	var out []inUse
	for _, l := range ls {
		a := l.Attrs()
		names[a.Index] = a.Name
		if clusterSide(cfg, a.Name, a.MasterIndex, clusterIndex) {
			side[a.Index] = true
			continue
		}
		addrs, err := netlinksafe.AddrList(h, l, netlink.FAMILY_V4)
		if err != nil {
			return nil, err
		}
		if holds(addrs, own) {
			side[a.Index] = true
			continue
		}
		for _, ad := range addrs {
			ip, ok := netip.AddrFromSlice(ad.IP.To4())
			if !ok || ad.IPNet == nil {
				continue
			}
			ones, _ := ad.Mask.Size()
			p := netip.PrefixFrom(ip, ones).Masked()
			if loopback.Overlaps(p) || linkLocal.Contains(ip) {
				continue
			}
			out = append(out, inUse{p: p, what: fmt.Sprintf("%s's network %s", a.Name, p), addr: true})
		}
	}
	var routes []netlink.Route
	for range 5 {
		routes, err = h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return out, err
	}
	for _, r := range routes {
		if r.Dst == nil || r.Table == unix.RT_TABLE_LOCAL || side[r.LinkIndex] {
			continue
		}
		ip, ok := netip.AddrFromSlice(r.Dst.IP.To4())
		if !ok {
			continue
		}
		ones, _ := r.Dst.Mask.Size()
		p := netip.PrefixFrom(ip, ones).Masked()
		if p.Bits() == 0 || loopback.Overlaps(p) || linkLocal.Overlaps(p) {
			continue
		}
		what := "a route to " + p.String()
		if n := names[r.LinkIndex]; n != "" {
			what += " via " + n
		}
		out = append(out, inUse{p: p, what: what})
	}
	return out, nil
}

// resolveSubnet returns the configuration the parts run with: for
// cluster_address = "auto" the chosen subnet's head address, for a fixed
// address that clashes with another interface's network nothing on the
// cluster side (no address, NAT or DHCP) and a one-line problem.
func (d *Daemon) resolveSubnet(file *config.Config, prev subnetState) (*config.Config, subnetState) {
	sub := subnetState{file: file.Network.ClusterAddress, moves: prev.moves, lastMove: prev.lastMove, from: prev.from, why: prev.why}
	eff := *file
	refuse := func(problem string) (*config.Config, subnetState) {
		sub.problem = problem
		d.log.Error("cluster subnet refused; nothing is changed on the cluster side", "problem", problem)
		eff.Network.ClusterAddress, eff.Network.NAT, eff.DHCP.Enabled = "", false, false
		return &eff, sub
	}
	switch file.Network.ClusterAddress {
	case "":
		return &eff, sub
	case config.AutoAddress:
		keep := subnet.Load(file.Daemon.StateDir)
		if prev.file == config.AutoAddress && prev.layout.Head.IsValid() {
			keep = prev.layout.Head
		}
		uses, err := readInUse(file, keep)
		if err != nil {
			d.log.Warn("cannot read every address and route; choosing from what could be read", "err", err)
		}
		l, err := subnet.Choose(prefixes(uses), file.Subnet.CandidatePrefixes(), file.NodeCount(), keep)
		if err != nil {
			return refuse(fmt.Sprintf("network.cluster_address = \"auto\": %v", err))
		}
		if l.Head != keep {
			if err := subnet.Save(file.Daemon.StateDir, l.Head); err != nil {
				d.log.Error("cannot keep the chosen subnet for the next start", "err", err)
			}
			d.log.Info("cluster subnet chosen", "address", l.Head.String(), "pool", l.PoolFirst.String()+"-"+l.PoolLast.String(), "nodes", l.Nodes)
		}
		eff.Network.ClusterAddress, sub.layout = l.Head.String(), l
		return &eff, sub
	}
	head, err := netip.ParsePrefix(file.Network.ClusterAddress)
	if err != nil { // validated at load
		return refuse(fmt.Sprintf("network.cluster_address %q: %v", file.Network.ClusterAddress, err))
	}
	uses, _ := readInUse(file, head)
	if msg := fixedClash(file, head, uses); msg != "" {
		return refuse(msg)
	}
	sub.layout = subnet.Of(head)
	return &eff, sub
}

// fixedClash is the line refusing a fixed cluster address that overlaps
// another interface's network, with a free subnet to use instead; "" if
// it does not. Routes alone do not count: the cluster's own route is the
// more specific one and wins.
func fixedClash(cfg *config.Config, head netip.Prefix, uses []inUse) string {
	var nets []inUse
	for _, u := range uses {
		if u.addr {
			nets = append(nets, u)
		}
	}
	o, clash := subnet.Clash(head.Masked(), prefixes(nets))
	if !clash {
		return ""
	}
	free := "no candidate is free either; list a free subnet"
	if l, err := subnet.Choose(prefixes(uses), cfg.Subnet.CandidatePrefixes(), cfg.NodeCount(), netip.Prefix{}); err == nil {
		free = fmt.Sprintf("%s is free: use it", l.Head)
	}
	side := cfg.Network.ClusterInterface
	if side == config.Auto {
		side = "the cluster side"
	}
	return fmt.Sprintf("network.cluster_address = %q: the cluster network %s overlaps %s, so nothing was changed on %s; %s, or cluster_address = \"auto\"",
		cfg.Network.ClusterAddress, head.Masked(), describe(nets, o), side, free)
}

func subnetChanged(old, new *config.Config) bool {
	return old.Network != new.Network || !reflect.DeepEqual(old.Subnet, new.Subnet) || old.Daemon != new.Daemon
}

// startSubnet checks the cluster subnet against the routes at every route
// change (a VPN's routes, say, which the link watcher does not see) and
// every subnetRecheck; addresses are checked on every interface change
// (subnetOnLinks).
func (d *Daemon) startSubnet(parent context.Context, cfg *config.Config) (stop func()) {
	ctx, cancel := context.WithCancel(parent)
	var wg sync.WaitGroup
	changed := make(chan struct{}, 1)
	wg.Go(func() {
		routes.Watch(ctx, routes.WatchOptions{Log: d.log.With("part", "subnet"), Changed: func() {
			select {
			case changed <- struct{}{}:
			default:
			}
		}}, func([]routes.Default) {})
	})
	wg.Go(func() {
		t := wake.NewTicker(subnetRecheck)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-changed:
			case <-t.C:
			}
			d.subnetCheckOffLoop(ctx)
		}
	})
	return func() { cancel(); wg.Wait() }
}

// subnetCheckOffLoop is subnetCheck with the netlink dumps made on the
// subnet part's goroutine: it runs at every route change, which comes
// with every uplink change, and the loop must not wait for the dumps
// then (the LCD's new address would).
func (d *Daemon) subnetCheckOffLoop(ctx context.Context) {
	type view struct {
		cfg  *config.Config
		head netip.Prefix
	}
	got := make(chan view, 1)
	d.send(ctx, func(st *state) {
		if s := &st.subnet; s.moving || !s.layout.Head.IsValid() {
			got <- view{}
		} else {
			got <- view{st.subnetView(), s.layout.Head}
		}
	})
	var v view
	select {
	case v = <-got:
	case <-ctx.Done():
		return
	}
	if v.cfg == nil {
		return
	}
	uses, err := readInUse(v.cfg, v.head)
	d.send(ctx, func(st *state) {
		if s := &st.subnet; !s.moving && s.layout.Head == v.head {
			d.subnetJudge(st, uses, err)
		}
	})
}

// subnetOnLinks is called with every interface snapshot: an address on
// another interface inside the chosen subnet (the uplink's DHCP lease on
// a network that uses it) moves the cluster at once.
func (d *Daemon) subnetOnLinks(st *state, ls map[string]links.State) {
	if st.subnet.file != config.AutoAddress || st.subnet.moving || !st.subnet.layout.Head.IsValid() {
		return
	}
	cfg := st.subnetView()
	clusterIndex := ls[cfg.Network.ClusterInterface].Index
	for _, l := range ls {
		if clusterSide(cfg, l.Name, l.Master, clusterIndex) || slices.Contains(l.IPv4, st.subnet.layout.Head) {
			continue
		}
		for _, p := range l.IPv4 {
			if p.Masked().Overlaps(st.subnet.layout.Subnet) {
				d.subnetCheck(st)
				return
			}
		}
	}
}

// subnetCheck compares the subnet in use with everything in use
// elsewhere: a chosen subnet that clashes moves; a fixed one is reported.
func (d *Daemon) subnetCheck(st *state) {
	s := &st.subnet
	if s.moving || !s.layout.Head.IsValid() {
		return
	}
	uses, err := readInUse(st.subnetView(), s.layout.Head)
	d.subnetJudge(st, uses, err)
}

// subnetJudge decides from what is in use (readInUse) whether the
// cluster subnet clashes, and moves it if it is automatic.
func (d *Daemon) subnetJudge(st *state, uses []inUse, err error) {
	s := &st.subnet
	if err != nil && len(uses) == 0 {
		return
	}
	if s.file != config.AutoAddress {
		s.problem = fixedClash(st.cfg, s.layout.Head, uses)
		return
	}
	o, clash := subnet.Clash(s.layout.Subnet, prefixes(uses))
	if !clash {
		return
	}
	why := describe(uses, o) + " overlaps the cluster network " + s.layout.Subnet.String()
	l, err := subnet.Choose(prefixes(uses), st.cfg.Subnet.CandidatePrefixes(), st.cfg.NodeCount(), netip.Prefix{})
	if err != nil {
		msg := fmt.Sprintf("%s and the cluster cannot move: %v", why, err)
		if s.problem != msg {
			d.log.Error("cluster subnet clashes", "problem", msg)
		}
		s.problem = msg
		return
	}
	d.renumber(st, l, why)
}

// renumber moves the cluster to l: the hub off (on the power part still
// running), then the Ethernet ports held down with the network and dhcp
// parts stopped, the other parts restarted with the new address; after
// carrierOff everything is started again and the hub switched on.
func (d *Daemon) renumber(st *state, l subnet.Layout, why string) {
	s := &st.subnet
	d.log.Warn("moving the cluster to another subnet", "from", s.layout.Head.String(), "to", l.Head.String(), "because", why)
	if err := subnet.Save(st.cfg.Daemon.StateDir, l.Head); err != nil {
		d.log.Error("cannot keep the new subnet for the next start", "err", err)
	}
	s.moving, s.from, s.why, s.problem = true, s.layout.Subnet.String(), why, ""
	cfg := *st.cfg
	cfg.Network.ClusterAddress = l.Head.String()
	ctx := d.run.ctx
	go func() {
		hubOff := d.hubs(ctx, "off")
		d.send(ctx, func(st *state) { d.moveHold(st, &cfg, l, hubOff) })
	}()
}

func (d *Daemon) moveHold(st *state, cfg *config.Config, l subnet.Layout, hubOff bool) {
	ports := ethernetPorts(st)
	old := st.cfg
	st.cfg, st.subnet.layout = cfg, l
	// Stopped first: the bridge part would set its ports up again.
	d.restartChanged(st, old, cfg, "network", "dhcp")
	setLinks(ports, false, d)
	// A daemon stopped meanwhile leaves no port down and no hub off.
	d.run.unhold = func() {
		setLinks(ports, true, d)
		if hubOff {
			d.hubs(context.Background(), "on")
		}
	}
	ctx := d.run.ctx
	time.AfterFunc(carrierOff, func() {
		d.send(ctx, func(st *state) { d.moveResume(st, ports, hubOff) })
	})
}

func (d *Daemon) moveResume(st *state, ports []string, hubOff bool) {
	d.run.unhold = nil
	setLinks(ports, true, d)
	d.resume(st)
	s := &st.subnet
	s.moving, s.moves, s.lastMove = false, s.moves+1, time.Now()
	d.log.Info("cluster moved; the nodes' links are back", "address", s.layout.Head.String(), "ethernet_ports", strings.Join(ports, " "), "hub_cycled", hubOff)
	if hubOff {
		ctx := d.run.ctx
		go d.hubs(ctx, "on")
	}
}

// hubs switches every board's USB hub that can be switched; for boards
// where none can ("off" unsupported, as on ClusterCTRL, whose firmware
// only cycles), "off" asks for a cycle instead. It reports whether a hub
// was switched off (and so must be switched on).
func (d *Daemon) hubs(ctx context.Context, what string) bool {
	m := d.power.manager.Load()
	if m == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := m.Do(ctx, power.Request{Op: "hub", Hub: what})
	var ie *power.InputError
	if what == "off" && errors.As(err, &ie) {
		res, err = m.Do(ctx, power.Request{Op: "hub", Hub: "reset"})
		d.log.Info("USB hub cycled so that the gadget nodes ask for new leases", "changes", strings.Join(res.Changes, "; "), "err", err)
		return false
	}
	d.log.Info("USB hub "+what+" for the move", "changes", strings.Join(res.Changes, "; "), "err", err)
	return what == "off" && err == nil && len(res.Changes) > 0
}

// ethernetPorts are the cluster's Ethernet ports that carry nodes: the
// bridge's ports that are not USB gadget links, or the cluster interface
// itself without a bridge.
func ethernetPorts(st *state) []string {
	cfg := st.subnetView()
	cl := cfg.Network.ClusterInterface
	ls := st.net.links
	if !cfg.Bridge.Enabled {
		if ls[cl].Exists {
			return []string{cl}
		}
		return nil
	}
	br := ls[cfg.Bridge.Name]
	var out []string
	for _, l := range ls {
		if _, gadget := bridge.GadgetNode(l.Name); br.Exists && l.Master == br.Index && !gadget {
			out = append(out, l.Name)
		}
	}
	return out
}

func setLinks(names []string, up bool, d *Daemon) {
	if len(names) == 0 {
		return
	}
	h, err := netlinksafe.Open(nil)
	if err != nil {
		d.log.Error("cannot cycle the cluster's Ethernet ports", "err", err)
		return
	}
	defer h.Close()
	for _, n := range names {
		l, err := netlinksafe.LinkByName(h, n)
		if err != nil || l == nil {
			continue
		}
		if up {
			err = h.LinkSetUp(l)
		} else {
			err = h.LinkSetDown(l)
		}
		if err != nil {
			d.log.Error("cannot cycle a cluster Ethernet port", "interface", n, "up", up, "err", err)
		}
	}
}

// subnetHealth: a refused subnet is a configuration failure, as is a
// fixed address that clashes now; it also shows the subnet in status.
func (st *state) subnetHealth(h *health) {
	s := st.subnet
	v := api.Subnet{Problem: s.problem, Moving: s.moving, Moves: s.moves, LastMove: s.lastMove, From: s.from, Why: s.why}
	switch s.file {
	case "":
		v.Mode = "off"
	case config.AutoAddress:
		v.Mode = "auto"
	default:
		v.Mode = "fixed"
	}
	if s.layout.Head.IsValid() {
		v.Address, v.Nodes = s.layout.Head.String(), s.layout.Nodes
		v.Pool = s.layout.PoolFirst.String() + "-" + s.layout.PoolLast.String()
	}
	st.status.Subnet = v
	if s.problem != "" {
		h.fail(1, s.problem)
	}
	if s.moving {
		h.degrade("cluster moving to " + s.layout.Head.String() + ": " + s.why)
	}
}

// subnetView is the configuration as the subnet part needs to see it:
// with cluster_interface = "auto", the interface the roles part decided
// on (the bridge counting as enabled when it is that one).
func (st *state) subnetView() *config.Config {
	c := *st.cfg
	if n := st.clusterName(); n != "" && c.Network.ClusterInterface == config.Auto {
		c.Network.ClusterInterface = n
		if n == c.Bridge.Name {
			c.Bridge.Enabled = true
		}
	}
	return &c
}
