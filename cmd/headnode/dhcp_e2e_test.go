package main

// End-to-end tests of the cluster network services: the daemon's DHCP
// server with real clients (busybox udhcpc, ISC dhclient) on the cluster
// side, and ClusterHAT mode, where node interfaces appear late and must
// join the bridge.

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
	"github.com/headnode/headnode/netcfg/dhcpd/dhcptest"
	"github.com/headnode/headnode/netcfg/sandbox"
)

// asMachine gives the inside namespace's interface another MAC address and
// no IPv4 address: the next DHCP client run is a different machine.
func asMachine(t *testing.T, ns *sandbox.NS, iface, mac string) {
	t.Helper()
	l, err := ns.NL.LinkByName(iface)
	if err != nil {
		t.Fatal(err)
	}
	hw, _ := net.ParseMAC(mac)
	if _, err := ns.Run("ip", "-4", "addr", "flush", "dev", iface); err != nil {
		t.Fatal(err)
	}
	if err := ns.NL.LinkSetHardwareAddr(l, hw); err != nil {
		t.Fatal(err)
	}
}

func serving(s *api.Status) bool { return s.DHCP.State == api.DHCPServing }

const dhcpConfig = `
[dhcp]
probe = "500ms"
dns = ["192.168.1.53"]
[[dhcp.static]]
mac = "02:00:00:00:00:05"
name = "p5"
`

// Leases granted to udhcpc and dhclient, static leases honoured, visible
// in `headnode status`, and kept across a daemon restart.
func TestE2EDHCPLeasesKeptAcrossRestart(t *testing.T) {
	dhcptest.Need(t)
	tp := newTopo(t, true)
	if err := tp.inside.DelAddr("in0", "192.168.50.2/24"); err != nil {
		t.Fatal(err)
	}
	cfg := tp.config(t, dhcpConfig)
	d := tp.startDaemon(t, cfg)
	d.waitFor(t, "DHCP serving", serving)

	type machine struct {
		mac, hostname string
		dhclient      bool
		dir           string
		want          dhcptest.Lease
	}
	lease := func(addr, hostname string) dhcptest.Lease {
		return dhcptest.Lease{Address: netip.MustParsePrefix(addr), Router: "192.168.50.1", DNS: []string{"192.168.1.53"}, Hostname: hostname, Server: "192.168.50.1", Lease: time.Hour}
	}
	machines := []*machine{
		{mac: "02:00:00:00:00:0a", want: lease("192.168.50.128/24", "")},
		{mac: "02:00:00:00:00:05", dhclient: true, want: lease("192.168.50.15/24", "p5")},
		{mac: "02:00:00:00:00:0b", hostname: "p3", want: lease("192.168.50.13/24", "p3")},
		{mac: "02:00:00:00:00:0c", hostname: "builder", dhclient: true, want: lease("192.168.50.129/24", "")},
	}
	get := func(m *machine) dhcptest.Lease {
		t.Helper()
		asMachine(t, tp.inside, "in0", m.mac)
		run := dhcptest.Udhcpc
		if m.dhclient {
			run = dhcptest.Dhclient
		}
		l, err := run(tp.inside, "in0", dhcptest.Options{Dir: m.dir, Hostname: m.hostname})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	for _, m := range machines {
		m.dir = t.TempDir()
		if got := get(m); fmt.Sprint(got) != fmt.Sprint(m.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", m.mac, got, m.want)
		}
	}
	// The last machine reaches the outside through the head, from its
	// leased address.
	if src, err := dial(tp.inside, tp.outside, nextAddr("10.99.0.1"), 2*time.Second); err != nil || src != "10.99.0.2" {
		t.Errorf("a DHCP client reaching the outside: %q, %v", src, err)
	}
	s, _ := d.waitFor(t, "4 leases", func(s *api.Status) bool {
		bound := 0
		for _, l := range s.DHCP.Leases {
			if !l.Offered {
				bound++
			}
		}
		return bound == 4
	})
	if s.DHCP.Packets.Acks != 4 || len(s.DHCP.Packets.Dropped) != 0 {
		t.Errorf("packets %+v", s.DHCP.Packets)
	}
	out, _, code := run(t, nil, "status", "--socket", filepath.Join(tp.dir, "control.sock"))
	for _, re := range []string{
		`DHCP\s+serving on eth0, pool 192.168.50.128-192.168.50.254, 4 leases\n`,
		`\s192\.168\.50\.13\s+p3\s+02:00:00:00:00:0b\s+expires in 59m\n`,
		`\s192\.168\.50\.15\s+p5\s+02:00:00:00:00:05\s+expires in`,
		`\s192\.168\.50\.128\s+-\s+02:00:00:00:00:0a\s+expires in`,
		`\s192\.168\.50\.129\s+builder\s+02:00:00:00:00:0c\s+expires in`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("status lacks %q (exit %d):\n%s", re, code, out)
		}
	}

	d.stop(t)
	d = tp.startDaemon(t, cfg)
	s, _ = d.waitFor(t, "DHCP serving after the restart", serving)
	if len(s.DHCP.Leases) != 4 {
		t.Errorf("after the restart the daemon shows %d leases, want 4: %+v", len(s.DHCP.Leases), s.DHCP.Leases)
	}
	newcomer := &machine{mac: "02:00:00:00:00:0d", dir: t.TempDir()}
	if got := get(newcomer); got.Address.Addr().String() != "192.168.50.130" {
		t.Errorf("a new machine after the restart got %v, want the next free 192.168.50.130", got.Address)
	}
	// dhclient asks for its remembered address (INIT-REBOOT); udhcpc
	// starts over (DISCOVER). All keep their addresses.
	for _, m := range machines {
		if got := get(m); got.Address != m.want.Address {
			t.Errorf("%s after the restart got %v, want %v", m.mac, got.Address, m.want.Address)
		}
	}
}

