package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
	"github.com/headnode/headnode/cmd/headnode/internal/config"
	"github.com/headnode/headnode/netcfg/bridge"
	"github.com/headnode/headnode/netcfg/change"
	"github.com/headnode/headnode/netcfg/dhcpd"
	"github.com/headnode/headnode/netcfg/links"
	"github.com/headnode/headnode/netcfg/subnet"
	"github.com/headnode/headnode/power/nodename"
)

// The dhcp part: the cluster's network services. The DHCP server for the
// nodes, and in ClusterHAT mode the bridge the nodes' USB gadget
// interfaces join as they appear.

// dhcpState is the dhcp part of the state (loop goroutine only).
type dhcpState struct {
	// target is the interface state last sent to the DHCP service.
	target     dhcpd.Target
	targetSent bool
	bridgeErr  string
}

// dhcpHandles are what the loop and handlers need from the running part.
type dhcpHandles struct {
	svc    atomic.Pointer[dhcpd.Service]
	bridge atomic.Pointer[bridgeRunner]
}

type bridgeRunner struct {
	b    *bridge.Bridge
	kick chan struct{}
}

// leaseFile is where the DHCP leases live in the state directory.
const leaseFile = "dhcp-leases.json"

// bridgeRecheck is the bridge's safety-net interval; link events do the
// real work.
const bridgeRecheck = 30 * time.Second

func dhcpChanged(old, new *config.Config) bool {
	return !reflect.DeepEqual(old.DHCP, new.DHCP) || !reflect.DeepEqual(old.Bridge, new.Bridge) ||
		!reflect.DeepEqual(old.Nodes, new.Nodes) || old.Network != new.Network || old.Daemon != new.Daemon ||
		old.DNSOn() != new.DNSOn() || old.DNS.Domain != new.DNS.Domain
}

func (d *Daemon) startDHCP(parent context.Context, cfg *config.Config) (stop func()) {
	ctx, cancel := context.WithCancel(parent)
	var wg sync.WaitGroup
	log := d.log.With("part", "dhcp")
	d.send(ctx, func(st *state) {
		st.dhcp = dhcpState{}
		st.status.DHCP = api.DHCP{State: api.DHCPOff}
		st.status.Bridge = nil
		if cfg.Bridge.Enabled {
			st.status.Bridge = &api.Bridge{Name: cfg.Bridge.Name}
		}
	})
	closeBridge := d.startBridge(ctx, &wg, cfg, log)
	d.startDHCPServer(ctx, &wg, cfg, log)
	// Hand the current interfaces to what just started.
	d.send(ctx, func(st *state) { d.dhcpOnLinks(st, st.net.links) })
	return func() {
		cancel()
		wg.Wait()
		d.dhcp.svc.Store(nil)
		d.dhcp.bridge.Store(nil)
		closeBridge()
	}
}

// startBridge keeps the ClusterHAT bridge when it is enabled; when it is
// not, it removes a bridge an earlier configuration created.
func (d *Daemon) startBridge(ctx context.Context, wg *sync.WaitGroup, cfg *config.Config, log *slog.Logger) (closeBridge func()) {
	bc := cfg.Bridge
	o := bridge.Options{StateDir: cfg.Daemon.StateDir, Exclude: d.excludedFromBridge}
	if bc.Enabled {
		o.Name, o.Ports = bc.Name, bc.Ports
	}
	b, err := bridge.New(o)
	if err != nil {
		log.Error("cannot manage the bridge", "err", err)
		if bc.Enabled {
			msg := err.Error()
			d.send(ctx, func(st *state) { st.dhcp.bridgeErr = msg; d.dhcpOnLinks(st, st.net.links) })
		}
		return func() {}
	}
	if !bc.Enabled && cfg.Network.ClusterInterface == config.Auto {
		// The roles part keeps the bridge of gadget links when it finds a
		// board; it is not ours to remove here.
		b.Close()
		return func() {}
	}
	if !bc.Enabled {
		changes, err := b.Remove()
		for _, c := range changes {
			log.Info("bridge no longer configured", "change", c.Text)
		}
		if err != nil {
			log.Error("removing the bridge headnode created failed", "err", err)
		}
		b.Close()
		return func() {}
	}
	r := &bridgeRunner{b: b, kick: make(chan struct{}, 1)}
	d.dhcp.bridge.Store(r)
	wg.Go(func() {
		b.Keep(ctx, r.kick, bridgeRecheck, d.bridgeReport(ctx, log))
	})
	return b.Close
}

// bridgeReport is what a bridge keeper reports to: its changes logged, an
// error kept in the state (which the DHCP part shows) once it changes.
func (d *Daemon) bridgeReport(ctx context.Context, log *slog.Logger) func([]change.Change, error) {
	return func(changes []change.Change, err error) {
		for _, c := range changes {
			log.Info("bridge", "change", c.Text)
		}
		msg := ""
		if err != nil {
			msg = err.Error()
			log.Error("bridge", "err", err)
		}
		d.send(ctx, func(st *state) {
			if st.dhcp.bridgeErr != msg {
				st.dhcp.bridgeErr = msg
				d.dhcpOnLinks(st, st.net.links)
			}
		})
	}
}

