package main

// Plug into any network (issue 11): the uplink and cluster sides found
// by themselves, never a DHCP server or our address on the user's LAN, and
// our DHCP server silent while another answers on the cluster side. Each
// LAN is a namespace acting as its router, with its own DHCP server
// (busybox udhcpd) and the "internet" address 10.100.0.1, which answers
// with the source address it sees:
//
//	LAN client (in0) --+
//	                   lan (10.99.0.1, udhcpd) -- out0 === eth0 [head] br0 === ethpiN (gadget) -- node pN
//	                                                      [head] wlan0 === (10.98.0.1, udhcpd) second LAN

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
	"github.com/headnode/headnode/netcfg/dhcpd/dhcptest"
	"github.com/headnode/headnode/netcfg/dhcpwatch"
	"github.com/headnode/headnode/netcfg/sandbox"
)

const internetIP = "10.100.0.1"

// lanSide is a LAN router namespace.
type lanSide struct {
	ns     *sandbox.NS
	router string
	dev    string // where its server runs
}

// newLAN links the head's iface to a LAN router in ns, with the LAN's
// DHCP server and the internet address; client, when set, is a LAN
// machine on the same LAN (a bridge in the router's namespace).
func newLAN(t *testing.T, head, ns *sandbox.NS, iface, prefix string, client *sandbox.NS) *lanSide {
	t.Helper()
	l := &lanSide{ns: ns, router: prefix + "1", dev: "lan"}
	must(t, ns.Bridge("lan"))
	must(t, sandbox.Veth(head, iface, ns, "out0"))
	must(t, ns.Enslave("out0", "lan"))
	if client != nil {
		must(t, sandbox.Veth(ns, "c0", client, "in0"))
		must(t, ns.Enslave("c0", "lan"))
	}
	must(t, ns.AddAddr("lan", l.router+"/24"))
	must(t, ns.AddAddr("lo", internetIP+"/32"))
	srv, err := ns.Listen(internetIP + ":8080")
	if err != nil {
		t.Fatal(err)
	}
	go sandbox.ServeSourceAddress(srv)
	t.Cleanup(func() { srv.Close() })
	if _, err := dhcptest.Udhcpd(t, ns, "lan", l.router, prefix+"100", prefix+"110", t.TempDir()); err != nil {
		t.Fatal(err)
	}
	return l
}

// wayOut connects from ns to the internet and returns the address it was
// seen as.
func wayOut(ns *sandbox.NS, timeout time.Duration) (string, error) {
	c, err := ns.Dial(internetIP+":8080", net.Dialer{Timeout: timeout})
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(timeout))
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

// gadget plugs node n in as a ClusterHAT Pi Zero appears once booted: a
// link named ethpiN on the head with the gadget's MAC (00:22:82:ff:ff:NN)
// on the node.
func gadget(t *testing.T, tp *topo, n int) *sandbox.NS {
	t.Helper()
	ns, err := sandbox.New(fmt.Sprintf("%sz%d", strings.TrimSuffix(tp.head.Name, "head"), n))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	must(t, sandbox.Veth(tp.head, fmt.Sprintf("ethpi%d", n), ns, "eth0"))
	mac, _ := net.ParseMAC(fmt.Sprintf("00:22:82:ff:ff:%02x", n))
	l, err := ns.NL.LinkByName("eth0")
	must(t, err)
	must(t, ns.Down("eth0"))
	must(t, ns.NL.LinkSetHardwareAddr(l, mac))
	must(t, ns.Up("eth0"))
	return ns
}

// autoConfig is a configuration without [network], [bridge] or [dhcp]:
// only the emulated machine (a ClusterHAT, a 16x2 LCD, a BlinkStick) and
// the test's own socket and state directory.
func autoConfig(t *testing.T, tp *topo, extra string) string {
	t.Helper()
	path := filepath.Join(tp.dir, "config.toml")
	text := fmt.Sprintf("[hardware]\nbackend = \"sim\"\n\n[control]\nsocket = %q\n\n[daemon]\nstate_dir = %q\n%s",
		filepath.Join(tp.dir, "control.sock"), filepath.Join(tp.dir, "state"), extra)
	must(t, os.WriteFile(path, []byte(text), 0o644))
	return path
}