// Another DHCP server on the cluster network: ours stays off and says so;
// the nodes keep being served by the other one.
func TestE2EDHCPStaysOffBesideAnotherServer(t *testing.T) {
	dhcptest.Need(t)
	tp := newTopo(t, true)
	if err := tp.inside.DelAddr("in0", "192.168.50.2/24"); err != nil {
		t.Fatal(err)
	}
	if err := tp.inside.AddAddr("in0", "192.168.50.254/24"); err != nil {
		t.Fatal(err)
	}
	stop, err := dhcptest.Udhcpd(t, tp.inside, "in0", "192.168.50.254", "192.168.50.100", "192.168.50.110", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d := tp.startDaemon(t, tp.config(t, dhcpConfig))
	s, _ := d.waitFor(t, "DHCP off beside another server", func(s *api.Status) bool { return s.DHCP.State == api.DHCPOtherServer })
	if s.DHCP.OtherServer != "192.168.50.254" || !strings.Contains(s.DHCP.Reason, "another DHCP server (192.168.50.254) answers on eth0") {
		t.Errorf("dhcp status %+v", s.DHCP)
	}
	out, _, _ := run(t, nil, "status", "--socket", filepath.Join(tp.dir, "control.sock"))
	if !strings.Contains(out, "DHCP      other-server: another DHCP server (192.168.50.254) answers on eth0, so ours is not started") {
		t.Errorf("status:\n%s", out)
	}
	if !d.logged("another DHCP server answers on the cluster network; ours stays off") {
		t.Errorf("not logged:\n%s", d.log.String())
	}
	// A node asking gets its address from the other server, not from us.
	client, err := sandbox.New(tp.inside.Name + "c")
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if err := tp.inside.Bridge("lan"); err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{tp.inside.DelAddr("in0", "192.168.50.254/24"), tp.inside.Enslave("in0", "lan"), tp.inside.AddAddr("lan", "192.168.50.254/24"), sandbox.Veth(tp.inside, "c0", client, "eth0"), tp.inside.Enslave("c0", "lan")} {
		if err != nil {
			t.Fatal(err)
		}
	}
	stop() // it moves to the bridge
	if _, err := dhcptest.Udhcpd(t, tp.inside, "lan", "192.168.50.254", "192.168.50.100", "192.168.50.110", t.TempDir()); err != nil {
		t.Fatal(err)
	}
	l, err := dhcptest.Udhcpc(client, "eth0", dhcptest.Options{Dir: t.TempDir()})
	if err != nil || l.Server != "192.168.50.254" {
		t.Errorf("a node's lease: %+v, %v; want one from 192.168.50.254", l, err)
	}
	if s, _ := d.client.Status(t.Context()); s.DHCP.Packets.Offers != 0 || s.DHCP.State != api.DHCPOtherServer {
		t.Errorf("our server answered: %+v", s.DHCP)
	}
}

// ClusterHAT mode: the daemon creates br0 with the cluster address; each
// node's USB gadget interface (ethpiN) joins it when it appears; the node
// then gets its address and name by DHCP and reaches the head and the
// outside through the bridge.
func TestE2EClusterHATBridge(t *testing.T) {
	dhcptest.Need(t)
	tp := newTopo(t, false)
	for _, err := range []error{
		sandbox.Veth(tp.head, "eth1", tp.outside, "out0"),
		tp.head.AddAddr("eth1", "10.99.0.2/24"),
		tp.outside.AddAddr("out0", "10.99.0.1/24"),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	cfg := tp.config(t, "[bridge]\nenabled = true\n"+dhcpConfig)
	text, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	text = bytes.Replace(text, []byte(`cluster_interface = "eth0"`), []byte(`cluster_interface = "br0"`), 1)
	if err := os.WriteFile(cfg, text, 0o644); err != nil {
		t.Fatal(err)
	}
	d := tp.startDaemon(t, cfg)
	d.waitFor(t, "br0 with the cluster address, DHCP serving", func(s *api.Status) bool {
		return s.Bridge != nil && s.Bridge.Exists && s.Cluster.Address == "192.168.50.1/24" && serving(s) && s.NAT.State == api.NATOK
	})

	nodes := map[int]*sandbox.NS{}
	plug := func(n int) time.Duration {
		t.Helper()
		ns, err := sandbox.New(fmt.Sprintf("%sp%d", tp.head.Name, n))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ns.Close() })
		nodes[n] = ns
		// The gadget's other end is the node's usb0 with the ClusterCTRL
		// MAC 00:22:82:ff:ff:<n>; the head's end appears down.
		start := time.Now()
		v := fmt.Sprintf("ethpi%d", n)
		if err := sandbox.Veth(tp.head, v, ns, "usb0"); err != nil {
			t.Fatal(err)
		}
		tp.head.Down(v)
		l, _ := ns.NL.LinkByName("usb0")
		hw, _ := net.ParseMAC(fmt.Sprintf("00:22:82:ff:ff:%02x", n))
		ns.NL.LinkSetHardwareAddr(l, hw)
		d.waitFor(t, v+" in br0", func(s *api.Status) bool {
			for _, p := range s.Bridge.Ports {
				if p.Interface == v && p.Node == fmt.Sprintf("p%d", n) && p.Up {
					return true
				}
			}
			return false
		})
		return time.Since(start)
	}
	for n, client := range map[int]func(*sandbox.NS, string, dhcptest.Options) (dhcptest.Lease, error){1: dhcptest.Udhcpc, 2: dhcptest.Dhclient} {
		t.Logf("ethpi%d joined br0 %v after it appeared", n, plug(n).Round(time.Millisecond))
		l, err := client(nodes[n], "usb0", dhcptest.Options{Dir: t.TempDir()})
		want := fmt.Sprintf("192.168.50.%d/24", 10+n)
		if err != nil || l.Address.String() != want || l.Hostname != fmt.Sprintf("p%d", n) || l.Router != "192.168.50.1" {
			t.Fatalf("p%d's lease: %+v, %v; want %s named p%d", n, l, err, want, n)
		}
		if src, err := dial(nodes[n], tp.outside, nextAddr("10.99.0.1"), 2*time.Second); err != nil || src != "10.99.0.2" {
			t.Errorf("p%d reaching the outside through br0: %q, %v", n, src, err)
		}
		if src, err := dial(tp.head, nodes[n], nextAddr(fmt.Sprintf("192.168.50.%d", 10+n)), 2*time.Second); err != nil || src != "192.168.50.1" {
			t.Errorf("the head reaching p%d through br0: %q, %v", n, src, err)
		}
	}
	// The server reports lease changes at most every 200 ms.
	d.waitFor(t, "both leases in the status", func(s *api.Status) bool { return len(s.DHCP.Leases) >= 2 })
	out, _, _ := run(t, nil, "status", "--socket", filepath.Join(tp.dir, "control.sock"))
	for _, want := range []string{"bridge    br0: ethpi1 (p1), ethpi2 (p2)\n", "cluster   br0: 192.168.50.1/24", "192.168.50.11  p1", "192.168.50.12  p2"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	// p1 powers off: its interface goes away, and with it from the bridge.
	l, _ := tp.head.NL.LinkByName("ethpi1")
	if err := tp.head.NL.LinkDel(l); err != nil {
		t.Fatal(err)
	}
	d.waitFor(t, "ethpi1 gone from br0", func(s *api.Status) bool {
		return len(s.Bridge.Ports) == 1 && s.Bridge.Ports[0].Interface == "ethpi2"
	})
	// The bridge switched off in the configuration (SIGHUP): the bridge
	// headnode created goes away, ethpi2 with no master.
	if err := os.WriteFile(cfg, bytes.Replace(text, []byte("enabled = true"), []byte("enabled = false"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	d.cmd.Process.Signal(syscall.SIGHUP)
	d.waitFor(t, "no bridge after the reload", func(s *api.Status) bool { return s.Bridge == nil && !s.Cluster.Exists })
	if _, err := tp.head.NL.LinkByName("br0"); err == nil {
		t.Error("br0 still exists")
	}
	if l, err := tp.head.NL.LinkByName("ethpi2"); err != nil || l.Attrs().MasterIndex != 0 {
		t.Errorf("ethpi2 after the bridge was removed: %v", err)
	}
	if !d.logged(`msg="bridge no longer configured" part=dhcp change="deleted bridge br0"`) {
		t.Errorf("removal not logged:\n%s", d.log.String())
	}
}