// startDHCPServer runs the DHCP service when it is enabled and the cluster
// subnet is headnode's (cluster_address set).
func (d *Daemon) startDHCPServer(ctx context.Context, wg *sync.WaitGroup, cfg *config.Config, log *slog.Logger) {
	off := func(reason string) {
		d.send(ctx, func(st *state) { st.status.DHCP = api.DHCP{State: api.DHCPOff, Reason: reason} })
	}
	dc := cfg.DHCP
	if !dc.Enabled {
		off("disabled in the configuration ([dhcp] enabled = false)")
		return
	}
	head, ok := cfg.Network.ClusterPrefix()
	if !ok {
		off("network.cluster_address is empty, so the cluster subnet is not headnode's to hand out")
		return
	}
	first, last, err := dc.PoolRange(head)
	if err != nil { // validated at load; kept as a state, not a panic
		off("pool: " + err.Error())
		return
	}
	srv, err := dhcpd.New(&dhcpd.Options{
		Address:      head,
		PoolFirst:    first,
		PoolLast:     last,
		Reservations: dhcpReservations(cfg, head, first, last),
		LeaseTime:    dc.LeaseTime.Duration,
		Domain:       dnsDomain(cfg),
		LeaseFile:    filepath.Join(cfg.Daemon.StateDir, leaseFile),
		Log:          log,
	})
	if srv == nil {
		msg := err.Error()
		log.Error("DHCP server not started", "err", err)
		d.send(ctx, func(st *state) { st.status.DHCP = api.DHCP{State: api.DHCPFailed, Reason: msg} })
		return
	}
	if err != nil {
		log.Warn("DHCP leases", "err", err)
	}
	iface := cfg.Network.ClusterInterface
	svc := dhcpd.NewService(srv, dhcpd.ServiceOptions{
		Interface: iface,
		Address:   head,
		// The roles part's watcher checks for other servers, before we
		// start and all the time we serve (dhcpOnLinks gates the target).
		Probe: 0,
		DNS:   dnsSource(cfg, head.Addr()),
		Log:   log,
		Report: func(s dhcpd.Status) {
			v := dhcpView(s, dc, head, first, last)
			d.send(ctx, func(st *state) { st.status.DHCP = v })
		},
	})
	d.dhcp.svc.Store(svc)
	wg.Go(func() { svc.Run(ctx) })
}

// maxNodes is the highest node number reserved by default: ClusterCTRL
// numbers nodes p1-p252.
const maxNodes = 252

// dhcpReservations pins the [[dhcp.static]] machines, and reserves each
// node's address for its name: p1..p252 at their [[nodes]] address or
// host 10+N, unless that falls in the pool (only the [[nodes]] entries
// are reserved there) or is already a static entry's.
func dhcpReservations(cfg *config.Config, head netip.Prefix, first, last netip.Addr) []dhcpd.Reservation {
	var rs []dhcpd.Reservation
	taken := map[netip.Addr]bool{head.Addr(): true}
	named := map[string]bool{}
	for _, s := range cfg.DHCP.Static {
		mac, err := net.ParseMAC(s.MAC)
		if err != nil {
			continue // validated at load
		}
		a, err := netip.ParseAddr(s.Address)
		if s.Address == "" {
			n, err := nodename.Parse(s.Name)
			if err != nil {
				continue // validated at load
			}
			var ok bool
			if a, ok = cfg.NodeAddress(n); !ok {
				continue
			}
		} else if err != nil || !head.Masked().Contains(a) {
			// Outside the subnet "auto" chose: validation could not
			// know it; the entry is left out, not the whole server.
			continue
		}
		rs = append(rs, dhcpd.Reservation{MAC: mac, Name: s.Name, Addr: a})
		taken[a], named[s.Name] = true, true
	}
	listed := map[string]bool{}
	for _, nd := range cfg.Nodes {
		listed[nd.Name] = true
	}
	inPool := func(a netip.Addr) bool { return !a.Less(first) && !last.Less(a) }
	reserve := func(n int) {
		name := nodename.Name(n)
		a, ok := cfg.NodeAddress(n)
		if named[name] || !ok || taken[a] || !dhcpd.IsHostAddr(head, a) || (inPool(a) && !listed[name]) {
			return
		}
		rs = append(rs, dhcpd.Reservation{Name: name, Addr: a})
		taken[a], named[name] = true, true
	}
	for _, nd := range cfg.Nodes {
		if n, err := nodename.Parse(nd.Name); err == nil {
			reserve(n)
		}
	}
	// Every node the subnet has room for below the pool (subnet.Of):
	// p1-p252 at least, as ClusterCTRL numbers them, up to 2037 in a /20.
	for n := 1; n <= max(maxNodes, min(subnet.Of(head).Nodes, subnet.MaxNodes)); n++ {
		reserve(n)
	}
	return rs
}

