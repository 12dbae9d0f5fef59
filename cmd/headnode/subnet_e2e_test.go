package main

// End-to-end tests of the cluster subnet that clashes with nothing: the
// daemon with no network settings (cluster_address = "auto") on a LAN
// that uses what used to be headnode's fixed subnet, and a cluster moved
// to a network that overlaps the subnet it chose, whose nodes (emulated
// ClusterHAT gadgets and an Ethernet node) follow it to the next one.

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
	"github.com/headnode/headnode/hw/emu/boards"
	"github.com/headnode/headnode/netcfg/dhcpd/dhcptest"
	"github.com/headnode/headnode/netcfg/sandbox"
)

// autoConfig writes a configuration with no [network] settings but the
// interfaces' names where the defaults do not fit: cluster_address is
// the default, "auto".
func subnetConfig(t *testing.T, dir, extra string) string {
	t.Helper()
	path := filepath.Join(dir, "config.toml")
	text := fmt.Sprintf(`%s
[control]
socket = %q

[daemon]
state_dir = %q

[lcd]
enabled = false

[led]
enabled = false
`, extra, filepath.Join(dir, "control.sock"), filepath.Join(dir, "state"))
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// everHeld records, from now on, every cluster address the daemon
// publishes that is inside bad.
func everHeld(t *testing.T, d *daemonProc, bad netip.Prefix) func() []string {
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var seen []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			d.client.Watch(ctx, func(s *api.Status) bool {
				if p, err := netip.ParsePrefix(s.Cluster.Address); err == nil && bad.Contains(p.Addr()) {
					mu.Lock()
					seen = append(seen, s.Cluster.Address)
					mu.Unlock()
				}
				return true
			})
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen...)
	}
}