func lcdRow(s *api.Status, i int) string {
	if len(s.Display.LCD.Rows) <= i {
		return ""
	}
	return strings.TrimSpace(s.Display.LCD.Rows[i])
}

// offersSeen listens on iface in ns with the DHCP watcher (which asks
// every 200 ms) for d, and returns every server that answered.
func offersSeen(t *testing.T, ns *sandbox.NS, iface string, d time.Duration) map[string]int {
	t.Helper()
	var mu sync.Mutex
	seen := map[string]int{}
	listening := 0
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	h := ns.Handle
	dhcpwatch.Watch(ctx, dhcpwatch.Options{Interface: iface, Every: 200 * time.Millisecond, Namespace: &h}, func(r dhcpwatch.Report) {
		mu.Lock()
		defer mu.Unlock()
		if r.Sighting != nil {
			seen[r.Sighting.Server.String()]++
		} else if r.Listening {
			listening++
		}
	})
	if listening < 2 {
		t.Fatalf("the LAN client's watcher sent %d probes in %v", listening, d)
	}
	return seen
}

func addrOn(t *testing.T, ns *sandbox.NS, iface string) string {
	t.Helper()
	out, err := ns.Run("ip", "-4", "-o", "addr", "show", "dev", iface)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Must show 1: a Pi with one Ethernet port and a ClusterHAT, no network
// configuration. The LAN's server gives eth0 its address, the LCD shows it
// within 1 s, the Zeros appear as gadget links and get leases over the
// bridge, reach the LAN through NAT, and the LAN's machines get offers
// from the LAN's server only.
func TestE2ERolesOnePortClusterHAT(t *testing.T) {
	dhcptest.Need(t)
	tp := newTopo(t, false)
	lan := newLAN(t, tp.head, tp.outside, "eth0", "10.99.0.", tp.inside)
	d := tp.startDaemon(t, autoConfig(t, tp, ""))
	s, _ := d.waitFor(t, "eth0 taken as the uplink before it has an address", func(s *api.Status) bool {
		return s.Roles != nil && s.Roles.Uplink.Interface == "eth0" && s.Roles.Cluster.Interface == "br0" && lcdRow(s, 0) == "waiting for DHCP"
	})
	t.Logf("before DHCP: uplink %s (%s); cluster %s (%s)", s.Roles.Uplink.Interface, s.Roles.Uplink.Why, s.Roles.Cluster.Interface, s.Roles.Cluster.Why)

	// The head's own DHCP client (dhcpcd on Raspberry Pi OS; dhclient
	// here) gets eth0's address from the LAN's server.
	lease, err := dhcptest.Dhclient(tp.head, "eth0", dhcptest.Options{Dir: t.TempDir()})
	assigned := time.Now()
	if err != nil || lease.Server != lan.router {
		t.Fatalf("eth0's lease %+v, %v; want one from the LAN's server %s", lease, err, lan.router)
	}
	addr := lease.Address.Addr().String()
	s, at := d.waitFor(t, "eth0's address on the LCD", func(s *api.Status) bool { return lcdRow(s, 0) == addr })
	took := at.Sub(assigned)
	t.Logf("LCD shows eth0's address %s %v after dhclient bound it (the daemon saw the address %v before the LCD had it)", addr, took.Round(time.Millisecond), at.Sub(s.Uplink.Since).Round(time.Millisecond))
	if took > time.Second {
		t.Errorf("the LCD showed the address %v after it was assigned, want within 1 s", took)
	}

	// Two Zeros boot: their gadget links join br0, they get their leases
	// from us (named by their gadget MAC) and reach the LAN through NAT.
	for n := 1; n <= 2; n++ {
		node := gadget(t, tp, n)
		l, err := dhcptest.Udhcpc(node, "eth0", dhcptest.Options{Dir: t.TempDir()})
		want := fmt.Sprintf("192.168.50.%d", 10+n)
		if err != nil || l.Server != "192.168.50.1" || l.Address.Addr().String() != want {
			t.Fatalf("p%d's lease %+v, %v; want %s from 192.168.50.1", n, l, err, want)
		}
		if src, err := wayOut(node, 2*time.Second); err != nil || src != addr {
			t.Errorf("p%d to the internet: seen as %q (%v), want the head's LAN address %s", n, src, err, addr)
		}
	}
	s, _ = d.waitFor(t, "both gadget links in br0", func(s *api.Status) bool {
		return s.Bridge != nil && len(s.Bridge.Ports) == 2 && s.Cluster.Address == "192.168.50.1/24" && s.Roles.Cluster.Claimed
	})
	if a := addrOn(t, tp.head, "eth0"); strings.Contains(a, "192.168.50.1/") {
		t.Errorf("our address is on the LAN port: %s", a)
	}
	for _, p := range s.Bridge.Ports {
		if !strings.HasPrefix(p.Interface, "ethpi") {
			t.Errorf("br0 has a port %s", p.Interface)
		}
	}

	// A machine on the LAN asks: only the LAN's server answers.
	seen := offersSeen(t, tp.inside, "in0", 1500*time.Millisecond)
	if len(seen) != 1 || seen[lan.router] == 0 {
		t.Errorf("a LAN client's DISCOVERs were answered by %v; want the LAN's server %s only", seen, lan.router)
	}
	if l, err := dhcptest.Udhcpc(tp.inside, "in0", dhcptest.Options{Dir: t.TempDir()}); err != nil || l.Server != lan.router {
		t.Errorf("the LAN client's lease %+v, %v; want one from %s", l, err, lan.router)
	}
	out, _, _ := run(t, nil, "status", "--socket", filepath.Join(tp.dir, "control.sock"))
	for _, want := range []string{"role (auto): eth0, carries the default route", "role (auto): br0, a ClusterHAT/ClusterCTRL is present"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
}

// Must show 3: the cables swapped under an explicit configuration. eth0,
// named as the cluster side (or as a bridge port), is on the LAN: it gets
// no address of ours, no DHCP answer and no bridge; the LCD's second row
// and the status say what is wrong and the fix.
func TestE2ERolesSwappedCables(t *testing.T) {
	dhcptest.Need(t)
	for _, tc := range []struct {
		name, network string
		// headClient: the head's own DHCP client runs on eth0 first (the
		// LAN gave it an address and a default route); otherwise only
		// the LAN's DHCP server gives the LAN away.
		headClient bool
	}{
		{"cluster eth0, the LAN's DHCP server answers there", "[network]\ncluster_interface = \"eth0\"\nuplink_interface = \"eth1\"\n", false},
		{"bridge port eth0 carries the default route", "[network]\ncluster_interface = \"br0\"\nuplink_interface = \"eth1\"\n[bridge]\nenabled = true\nports = [\"ethpi*\", \"eth0\"]\n", true},
		{"bridge port eth0, the LAN's DHCP server answers there", "[network]\ncluster_interface = \"br0\"\nuplink_interface = \"eth1\"\n[bridge]\nenabled = true\nports = [\"ethpi*\", \"eth0\"]\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp := newTopo(t, false)
			lan := newLAN(t, tp.head, tp.outside, "eth0", "10.99.0.", tp.inside)
			// eth1 goes to where the nodes are (an Ethernet switch with
			// nothing on it yet).
			sw, err := sandbox.New(strings.TrimSuffix(tp.head.Name, "head") + "sw")
			must(t, err)
			t.Cleanup(func() { sw.Close() })
			must(t, sandbox.Veth(tp.head, "eth1", sw, "port0"))
			if tc.headClient {
				if l, err := dhcptest.Dhclient(tp.head, "eth0", dhcptest.Options{Dir: t.TempDir()}); err != nil || l.Server != lan.router {
					t.Fatalf("eth0's lease %+v, %v", l, err)
				}
			}
			start := time.Now()
			d := tp.startDaemon(t, autoConfig(t, tp, tc.network+"[dhcp]\nprobe = \"1s\"\n"))
			s, at := d.waitFor(t, "eth0 is a LAN on the LCD", func(s *api.Status) bool {
				return lcdRow(s, 1) == "eth0 is a LAN" && s.Roles != nil && s.Roles.Problem != ""
			})
			t.Logf("LCD row 2 %q %v after the daemon started; status: %s", lcdRow(s, 1), at.Sub(start).Round(time.Millisecond), s.Roles.Problem)
			if s.Health.State != api.HealthFailed || s.Health.Class != 4 || s.Health.Reasons[1] != "swap cables?" {
				t.Errorf("health %+v, want failed (class 4): eth0 is a LAN; swap cables?", s.Health)
			}
			if s.Display.LED.Pattern == "ok" {
				t.Errorf("the LED says ok: %+v", s.Display.LED)
			}
			// Nothing of ours ever comes to eth0, also not after a while.
			time.Sleep(1500 * time.Millisecond)
			if a := addrOn(t, tp.head, "eth0"); strings.Contains(a, "192.168.50.1/") {
				t.Errorf("our address is on the LAN: %s", a)
			}
			links, err := tp.head.NL.LinkByName("eth0")
			must(t, err)
			if links.Attrs().MasterIndex != 0 {
				t.Errorf("eth0 was put in a bridge (master %d)", links.Attrs().MasterIndex)
			}
			seen := offersSeen(t, tp.inside, "in0", 1500*time.Millisecond)
			if len(seen) != 1 || seen[lan.router] == 0 {
				t.Errorf("the LAN's DISCOVERs were answered by %v; want %s only", seen, lan.router)
			}
			if st, _ := d.client.Status(t.Context()); st.DHCP.Packets.Offers != 0 {
				t.Errorf("our DHCP server made %d offers", st.DHCP.Packets.Offers)
			}
			out, _, _ := run(t, nil, "status", "--socket", filepath.Join(tp.dir, "control.sock"))
			if !strings.Contains(out, "problem: ") || !strings.Contains(out, "eth0") || !strings.Contains(out, "swap the cables") {
				t.Errorf("status does not say what is wrong and the fix:\n%s", out)
			}
			if !d.logged("so it is on a LAN and") {
				t.Errorf("not logged:\n%s", d.log.String())
			}
		})
	}
}

// Must show 4: another DHCP server starts on the cluster side while ours
// serves: ours is silent within 2 s (measured) and serves again once the
// other has been quiet for [dhcp] quiet.
func TestE2ERolesAnotherDHCPServerLater(t *testing.T) {
	dhcptest.Need(t)
	tp := newTopo(t, false)
	must(t, sandbox.Veth(tp.head, "eth1", tp.outside, "out0"))
	must(t, tp.head.AddAddr("eth1", "10.99.0.2/24"))
	must(t, tp.outside.AddAddr("out0", "10.99.0.1/24"))
	// The cluster side: a switch (bridge sw in inside) with a node.
	must(t, tp.inside.Bridge("sw"))
	must(t, sandbox.Veth(tp.head, "eth0", tp.inside, "in0"))
	must(t, tp.inside.Enslave("in0", "sw"))
	must(t, tp.inside.AddAddr("sw", "192.168.50.254/24"))
	node, err := sandbox.New(strings.TrimSuffix(tp.head.Name, "head") + "n1")
	must(t, err)
	t.Cleanup(func() { node.Close() })
	must(t, sandbox.Veth(tp.inside, "c0", node, "eth0"))
	must(t, tp.inside.Enslave("c0", "sw"))

	const quiet = 3 * time.Second
	// On the emulated machine, for its LCD and LED.
	cfg := tp.config(t, "[dhcp]\nprobe = \"500ms\"\nquiet = \"3s\"\n[hardware]\nbackend = \"sim\"\n")
	text, _ := os.ReadFile(cfg)
	text = []byte(strings.NewReplacer("[lcd]\nenabled = false", "[lcd]\nenabled = true", "[led]\nenabled = false", "[led]\nenabled = true").Replace(string(text)))
	must(t, os.WriteFile(cfg, text, 0o644))
	d := tp.startDaemon(t, cfg)
	d.waitFor(t, "serving", serving)
	if l, err := dhcptest.Udhcpc(node, "eth0", dhcptest.Options{Dir: t.TempDir()}); err != nil || l.Server != "192.168.50.1" {
		t.Fatalf("the node's lease from us: %+v, %v", l, err)
	}

	started := time.Now()
	stop, err := dhcptest.Udhcpd(t, tp.inside, "sw", "192.168.50.254", "192.168.50.100", "192.168.50.110", t.TempDir())
	must(t, err)
	s, at := d.waitFor(t, "ours silent", func(s *api.Status) bool { return s.DHCP.State == api.DHCPOtherServer })
	silent := at.Sub(started)
	t.Logf("ours silent %v after the other server started (its first offer: %s); reason: %s", silent.Round(time.Millisecond), s.DHCP.OtherServer, s.DHCP.Reason)
	if silent > 2*time.Second {
		t.Errorf("ours went silent %v after the other server started, want within 2 s", silent)
	}
	if s.DHCP.OtherServer != "192.168.50.254" || !strings.Contains(strings.Join(s.Health.Reasons, "|"), "other DHCP server 192.168.50.254 on eth0; ours is silent") {
		t.Errorf("status %+v / health %+v", s.DHCP, s.Health)
	}
	s, _ = d.waitFor(t, "the LCD and LED saying so", func(s *api.Status) bool {
		return lcdRow(s, 1) == "other DHCP serve" && s.Display.LED.Pattern == "degraded"
	})
	t.Logf("LCD %q, LED %s", s.Display.LCD.Rows, s.Display.LED.Pattern)
	offers := s.DHCP.Packets.Offers
	// A node asking now is answered by the other server only.
	l, err := dhcptest.Udhcpc(node, "eth0", dhcptest.Options{Dir: t.TempDir()})
	if err != nil || l.Server != "192.168.50.254" {
		t.Errorf("a node's lease while ours is silent: %+v, %v; want one from 192.168.50.254", l, err)
	}
	if s, _ := d.client.Status(t.Context()); s.DHCP.Packets.Offers != offers {
		t.Errorf("our server made %d offers while silent", s.DHCP.Packets.Offers-offers)
	}
	if !d.logged("another DHCP server answers on the cluster network; ours is silent") {
		t.Errorf("not logged:\n%s", d.log.String())
	}
	out, _, _ := run(t, nil, "status", "--socket", filepath.Join(tp.dir, "control.sock"))
	if !strings.Contains(out, "another DHCP server (192.168.50.254) answers on eth0, so ours is silent") {
		t.Errorf("status:\n%s", out)
	}
	metrics := scrapeMetrics(t, tp)
	if !strings.Contains(metrics, "headnode_dhcp_other_server 1") {
		t.Errorf("metrics lack headnode_dhcp_other_server 1")
	}

	stop()
	stopped := time.Now()
	_, at = d.waitFor(t, "serving again", serving)
	back := at.Sub(stopped)
	t.Logf("ours serves again %v after the other stopped (quiet = %v)", back.Round(time.Millisecond), quiet)
	// The quiet time runs from the other's last answer, up to one probe
	// interval (1 s) before it stopped.
	if back < quiet-1100*time.Millisecond || back > quiet+2*time.Second {
		t.Errorf("ours serves again %v after the other stopped; want the quiet time %v (from its last answer, up to 1 s before it stopped; + up to 2 s)", back, quiet)
	}
	if l, err := dhcptest.Udhcpc(node, "eth0", dhcptest.Options{Dir: t.TempDir()}); err != nil || l.Server != "192.168.50.1" {
		t.Errorf("the node's lease once ours serves again: %+v, %v", l, err)
	}
	// The watcher's own probes (one a second on eth0) never reach our
	// server, nor take a lease.
	s, _ = d.client.Status(t.Context())
	if len(s.DHCP.Packets.Dropped) != 0 || len(s.DHCP.Leases) != 1 {
		t.Errorf("our server saw more than the node: dropped %v, leases %+v", s.DHCP.Packets.Dropped, s.DHCP.Leases)
	}
}

// scrapeMetrics reads the status page's /metrics from inside the head.
func scrapeMetrics(t *testing.T, tp *topo) string {
	t.Helper()
	c, err := tp.head.Dial("127.0.0.1:9180", net.Dialer{Timeout: time.Second})
	if err != nil {
		t.Fatalf("status page: %v", err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	var b strings.Builder
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return b.String()
}

// Must show 5: the default route moves to a second uplink (eth0's LAN goes
// away; wlan0 had a route at a higher metric): the nodes' traffic leaves
// by wlan0 within 2 s and the LCD shows wlan0's address.
func TestE2ERolesUplinkFailover(t *testing.T) {
	dhcptest.Need(t)
	tp := newTopo(t, false)
	a := newLAN(t, tp.head, tp.outside, "eth0", "10.99.0.", nil)
	wifi, err := sandbox.New(strings.TrimSuffix(tp.head.Name, "head") + "wifi")
	must(t, err)
	t.Cleanup(func() { wifi.Close() })
	b := newLAN(t, tp.head, wifi, "wlan0", "10.98.0.", nil)
	var addrs [2]string
	for i, ifc := range []string{"eth0", "wlan0"} {
		l, err := dhcptest.Udhcpc(tp.head, ifc, dhcptest.Options{Dir: t.TempDir()})
		if err != nil {
			t.Fatalf("%s's lease: %v", ifc, err)
		}
		addrs[i] = l.Address.Addr().String()
	}
	// As dhcpcd sets them: Ethernet before Wi-Fi.
	mustRun(t, tp.head, "ip", "route", "replace", "default", "via", a.router, "dev", "eth0", "metric", "202")
	mustRun(t, tp.head, "ip", "route", "replace", "default", "via", b.router, "dev", "wlan0", "metric", "303")
	tp.head.Run("ip", "route", "del", "default", "metric", "0")

	d := tp.startDaemon(t, autoConfig(t, tp, ""))
	node := gadget(t, tp, 1)
	if l, err := dhcptest.Udhcpc(node, "eth0", dhcptest.Options{Dir: t.TempDir()}); err != nil || l.Server != "192.168.50.1" {
		t.Fatalf("p1's lease: %+v, %v", l, err)
	}
	d.waitFor(t, "eth0's address on the LCD", func(s *api.Status) bool { return lcdRow(s, 0) == addrs[0] && s.Roles.Uplink.Interface == "eth0" })
	if src, err := wayOut(node, 2*time.Second); err != nil || src != addrs[0] {
		t.Fatalf("p1 out via eth0: seen as %q, %v; want %s", src, err, addrs[0])
	}

	// eth0's LAN goes away: carrier lost, and the DHCP client drops the
	// address and its route, as dhcpcd does.
	must(t, tp.outside.Down("out0"))
	moved := time.Now()
	mustRun(t, tp.head, "ip", "-4", "addr", "flush", "dev", "eth0")
	var outAt time.Time
	for time.Since(moved) < 5*time.Second {
		if src, err := wayOut(node, 300*time.Millisecond); err == nil && src == addrs[1] {
			outAt = time.Now()
			break
		}
	}
	s, lcdAt := d.waitFor(t, "wlan0's address on the LCD", func(s *api.Status) bool { return lcdRow(s, 0) == addrs[1] })
	if outAt.IsZero() {
		t.Fatalf("p1's traffic never left by wlan0 within 5 s")
	}
	t.Logf("after the default route moved: p1's traffic left by wlan0 (as %s) after %v; LCD showed %s after %v; uplink now %s (%s)",
		addrs[1], outAt.Sub(moved).Round(time.Millisecond), addrs[1], lcdAt.Sub(moved).Round(time.Millisecond), s.Roles.Uplink.Interface, s.Roles.Uplink.Why)
	if outAt.Sub(moved) > 2*time.Second || lcdAt.Sub(moved) > 2*time.Second {
		t.Errorf("traffic moved after %v, LCD after %v; want both within 2 s", outAt.Sub(moved), lcdAt.Sub(moved))
	}
	if s.Roles.Uplink.Interface != "wlan0" || s.Uplink.Interface != "wlan0" {
		t.Errorf("uplink %+v / %+v", s.Roles.Uplink, s.Uplink)
	}
	// eth0 carried the default route: it never becomes a cluster port.
	if l, err := tp.head.NL.LinkByName("eth0"); err != nil || l.Attrs().MasterIndex != 0 {
		t.Errorf("eth0 after failover: %v, master %d", err, l.Attrs().MasterIndex)
	}
}

// The uplink moves while the old one stays up (a USB adaptor whose route
// has a lower metric): a flow the node keeps open (one UDP socket sending
// every 50 ms) leaves by the new uplink within 2 s too, not only new
// connections: the daemon forgets the translations made for the old one.
func TestE2ERolesUplinkLowerMetricMovesFlows(t *testing.T) {
	dhcptest.Need(t)
	tp := newTopo(t, false)
	a := newLAN(t, tp.head, tp.outside, "eth0", "10.99.0.", nil)
	usb, err := sandbox.New(strings.TrimSuffix(tp.head.Name, "head") + "usb")
	must(t, err)
	t.Cleanup(func() { usb.Close() })
	b := newLAN(t, tp.head, usb, "enx0", "10.98.0.", nil)
	for _, l := range []*lanSide{a, b} {
		udpSourceEcho(t, l.ns)
	}
	must(t, tp.head.AddAddr("eth0", "10.99.0.2/24"))
	must(t, tp.head.AddAddr("enx0", "10.98.0.2/24"))
	mustRun(t, tp.head, "ip", "route", "add", "default", "via", a.router, "dev", "eth0", "metric", "202")
	d := tp.startDaemon(t, autoConfig(t, tp, ""))
	node := gadget(t, tp, 1)
	if l, err := dhcptest.Udhcpc(node, "eth0", dhcptest.Options{Dir: t.TempDir()}); err != nil || l.Server != "192.168.50.1" {
		t.Fatalf("p1's lease: %+v, %v", l, err)
	}
	d.waitFor(t, "eth0 the uplink", func(s *api.Status) bool { return s.Roles != nil && s.Roles.Uplink.Interface == "eth0" })

	var conn net.PacketConn
	must(t, node.Do(func() error { var err error; conn, err = net.ListenPacket("udp4", ":0"); return err }))
	defer conn.Close()
	seen := make(chan string, 256)
	go func() {
		buf := make([]byte, 64)
		for {
			n, _, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			seen <- string(buf[:n])
		}
	}()
	dst := &net.UDPAddr{IP: net.ParseIP(internetIP), Port: 9000}
	stopSend := make(chan struct{})
	go func() {
		for {
			conn.WriteTo([]byte("x"), dst)
			select {
			case <-stopSend:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	defer close(stopSend)
	waitSeen := func(want string, within time.Duration) (time.Time, bool) {
		deadline := time.After(within)
		for {
			select {
			case s := <-seen:
				if s == want {
					return time.Now(), true
				}
			case <-deadline:
				return time.Time{}, false
			}
		}
	}
	if _, ok := waitSeen("10.99.0.2", 3*time.Second); !ok {
		t.Fatal("the flow never left by eth0")
	}
	moved := time.Now()
	mustRun(t, tp.head, "ip", "route", "add", "default", "via", b.router, "dev", "enx0", "metric", "100")
	at, ok := waitSeen("10.98.0.2", 5*time.Second)
	if !ok {
		t.Fatalf("the node's flow still leaves by eth0 5 s after enx0 took the default route; log:\n%s", d.log.String())
	}
	t.Logf("the node's open UDP flow left by enx0 %v after its route with the lower metric appeared", at.Sub(moved).Round(time.Millisecond))
	if at.Sub(moved) > 2*time.Second {
		t.Errorf("the flow moved after %v, want within 2 s", at.Sub(moved))
	}
	_, upAt := d.waitFor(t, "enx0 the uplink", func(s *api.Status) bool { return s.Uplink.Interface == "enx0" && s.Uplink.Address == "10.98.0.2/24" })
	t.Logf("status shows enx0 as the uplink %v after its route appeared", upAt.Sub(moved).Round(time.Millisecond))
	if upAt.Sub(moved) > 2*time.Second {
		t.Errorf("the status followed after %v, want within 2 s", upAt.Sub(moved))
	}
}

// udpSourceEcho answers every datagram to 10.100.0.1:9000 in ns with the
// address it came from.
func udpSourceEcho(t *testing.T, ns *sandbox.NS) {
	t.Helper()
	var pc net.PacketConn
	must(t, ns.Do(func() error { var err error; pc, err = net.ListenPacket("udp4", internetIP+":9000"); return err }))
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 64)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo([]byte(from.(*net.UDPAddr).IP.String()), from)
		}
	}()
}

// The cables swapped while the daemon runs: the cluster port loses its
// carrier and comes back on a LAN (its DHCP server answers there). The
// port is checked again before ours answers, found to be a LAN, and our
// address leaves it.
func TestE2ERolesSwappedWhileRunning(t *testing.T) {
	dhcptest.Need(t)
	tp := newTopo(t, true)
	d := tp.startDaemon(t, tp.config(t, "[dhcp]\nprobe = \"1s\"\n"))
	d.waitFor(t, "eth0 taken and served", func(s *api.Status) bool { return s.Cluster.Address == "192.168.50.1/24" && serving(s) })

	must(t, tp.inside.Down("in0"))
	d.waitFor(t, "eth0 held for a new check", func(s *api.Status) bool { return s.Roles != nil && !s.Roles.Cluster.Claimed })
	// Plugged into a LAN: 10.44.0.0/24 with its own DHCP server.
	must(t, tp.inside.DelAddr("in0", "192.168.50.2/24"))
	must(t, tp.inside.AddAddr("in0", "10.44.0.1/24"))
	if _, err := dhcptest.Udhcpd(t, tp.inside, "in0", "10.44.0.1", "10.44.0.100", "10.44.0.110", t.TempDir()); err != nil {
		t.Fatal(err)
	}
	plugged := time.Now()
	must(t, tp.inside.Up("in0"))
	s, at := d.waitFor(t, "eth0 a LAN, our address gone", func(s *api.Status) bool {
		return s.Roles != nil && s.Roles.Problem != "" && s.Cluster.Address != "192.168.50.1/24"
	})
	t.Logf("eth0 found to be a LAN and our address off it %v after it was plugged in: %s", at.Sub(plugged).Round(time.Millisecond), s.Roles.Problem)
	if a := addrOn(t, tp.head, "eth0"); strings.Contains(a, "192.168.50.1/") {
		t.Errorf("our address stayed on the LAN: %s", a)
	}
	if s.DHCP.State == api.DHCPServing || s.DHCP.Packets.Offers != 0 && s.DHCP.State != api.DHCPOtherServer {
		t.Errorf("DHCP %+v", s.DHCP)
	}
}