// dnsDomain is the domain the DHCP server hands out: [dns] domain while
// the DNS server runs, else none.
func dnsDomain(cfg *config.Config) string {
	if cfg.DNSOn() {
		return cfg.DNS.Domain
	}
	return ""
}

// dnsSource returns what the service calls for the resolvers to hand out:
// [dhcp] dns, else the head itself while its DNS server runs, else the
// uplink's resolvers.
func dnsSource(cfg *config.Config, head netip.Addr) func() []netip.Addr {
	dc := cfg.DHCP
	parse := func(list []string) []netip.Addr {
		var out []netip.Addr
		for _, s := range list {
			if a, err := netip.ParseAddr(s); err == nil {
				out = append(out, a)
			}
		}
		return out
	}
	if len(dc.DNS) > 0 {
		fixed := parse(dc.DNS)
		return func() []netip.Addr { return fixed }
	}
	if cfg.DNSOn() {
		return func() []netip.Addr { return []netip.Addr{head} }
	}
	src := dhcpd.DNSSource{Head: head, Fallback: parse(dc.FallbackDNS)}
	return src.Resolvers
}

func dhcpView(s dhcpd.Status, dc config.DHCP, head netip.Prefix, first, last netip.Addr) api.DHCP {
	v := api.DHCP{
		State:        string(s.State),
		Reason:       s.Reason,
		Interface:    s.Interface,
		Pool:         first.String() + "-" + last.String(),
		Router:       head.Addr().String(),
		LeaseSeconds: int64(dc.LeaseTime.Seconds()),
		Packets: api.DHCPPackets{
			Received: s.Stats.Received, Offers: s.Stats.Offers, Acks: s.Stats.Acks, Naks: s.Stats.Naks,
			Dropped: s.Stats.Dropped,
		},
		SaveError:   s.Stats.SaveError,
		LeaseWrites: s.Stats.LeaseWrites,
		PingChecks:  s.Stats.PingChecks,
		PingInUse:   s.Stats.PingInUse,
	}
	for _, a := range s.DNS {
		v.DNS = append(v.DNS, a.String())
	}
	switch {
	case s.OtherServer.IsValid():
		v.OtherServer = s.OtherServer.String()
	case s.Stats.OtherServer.IsValid():
		v.OtherServer = s.Stats.OtherServer.String()
	}
	for _, l := range s.Leases {
		al := api.Lease{Address: l.Addr.String(), MAC: l.MAC.String(), Hostname: l.Hostname, Expires: l.Expires, Reserved: l.Reserved, Offered: l.Offered}
		if _, err := nodename.Parse(l.Hostname); l.Reserved && err == nil {
			al.Node = l.Hostname
		}
		v.Leases = append(v.Leases, al)
	}
	return v
}

func (st *state) dhcpHealth(h *health) {
	v := st.status.DHCP
	switch {
	case v.State == api.DHCPFailed:
		h.degrade("DHCP server not running: " + v.Reason)
	case v.State == api.DHCPServing && v.OtherServer != "":
		h.degrade(fmt.Sprintf("another DHCP server (%s) also answers on %s", v.OtherServer, v.Interface))
	}
	if b := st.status.Bridge; b != nil && b.Error != "" {
		h.degrade("bridge " + b.Name + ": " + b.Error)
	}
}

// dhcpOnLinks is called on the loop with every interface snapshot: it
// tells the DHCP service about the cluster interface, shows which node is
// on which bridge port, and has the bridge take in new gadget interfaces.
func (d *Daemon) dhcpOnLinks(st *state, links map[string]links.State) {
	if svc := d.dhcp.svc.Load(); svc != nil {
		name := st.roles.claimed
		head := st.clusterAddress()
		l := links[name]
		t := dhcpd.Target{Interface: name, Index: l.Index, HasAddress: l.Exists && slices.Contains(l.IPv4, head) && st.roles.dhcpOpen}
		if !l.Exists {
			t.Index = 0
		}
		if !st.dhcp.targetSent || t != st.dhcp.target {
			svc.SetTarget(t)
			st.dhcp.target, st.dhcp.targetSent = t, true
		}
	}
	if st.status.Bridge == nil {
		return
	}
	bridgeName := st.cfg.Bridge.Name
	br := links[bridgeName]
	v := &api.Bridge{Name: bridgeName, Exists: br.Exists, Error: st.dhcp.bridgeErr}
	r := d.dhcp.bridge.Load()
	stray := !br.Exists
	for _, l := range links {
		if br.Exists && l.Master == br.Index {
			node, _ := bridge.GadgetNode(l.Name)
			v.Ports = append(v.Ports, api.BridgePort{Interface: l.Name, Node: node, Up: l.Up, Carrier: l.Carrier})
		}
		if r != nil && r.b.IsPort(l.Name) && (l.Master != br.Index || !l.Up) {
			stray = true
		}
	}
	slices.SortFunc(v.Ports, func(a, b api.BridgePort) int { return strings.Compare(a.Interface, b.Interface) })
	st.status.Bridge = v
	if stray && r != nil {
		select {
		case r.kick <- struct{}{}:
		default:
		}
	}
}