// waitUntil polls cond every 20 ms for up to timeout.
func waitUntil(t *testing.T, what string, timeout time.Duration, cond func() bool) time.Time {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("not %s within %v", what, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Must show 2: a LAN on 192.168.50.0/24 with its router at .1 (the
// default LAN of a whole family of consumer routers, and headnode's old
// fixed cluster subnet), busybox udhcpd serving it, no network settings;
// Docker's bridge and a VPN route on the head too.
// The cluster gets another subnet, the head never holds .1, the router
// stays reachable from the head and the nodes, and the nodes reach beyond
// the router through NAT.
func TestE2ESubnetAvoidsTheLAN(t *testing.T) {
	dhcptest.Need(t)
	tp := newTopo(t, false) // inside: a node; outside: the LAN's router
	far, err := sandbox.New(strings.TrimSuffix(tp.head.Name, "head") + "far")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { far.Close() })
	must(t, sandbox.Veth(tp.head, "eth1", tp.outside, "lan0"))
	must(t, sandbox.Veth(tp.head, "eth0", tp.inside, "in0"))
	must(t, tp.outside.AddAddr("lan0", "192.168.50.1/24"))
	must(t, sandbox.Veth(tp.outside, "wan0", far, "wan0"))
	must(t, tp.outside.AddAddr("wan0", "10.98.0.1/24"))
	must(t, far.AddAddr("wan0", "10.98.0.2/24"))
	must(t, far.Route("192.168.50.0/24", "10.98.0.1"))
	mustRun(t, tp.outside, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	if _, err := dhcptest.Udhcpd(t, tp.outside, "lan0", "192.168.50.1", "192.168.50.100", "192.168.50.150", t.TempDir()); err != nil {
		t.Fatal(err)
	}

	// Docker's bridge, and a VPN whose route to 10.213.0.0/16 lives in a
	// table of its own (Tailscale's 52): the first candidate is taken.
	mustRun(t, tp.head, "ip", "link", "add", "docker0", "type", "bridge")
	mustRun(t, tp.head, "ip", "addr", "add", "172.17.0.1/16", "dev", "docker0")
	mustRun(t, tp.head, "ip", "link", "add", "tailscale0", "type", "veth", "peer", "name", "tsp0")
	mustRun(t, tp.head, "ip", "link", "set", "tsp0", "up")
	mustRun(t, tp.head, "ip", "link", "set", "tailscale0", "up")
	mustRun(t, tp.head, "ip", "addr", "add", "100.101.102.103/32", "dev", "tailscale0")
	mustRun(t, tp.head, "ip", "route", "add", "10.213.0.0/16", "dev", "tailscale0", "table", "52")

	// The daemon first, the uplink's lease after: the harder order.
	d := tp.startDaemon(t, subnetConfig(t, tp.dir, ""))
	held := everHeld(t, d, netip.MustParsePrefix("192.168.50.0/24"))
	start := time.Now()
	up, err := dhcptest.Udhcpc(tp.head, "eth1", dhcptest.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if up.Router != "192.168.50.1" || !netip.MustParsePrefix("192.168.50.0/24").Contains(up.Address.Addr()) {
		t.Fatalf("the uplink's lease from the LAN: %+v", up)
	}
	lanAddr := up.Address.Addr().String()
	s, at := d.waitFor(t, "the cluster on a subnet of its own, NAT and DHCP up", func(s *api.Status) bool {
		return s.Uplink.Address == up.Address.String() && s.Cluster.Address != "" && s.Cluster.Address == s.Subnet.Address &&
			s.NAT.State == api.NATOK && serving(s)
	})
	t.Logf("uplink lease %s from the LAN's udhcpd; cluster on %s (%s), settled %v after the lease was asked for",
		up.Address, s.Subnet.Address, s.Subnet.Mode, at.Sub(start).Round(time.Millisecond))
	if s.Subnet.Mode != "auto" || s.Subnet.Address != "172.16.231.1/24" || s.Subnet.Pool != "172.16.231.128-172.16.231.254" {
		t.Errorf("subnet %+v; want the second candidate, 172.16.231.1/24 (the VPN's route covers the first)", s.Subnet)
	}
	if s.Health.State != api.HealthOK {
		t.Errorf("health %+v", s.Health)
	}

	node, err := dhcptest.Udhcpc(tp.inside, "in0", dhcptest.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if node.Router != "172.16.231.1" || node.Address.Masked().String() != "172.16.231.0/24" {
		t.Errorf("the node's lease %+v; want one in 172.16.231.0/24 with the head as router", node)
	}
	for _, c := range []struct {
		what     string
		from, to *sandbox.NS
		addr     string
	}{
		{"the head reaching the LAN's router", tp.head, tp.outside, "192.168.50.1"},
		{"a node reaching the LAN's router", tp.inside, tp.outside, "192.168.50.1"},
		{"a node reaching beyond the router", tp.inside, far, "10.98.0.2"},
	} {
		if src, err := dial(c.from, c.to, nextAddr(c.addr), 2*time.Second); err != nil || src != lanAddr {
			t.Errorf("%s: seen as %q, %v; want the head's LAN address %s", c.what, src, err, lanAddr)
		}
	}
	out, _ := tp.head.Run("ip", "-4", "-o", "addr", "show")
	if strings.Contains(out, "192.168.50.1/") || len(held()) > 0 {
		t.Errorf("the head held the router's subnet on the cluster side (published %v):\n%s", held(), out)
	}
}

// gadgets emulates ClusterHAT Pi Zeros on USB: node pN's link (ethpiN on
// the head, usb0 in its namespace, the gadget's MAC 00:22:82:ff:ff:0N)
// is there while the node is powered and the emulated board's USB hub is
// on, as a real hub takes its gadgets with it. Each time the link comes,
// the node asks for a lease with busybox udhcpc, as the Zero's dhcpcd or
// NetworkManager does when usb0 gets carrier back.
type gadgets struct {
	mu     sync.Mutex
	ns     map[int]*sandbox.NS
	leases map[int][]stampedLease
}

type stampedLease struct {
	l  dhcptest.Lease
	at time.Time
}

func newGadgets(t *testing.T, tp *topo, d *daemonProc, stateDir string, nodes ...int) *gadgets {
	g := &gadgets{ns: map[int]*sandbox.NS{}, leases: map[int][]stampedLease{}}
	for _, n := range nodes {
		ns, err := sandbox.New(fmt.Sprintf("%sg%d", strings.TrimSuffix(tp.head.Name, "head"), n))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ns.Close() })
		g.ns[n] = ns
	}
	base := t.TempDir()
	sysDir := filepath.Join(stateDir, "sim", "sys")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	linked := map[int]bool{}
	wg.Go(func() {
		runs := 0
		for ctx.Err() == nil {
			s, err := d.client.Status(ctx)
			hub := boards.HATHubPresent(sysDir)
			for _, n := range nodes {
				if err != nil {
					break // the daemon restarting: the links stay as they are
				}
				p := nodeOf(s, fmt.Sprintf("p%d", n))
				want := hub && p.Powered != nil && *p.Powered
				link := fmt.Sprintf("ethpi%d", n)
				switch {
				case want && !linked[n]:
					if err := sandbox.Veth(tp.head, link, g.ns[n], "usb0"); err != nil {
						t.Errorf("plugging p%d: %v", n, err)
						continue
					}
					l, _ := g.ns[n].NL.LinkByName("usb0")
					mac, _ := net.ParseMAC(fmt.Sprintf("00:22:82:ff:ff:%02x", n))
					g.ns[n].NL.LinkSetDown(l)
					g.ns[n].NL.LinkSetHardwareAddr(l, mac)
					g.ns[n].NL.LinkSetUp(l)
					linked[n] = true
					runs++
					dir := filepath.Join(base, fmt.Sprintf("p%d-%d", n, runs))
					os.MkdirAll(dir, 0o755)
					wg.Go(func() {
						l, err := dhcptest.Udhcpc(g.ns[n], "usb0", dhcptest.Options{Dir: dir, Timeout: 12 * time.Second})
						if err == nil {
							g.mu.Lock()
							g.leases[n] = append(g.leases[n], stampedLease{l, time.Now()})
							g.mu.Unlock()
						}
					})
				case !want && linked[n]:
					if l, err := tp.head.NL.LinkByName(link); err == nil {
						tp.head.NL.LinkDel(l)
					}
					linked[n] = false
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	return g
}

// leaseIn returns node n's latest lease if it is in subnet, and when it
// came.
func (g *gadgets) leaseIn(n int, subnet string) (dhcptest.Lease, time.Time, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	ls := g.leases[n]
	if len(ls) == 0 || ls[len(ls)-1].l.Address.Masked().String() != subnet {
		return dhcptest.Lease{}, time.Time{}, false
	}
	return ls[len(ls)-1].l, ls[len(ls)-1].at, true
}

// carrierClient is an Ethernet node whose DHCP client follows carrier, as
// dhcpcd and NetworkManager do: on "carrier lost" it drops its address, on
// "carrier acquired" it asks again, here with ISC dhclient, which keeps its
// lease file and so first asks for its old address (INIT-REBOOT) and takes
// the server's NAK as the sign to start over.
type carrierClient struct {
	mu     sync.Mutex
	leases []stampedLease
}

func newCarrierClient(t *testing.T, ns *sandbox.NS, iface string) *carrierClient {
	c := &carrierClient{}
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		had := false
		var running chan struct{}
		for ctx.Err() == nil {
			l, err := ns.NL.LinkByName(iface)
			carrier := err == nil && l.Attrs().RawFlags&unix.IFF_RUNNING != 0
			switch {
			case carrier && !had:
				if running != nil {
					<-running // one client at a time
				}
				running = make(chan struct{})
				done := running
				wg.Go(func() {
					defer close(done)
					l, err := dhcptest.Dhclient(ns, iface, dhcptest.Options{Dir: dir, Timeout: 12 * time.Second})
					if err == nil {
						c.mu.Lock()
						c.leases = append(c.leases, stampedLease{l, time.Now()})
						c.mu.Unlock()
					}
				})
			case !carrier && had:
				ns.Run("ip", "-4", "addr", "flush", "dev", iface)
			}
			had = carrier
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	return c
}

func (c *carrierClient) leaseIn(subnet string) (dhcptest.Lease, time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.leases) == 0 || c.leases[len(c.leases)-1].l.Address.Masked().String() != subnet {
		return dhcptest.Lease{}, time.Time{}, false
	}
	return c.leases[len(c.leases)-1].l, c.leases[len(c.leases)-1].at, true
}

// Must show 7: moved to a network that overlaps its subnet, the cluster
// renumbers to the next free candidate; the emulated ClusterHAT's nodes
// have new leases within 10 s through the USB hub cycle (the emulated hub
// drops their gadget links as a real one does), and the Ethernet node on a
// cluster port within the same 10 s through the port's link bounce (the
// README's figure for nodes cabled to the head). The choice is kept
// across a restart even once the first candidate is free again.
func TestE2ESubnetMovesWithTheNodes(t *testing.T) {
	dhcptest.Need(t)
	tp := newTopo(t, false) // inside: an Ethernet node; outside: the LAN
	must(t, sandbox.Veth(tp.head, "eth1", tp.outside, "out0"))
	must(t, tp.head.AddAddr("eth1", "10.99.0.2/24"))
	must(t, tp.outside.AddAddr("out0", "10.99.0.1/24"))
	must(t, tp.head.DefaultRoute("10.99.0.1"))
	must(t, sandbox.Veth(tp.head, "cn1", tp.inside, "eth0"))
	stateDir := filepath.Join(tp.dir, "state")
	cfg := subnetConfig(t, tp.dir, `[network]
cluster_interface = "br0"

[bridge]
enabled = true
ports = ["ethpi*", "cn*"]

[dhcp]
probe = "0s"

[power]
stagger = "100ms"
boot_grace = "5s"
probe_interval = "200ms"
down_after = "600ms"

[hardware]
backend = "sim"
`)
	d := tp.startDaemon(t, cfg)
	d.waitFor(t, "the cluster on the first candidate, serving", func(s *api.Status) bool {
		return s.Subnet.Address == "10.213.0.1/24" && s.Cluster.Address == "10.213.0.1/24" && serving(s) && s.NAT.State == api.NATOK
	})
	g := newGadgets(t, tp, d, stateDir, 1, 2)
	eth := newCarrierClient(t, tp.inside, "eth0")
	if out, errOut, code := run(t, nil, "on", "--socket", filepath.Join(tp.dir, "control.sock"), "p1", "p2"); code != 0 {
		t.Fatalf("on: %d %s%s", code, out, errOut)
	}
	waitUntil(t, "every node leased in 10.213.0.0/24", 15*time.Second, func() bool {
		_, _, ok1 := g.leaseIn(1, "10.213.0.0/24")
		_, _, ok2 := g.leaseIn(2, "10.213.0.0/24")
		_, _, ok3 := eth.leaseIn("10.213.0.0/24")
		return ok1 && ok2 && ok3
	})

	// The LAN now uses 10.213.0.0/24: the uplink's new lease, as a DHCP
	// client renumbers (new address and route first, the old one after).
	clash := time.Now()
	must(t, tp.outside.AddAddr("out0", "10.213.0.1/24"))
	must(t, tp.head.AddAddr("eth1", "10.213.0.50/24"))
	must(t, tp.head.DelAddr("eth1", "10.99.0.2/24"))
	must(t, tp.head.DefaultRoute("10.213.0.1"))
	_, moved := d.waitFor(t, "the cluster moving to the next candidate", func(s *api.Status) bool {
		return s.Subnet.Address == "172.16.231.1/24"
	})
	t.Logf("the clash was seen and the move started %v after the uplink's new address", moved.Sub(clash).Round(time.Millisecond))
	const budget = 10 * time.Second
	var times []string
	for n := 1; n <= 2; n++ {
		waitUntil(t, fmt.Sprintf("p%d leased in 172.16.231.0/24", n), 20*time.Second, func() bool {
			_, _, ok := g.leaseIn(n, "172.16.231.0/24")
			return ok
		})
		l, at, _ := g.leaseIn(n, "172.16.231.0/24")
		times = append(times, fmt.Sprintf("p%d (gadget, hub cycle) %s after %v", n, l.Address, at.Sub(clash).Round(time.Millisecond)))
		if want := fmt.Sprintf("172.16.231.%d/24", 10+n); l.Address.String() != want || l.Router != "172.16.231.1" {
			t.Errorf("p%d's new lease %+v; want %s, router 172.16.231.1", n, l, want)
		}
		if at.Sub(clash) > budget {
			t.Errorf("p%d's new lease came %v after the clash; the budget is %v", n, at.Sub(clash), budget)
		}
	}
	waitUntil(t, "the Ethernet node leased in 172.16.231.0/24", 20*time.Second, func() bool {
		_, _, ok := eth.leaseIn("172.16.231.0/24")
		return ok
	})
	el, eat, _ := eth.leaseIn("172.16.231.0/24")
	times = append(times, fmt.Sprintf("the Ethernet node (port bounce, dhclient) %s after %v", el.Address, eat.Sub(clash).Round(time.Millisecond)))
	if eat.Sub(clash) > budget {
		t.Errorf("the Ethernet node's new lease came %v after the clash; the README says %v", eat.Sub(clash), budget)
	}
	t.Logf("new leases: %s", strings.Join(times, "; "))
	s, _ := d.waitFor(t, "the move finished", func(s *api.Status) bool {
		return !s.Subnet.Moving && s.Subnet.Moves == 1 && s.Cluster.Address == "172.16.231.1/24" && s.NAT.State == api.NATOK && serving(s)
	})
	if s.Subnet.From != "10.213.0.0/24" || !strings.Contains(s.Subnet.Why, "eth1's network 10.213.0.0/24") {
		t.Errorf("subnet %+v", s.Subnet)
	}
	out, _, _ := run(t, nil, "status", "--socket", filepath.Join(tp.dir, "control.sock"))
	if want := "subnet    auto: 172.16.231.1/24, pool 172.16.231.128-172.16.231.254, p1-p117 at host 10+N; moved from 10.213.0.0/24 at "; !strings.Contains(out, want) {
		t.Errorf("status lacks %q:\n%s", want, out)
	}
	for name, ns := range map[string]*sandbox.NS{"p1": g.ns[1], "the Ethernet node": tp.inside} {
		if src, err := dial(ns, tp.outside, nextAddr("10.213.0.1"), 2*time.Second); err != nil || src != "10.213.0.50" {
			t.Errorf("%s reaching the LAN after the move: seen as %q, %v", name, src, err)
		}
	}
	if !d.logged("moving the cluster to another subnet") || !d.logged("USB hub off for the move") {
		t.Errorf("the move is not in the log")
	}

	// Kept across a restart, even with the first candidate free again.
	d.stop(t)
	must(t, tp.head.AddAddr("eth1", "10.99.0.2/24"))
	must(t, tp.head.DelAddr("eth1", "10.213.0.50/24"))
	must(t, tp.head.DefaultRoute("10.99.0.1"))
	d = tp.startDaemon(t, cfg)
	d.waitFor(t, "the kept subnet after a restart", func(s *api.Status) bool {
		return s.Subnet.Address == "172.16.231.1/24" && s.Cluster.Address == "172.16.231.1/24"
	})
}

// A fixed cluster address on the uplink's network is refused in one line
// naming both networks and a free subnet, and nothing on the cluster side
// changes (no address, no rules, no DHCP); so is "auto" when no candidate
// is free.
func TestE2ESubnetRefusals(t *testing.T) {
	dhcptest.Need(t)
	tp := newTopo(t, true) // eth1 10.99.0.2/24, eth0 without an address
	for _, c := range []struct{ network, want string }{
		{`cluster_address = "10.99.0.1/24"`,
			`network.cluster_address = "10.99.0.1/24": the cluster network 10.99.0.0/24 overlaps eth1's network 10.99.0.0/24, so nothing was changed on eth0; 10.213.0.1/24 is free: use it, or cluster_address = "auto"`},
		{"[subnet]\ncandidates = [\"10.99.0.0/24\"]",
			`network.cluster_address = "auto": no candidate subnet is free at /24: 10.99.0.0/24 (10.99.0.0/24 is in use); add a free one to the candidates`},
	} {
		network := c.network
		if strings.HasPrefix(network, "cluster_address") {
			network = "[network]\n" + network
		}
		d := tp.startDaemon(t, subnetConfig(t, tp.dir, network))
		s, _ := d.waitFor(t, "the refusal in status", func(s *api.Status) bool { return s.Subnet.Problem != "" })
		if !strings.HasPrefix(s.Subnet.Problem, c.want) || s.Health.State != api.HealthFailed || len(s.Health.Reasons) == 0 || s.Health.Reasons[0] != s.Subnet.Problem {
			t.Errorf("problem %q, health %+v; want %q", s.Subnet.Problem, s.Health, c.want)
		}
		if s.DHCP.State == api.DHCPServing || s.NAT.State == api.NATOK {
			t.Errorf("served anyway: DHCP %s, NAT %s", s.DHCP.State, s.NAT.State)
		}
		if !d.logged("cluster subnet refused; nothing is changed on the cluster side") {
			t.Error("the refusal is not in the log")
		}
		if out, _ := tp.head.Run("ip", "-4", "-o", "addr", "show", "dev", "eth0"); strings.Contains(out, "inet ") {
			t.Errorf("eth0 got an address:\n%s", out)
		}
		if out, _ := tp.head.Run("iptables-save"); strings.Contains(out, "HEADNODE") {
			t.Errorf("rules installed:\n%s", out)
		}
		out, _, _ := run(t, nil, "status", "--socket", filepath.Join(tp.dir, "control.sock"))
		if !strings.Contains(out, c.want) {
			t.Errorf("headnode status does not say it:\n%s", out)
		}
		d.stop(t)
	}
}

// The same move with the Zero's own DHCP client: dhcpcd 9 (Raspberry Pi
// OS up to Bullseye) runs all the time on the node's usb0, and the
// emulated hub cycle is as a real one: the head's ethpi1 vanishes (here:
// moved to a namespace of its own) and comes back, while the Zero's usb0
// stays and only loses carrier. dhcpcd alone notices, asks again and gets
// its new address; the server's lease counts against the 10 s, and the
// time until dhcpcd uses the address (after its RFC 5227 ARP probe) is
// logged beside it.
func TestE2ESubnetMovesADhcpcdZero(t *testing.T) {
	dhcptest.Need(t)
	dhcpcd, err := exec.LookPath("dhcpcd")
	if err != nil {
		dhcpcd = "/usr/sbin/dhcpcd"
		if _, err := os.Stat(dhcpcd); err != nil {
			t.Fatalf("dhcpcd is not installed (Debian package dhcpcd-base)")
		}
	}
	tp := newTopo(t, false)
	prefix := strings.TrimSuffix(tp.head.Name, "head")
	must(t, sandbox.Veth(tp.head, "eth1", tp.outside, "out0"))
	must(t, tp.head.AddAddr("eth1", "10.99.0.2/24"))
	must(t, tp.outside.AddAddr("out0", "10.99.0.1/24"))
	must(t, tp.head.DefaultRoute("10.99.0.1"))
	zero, err := sandbox.New(prefix + "z1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { zero.Close() })
	usb, err := sandbox.New(prefix + "usb") // where a gadget is while its hub is off
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { usb.Close() })
	// dhcpcd keeps per-interface files in /run/dhcpcd and /var/lib/dhcpcd:
	// a name of this test's own.
	ifn := fmt.Sprintf("hz%d", os.Getpid()%1000000)
	t.Cleanup(func() {
		for _, glob := range []string{"/run/dhcpcd/" + ifn + "*", "/var/lib/dhcpcd/" + ifn + "*"} {
			files, _ := filepath.Glob(glob)
			for _, f := range files {
				os.Remove(f)
			}
		}
	})
	stateDir := filepath.Join(tp.dir, "state")
	cfg := subnetConfig(t, tp.dir, `[network]
cluster_interface = "br0"

[bridge]
enabled = true

[dhcp]
probe = "0s"

[power]
stagger = "100ms"
boot_grace = "5s"
probe_interval = "200ms"

[hardware]
backend = "sim"
`)
	d := tp.startDaemon(t, cfg)
	d.waitFor(t, "the cluster on the first candidate", func(s *api.Status) bool {
		return s.Subnet.Address == "10.213.0.1/24" && serving(s) && s.NAT.State == api.NATOK
	})
	conf := filepath.Join(tp.dir, "dhcpcd.conf")
	// Raspberry Pi OS's dhcpcd.conf, less what would touch this machine
	// (hostname, resolv.conf hooks) and IPv6.
	os.WriteFile(conf, []byte("clientid\npersistent\noption rapid_commit\nrequire dhcp_server_identifier\nipv4only\nnoipv4ll\n"), 0o644)

	sysDir := filepath.Join(stateDir, "sim", "sys")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	var client *process
	wg.Go(func() {
		plugged, away := false, false
		for ctx.Err() == nil {
			s, err := d.client.Status(ctx)
			hub := boards.HATHubPresent(sysDir)
			if err == nil {
				p := nodeOf(s, "p1")
				powered := p.Powered != nil && *p.Powered
				switch {
				case powered && hub && !plugged:
					if err := sandbox.Veth(tp.head, "ethpi1", zero, ifn); err != nil {
						t.Errorf("plugging p1: %v", err)
						return
					}
					l, _ := zero.NL.LinkByName(ifn)
					mac, _ := net.ParseMAC("00:22:82:ff:ff:01")
					zero.NL.LinkSetDown(l)
					zero.NL.LinkSetHardwareAddr(l, mac)
					zero.NL.LinkSetUp(l)
					plugged = true
				case plugged && !hub && !away:
					if l, err := tp.head.NL.LinkByName("ethpi1"); err == nil {
						tp.head.NL.LinkSetNsFd(l, int(usb.Handle))
					}
					away = true
				case plugged && hub && away:
					if l, err := usb.NL.LinkByName("ethpi1"); err == nil {
						usb.NL.LinkSetNsFd(l, int(tp.head.Handle))
						tp.head.Up("ethpi1")
					}
					away = false
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
	if out, errOut, code := run(t, nil, "on", "--socket", filepath.Join(tp.dir, "control.sock"), "p1"); code != 0 {
		t.Fatalf("on: %d %s%s", code, out, errOut)
	}
	waitUntil(t, "p1's usb0 there", 5*time.Second, func() bool { _, err := zero.NL.LinkByName(ifn); return err == nil })
	client = background(t, zero, dhcpcd, "-B", "-d", "-4", "-f", conf, "-c", "/bin/true", ifn)
	nodeAddr := func() string {
		out, _ := zero.Run("ip", "-4", "-o", "addr", "show", "dev", ifn)
		return out
	}
	serverLease := func(subnet string) bool {
		s, err := d.client.Status(context.Background())
		if err != nil {
			return false
		}
		for _, l := range s.DHCP.Leases {
			if a, err := netip.ParseAddr(l.Address); err == nil && l.MAC == "00:22:82:ff:ff:01" && netip.MustParsePrefix(subnet).Contains(a) && !l.Offered {
				return true
			}
		}
		return false
	}
	waitUntil(t, "dhcpcd using 10.213.0.11", 20*time.Second, func() bool { return strings.Contains(nodeAddr(), "inet 10.213.0.11/24") })

	clash := time.Now()
	must(t, tp.outside.AddAddr("out0", "10.213.0.1/24"))
	must(t, tp.head.AddAddr("eth1", "10.213.0.50/24"))
	must(t, tp.head.DelAddr("eth1", "10.99.0.2/24"))
	must(t, tp.head.DefaultRoute("10.213.0.1"))
	leased := waitUntil(t, "the server's lease for p1 in 172.16.231.0/24", 20*time.Second, func() bool { return serverLease("172.16.231.0/24") })
	using := waitUntil(t, "dhcpcd using 172.16.231.11", 20*time.Second, func() bool { return strings.Contains(nodeAddr(), "inet 172.16.231.11/24") })
	t.Logf("dhcpcd on the Zero: new lease acknowledged %v after the clash, in use (after its ARP probe) %v after",
		leased.Sub(clash).Round(time.Millisecond), using.Sub(clash).Round(time.Millisecond))
	if leased.Sub(clash) > 10*time.Second {
		t.Errorf("the new lease came %v after the clash; the budget is 10 s", leased.Sub(clash))
	}
	log := client.log.String()
	t.Logf("dhcpcd: %s", strings.Join(matching(log, "carrier", "NAK", "offered", "acknowledged", "leased", "rebinding", "REBOOT", "reboot"), " / "))
	for _, want := range []string{"carrier lost", "carrier acquired", "leased 172.16.231.11"} {
		if !strings.Contains(log, want) {
			t.Errorf("dhcpcd's log lacks %q:\n%s", want, tail(log, 40))
		}
	}
	if src, err := dial(zero, tp.outside, nextAddr("10.213.0.1"), 2*time.Second); err != nil || src != "10.213.0.50" {
		t.Errorf("p1 reaching the LAN after the move: seen as %q, %v", src, err)
	}
}

// matching returns the lines of s that contain any of words.
func matching(s string, words ...string) []string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		for _, w := range words {
			if strings.Contains(line, w) {
				out = append(out, strings.TrimSpace(line))
				break
			}
		}
	}
	return out
}

// Without a bridge the cluster interface itself is the Ethernet port: it
// is held down for the move (the NAT part, which would set it up, stopped
// meanwhile) and comes back with the new address; the node cabled to it
// asks again on carrier.
func TestE2ESubnetMovesAPlainClusterPort(t *testing.T) {
	dhcptest.Need(t)
	tp := newTopo(t, false)
	must(t, sandbox.Veth(tp.head, "eth1", tp.outside, "out0"))
	must(t, tp.head.AddAddr("eth1", "10.99.0.2/24"))
	must(t, tp.outside.AddAddr("out0", "10.99.0.1/24"))
	must(t, tp.head.DefaultRoute("10.99.0.1"))
	must(t, sandbox.Veth(tp.head, "eth0", tp.inside, "in0"))
	d := tp.startDaemon(t, subnetConfig(t, tp.dir, "[dhcp]\nprobe = \"0s\"\n"))
	d.waitFor(t, "the cluster on the first candidate", func(s *api.Status) bool {
		return s.Cluster.Address == "10.213.0.1/24" && serving(s) && s.NAT.State == api.NATOK
	})
	node := newCarrierClient(t, tp.inside, "in0")
	waitUntil(t, "the node leased in 10.213.0.0/24", 15*time.Second, func() bool { _, _, ok := node.leaseIn("10.213.0.0/24"); return ok })
	clash := time.Now()
	must(t, tp.outside.AddAddr("out0", "10.213.0.1/24"))
	must(t, tp.head.AddAddr("eth1", "10.213.0.50/24"))
	must(t, tp.head.DelAddr("eth1", "10.99.0.2/24"))
	must(t, tp.head.DefaultRoute("10.213.0.1"))
	down := waitUntil(t, "eth0 held down for the move", 5*time.Second, func() bool {
		l, err := tp.head.NL.LinkByName("eth0")
		return err == nil && l.Attrs().Flags&net.FlagUp == 0
	})
	waitUntil(t, "eth0 up again", 10*time.Second, func() bool {
		l, err := tp.head.NL.LinkByName("eth0")
		return err == nil && l.Attrs().Flags&net.FlagUp != 0
	})
	t.Logf("eth0 was down from %v to %v after the clash", down.Sub(clash).Round(time.Millisecond), time.Since(clash).Round(time.Millisecond))
	at := waitUntil(t, "the node leased in 172.16.231.0/24", 20*time.Second, func() bool { _, _, ok := node.leaseIn("172.16.231.0/24"); return ok })
	t.Logf("the node on the plain cluster port has its new lease %v after the clash", at.Sub(clash).Round(time.Millisecond))
	if at.Sub(clash) > 10*time.Second {
		t.Errorf("the new lease came %v after the clash; the README says about 10 s with probe 0", at.Sub(clash))
	}
	d.waitFor(t, "eth0 up with the new address, NAT on it", func(s *api.Status) bool {
		return !s.Subnet.Moving && s.Cluster.Up && s.Cluster.Address == "172.16.231.1/24" && s.NAT.State == api.NATOK && s.NAT.Subnet == "172.16.231.0/24"
	})
	if src, err := dial(tp.inside, tp.outside, nextAddr("10.213.0.1"), 2*time.Second); err != nil || src != "10.213.0.50" {
		t.Errorf("the node reaching the LAN after the move: seen as %q, %v", src, err)
	}
}
