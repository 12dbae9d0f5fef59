package nat

// Tests against the real kernel and real iptables, in throwaway network
// namespaces:
//
//	inside (in0 192.168.50.2) -- eth0 [head] eth1 (10.99.0.2) -- (out0 10.99.0.1) outside
//
// outside has no route back to 192.168.50.0/24, so a reply only arrives if
// the head NATed the connection.

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/headnode/headnode/netcfg/sandbox"
	"github.com/headnode/headnode/netcfg/sandbox/sandboxtest"
)

type topo struct {
	inside, head, outside *sandbox.NS
}

func newTopo(t testing.TB) *topo {
	t.Helper()
	sandboxtest.Need(t)
	// Unique per process: go test runs packages in parallel, and other
	// packages build namespaces too.
	prefix := fmt.Sprintf("hnc%d", os.Getpid())
	tp := &topo{}
	var err error
	for _, p := range []struct {
		ns   **sandbox.NS
		role string
	}{{&tp.inside, "in"}, {&tp.head, "head"}, {&tp.outside, "out"}} {
		*p.ns, err = sandbox.New(prefix + p.role)
		if err != nil {
			t.Fatal(err)
		}
		ns := *p.ns
		t.Cleanup(func() { ns.Close() })
	}
	for _, err := range []error{
		sandbox.Veth(tp.head, "eth0", tp.inside, "in0"),
		sandbox.Veth(tp.head, "eth1", tp.outside, "out0"),
		tp.head.AddAddr("eth1", "10.99.0.2/24"),
		tp.outside.AddAddr("out0", "10.99.0.1/24"),
		tp.inside.AddAddr("in0", "192.168.50.2/24"),
		tp.inside.DefaultRoute("192.168.50.1"),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return tp
}

func (tp *topo) manager(t testing.TB, backend string) *Manager {
	t.Helper()
	return tp.managerWith(t, backend, "192.168.50.1/24", t.TempDir())
}

// managerWith is manager with another cluster address or a state directory
// shared with an earlier Manager.
func (tp *topo) managerWith(t testing.TB, backend, clusterAddress, stateDir string) *Manager {
	t.Helper()
	ns := tp.head.Handle
	m, err := NewManager(Options{
		ClusterInterface: "eth0",
		UplinkInterface:  "eth1",
		ClusterAddress:   netip.MustParsePrefix(clusterAddress),
		Firewall:         firewallChoice(backend),
		StateDir:         stateDir,
		Namespace:        &ns,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

// backends are the firewall backends every kernel test runs against: the
// iptables program over nf_tables and over x_tables, and nf_tables
// programmed over netlink.
var backends = []string{"nft", "legacy", "netlink"}

// firewallChoice is Options.Firewall for a test backend name.
func firewallChoice(backend string) string {
	switch backend {
	case "nft":
		return FirewallIPTablesNFT
	case "legacy":
		return FirewallIPTablesLegacy
	case "netlink":
		return FirewallNFTables
	}
	return backend
}

// ipt is the iptables program a test uses beside backend, as another
// program on the same system would: for the netlink backend, iptables-nft.
func ipt(backend string) string {
	if backend == "netlink" {
		return "iptables-nft"
	}
	return "iptables-" + backend
}

// goldenRules is package firewall's golden listing of our rules on a system
// where nothing else is installed (for eth0 and 192.168.50.0/24, as newTopo
// and manager set up); its unit tests check the same file against their
// in-memory iptables. goldenNFT is the netlink backend's table as `nft list
// table ip headnode` prints it.
var goldenRules, goldenNFT = readGolden("rules.golden"), readGolden("nftables.golden")

func readGolden(name string) string {
	b, err := os.ReadFile("../firewall/testdata/" + name)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// ours returns our rules as the backend's own tool lists them: for the
// iptables backends `iptables -S` of filter, nat and mangle, each table's
// listing headed by "*TABLE" (the format of goldenRules); for netlink, `nft
// list table ip headnode`, or "" when there is no such table.
func ours(t testing.TB, ns *sandbox.NS, backend string) string {
	t.Helper()
	if backend == "netlink" {
		out, err := ns.Run("nft", "list", "table", "ip", "headnode")
		if err != nil {
			if strings.Contains(out, "No such file or directory") {
				return ""
			}
			t.Fatal(err)
		}
		return out
	}
	var b strings.Builder
	for _, table := range []string{"filter", "nat", "mangle"} {
		out, err := ns.Run(ipt(backend), "-t", table, "-S")
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "*%s\n%s", table, out)
	}
	return b.String()
}

// golden is what ours returns with our rules installed and nothing else.
func golden(backend string) string {
	if backend == "netlink" {
		return goldenNFT
	}
	return goldenRules
}

var counters = regexp.MustCompile(`\[\d+:\d+\]`)

// save returns the whole ruleset, byte for byte but for comments and
// counters: iptables-save of the backend's iptables (without its
// timestamped comment lines, with packet counters zeroed); for the netlink
// backend `nft list ruleset`, which shows every table, iptables-nft's too.
func save(t testing.TB, ns *sandbox.NS, backend string) string {
	t.Helper()
	if backend == "netlink" {
		out, err := ns.Run("nft", "list", "ruleset")
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	out, err := ns.Run(ipt(backend) + "-save")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if !strings.HasPrefix(l, "#") {
			lines = append(lines, counters.ReplaceAllString(l, "[0:0]"))
		}
	}
	return strings.Join(lines, "\n")
}

// tamper removes our rules as another program would: for the iptables
// backends `iptables -F` of filter and nat; for netlink `nft flush
// ruleset`, which removes every table.
func tamper(t testing.TB, ns *sandbox.NS, backend string) {
	t.Helper()
	if backend == "netlink" {
		must(t, run(ns, "nft", "flush", "ruleset"))
		return
	}
	for _, table := range []string{"filter", "nat"} {
		must(t, run(ns, ipt(backend), "-t", table, "-F"))
	}
}

func run(ns *sandbox.NS, name string, args ...string) error {
	_, err := ns.Run(name, args...)
	return err
}

func forwarding(t testing.TB, ns *sandbox.NS) string {
	t.Helper()
	out, err := ns.Run("cat", "/proc/sys/net/ipv4/ip_forward")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

var dialFrom = sandboxtest.SourceSeen

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestKernelApplyTwiceIsIdenticalAndClearRestores(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			tp := newTopo(t)
			// Something already there, as on any real system: a ufw-like
			// input rule and a foreign masquerade (written with nft on a
			// system without iptables).
			if backend == "netlink" {
				for _, args := range [][]string{
					{"add", "table", "inet", "user"},
					{"add", "chain", "inet", "user", "input", "{ type filter hook input priority 0; }"},
					{"add", "rule", "inet", "user", "input", "iif", "lo", "accept"},
					{"add", "chain", "inet", "user", "post", "{ type nat hook postrouting priority 100; }"},
					{"add", "rule", "inet", "user", "post", "ip", "saddr", "10.42.0.0/16", "oifname", "!=", "cni0", "masquerade"},
				} {
					must(t, run(tp.head, "nft", args...))
				}
			} else {
				for _, args := range [][]string{
					{"-A", "INPUT", "-i", "lo", "-j", "ACCEPT"},
					{"-t", "nat", "-A", "POSTROUTING", "-s", "10.42.0.0/16", "!", "-o", "cni0", "-j", "MASQUERADE"},
				} {
					must(t, run(tp.head, ipt(backend), args...))
				}
			}
			baseline := save(t, tp.head, backend)
			m := tp.manager(t, backend)
			res, err := m.Apply()
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Waiting) != 0 || res.Subnet.String() != "192.168.50.0/24" {
				t.Errorf("apply result %+v", res)
			}
			first := save(t, tp.head, backend)
			res, err = m.Apply()
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Changes) != 0 {
				t.Errorf("second apply changed %v", res.Changes)
			}
			if diff := cmp.Diff(first, save(t, tp.head, backend)); diff != "" {
				t.Fatalf("iptables-save differs after applying twice (-first +second):\n%s", diff)
			}
			// A new Manager (a daemon restart) must not rewrite either.
			res, err = tp.manager(t, backend).Apply()
			if err != nil || len(res.Changes) != 0 {
				t.Errorf("apply after restart: changes %v, err %v", res.Changes, err)
			}
			if forwarding(t, tp.head) != "1" {
				t.Error("ip_forward not on after apply")
			}
			if out, _ := tp.head.Run("ip", "-4", "addr", "show", "eth0"); !strings.Contains(out, "192.168.50.1/24") {
				t.Errorf("cluster address missing after apply:\n%s", out)
			}

			if _, err := m.Clear(); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(baseline, save(t, tp.head, backend)); diff != "" {
				t.Fatalf("iptables-save after clear (-baseline +got):\n%s", diff)
			}
			if forwarding(t, tp.head) != "0" {
				t.Error("ip_forward still on after clear, though we had turned it on")
			}
			if out, _ := tp.head.Run("ip", "-4", "addr", "show", "eth0"); strings.Contains(out, "192.168.50.1") {
				t.Errorf("cluster address still there after clear:\n%s", out)
			}
			st, err := m.Status()
			if err != nil || st.RulesPresent || !st.Cleared {
				t.Errorf("status after clear: %+v, %v", st, err)
			}
		})
	}
}

func TestKernelRulesMatchGolden(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			tp := newTopo(t)
			empty := ours(t, tp.head, backend)
			m := tp.manager(t, backend)
			if _, err := m.Apply(); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(golden(backend), ours(t, tp.head, backend)); diff != "" {
				t.Errorf("(-golden +%s):\n%s", backend, diff)
			}
			if _, err := m.Clear(); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(empty, ours(t, tp.head, backend)); diff != "" {
				t.Errorf("after clear (-before +after):\n%s", diff)
			}
		})
	}
}

func TestKernelNATForwardsOutAndBlocksIn(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			tp := newTopo(t)
			if err := tp.head.AddAddr("eth0", "192.168.50.1/24"); err != nil {
				t.Fatal(err)
			}
			// Control: with forwarding on but no NAT, the SYN reaches
			// outside but the reply has no route back.
			if _, err := tp.head.Run("sysctl", "-qw", "net.ipv4.ip_forward=1"); err != nil {
				t.Fatal(err)
			}
			if src, err := dialFrom(tp.inside, tp.outside, "10.99.0.1:8080", 500*time.Millisecond); err == nil {
				t.Fatalf("without NAT a connection got through (server saw %s): the test proves nothing", src)
			}
			// Control: give outside a route to the cluster; without our
			// rules, a new inbound connection gets through.
			if err := tp.outside.Route("192.168.50.0/24", "10.99.0.2"); err != nil {
				t.Fatal(err)
			}
			if _, err := dialFrom(tp.outside, tp.inside, "192.168.50.2:8081", time.Second); err != nil {
				t.Fatalf("control: inbound connection failed before our rules: %v", err)
			}

			if _, err := tp.manager(t, backend).Apply(); err != nil {
				t.Fatal(err)
			}
			src, err := dialFrom(tp.inside, tp.outside, "10.99.0.1:8080", 2*time.Second)
			if err != nil {
				t.Fatalf("inside -> outside with NAT: %v", err)
			}
			if src != "10.99.0.2" {
				t.Errorf("outside saw source %s, want the head's uplink address 10.99.0.2", src)
			}
			if src, err := dialFrom(tp.outside, tp.inside, "192.168.50.2:8081", 500*time.Millisecond); err == nil {
				t.Errorf("a new connection from the uplink reached a node (node saw %s)", src)
			}
		})
	}
}

// Flows that began before the MASQUERADE rule keep their un-NATed mapping
// when a nat hook already exists; Apply flushes them.
func TestKernelApplyFixesStaleConntrack(t *testing.T) {
	tp := newTopo(t)
	backend := "nft"
	if err := tp.head.AddAddr("eth0", "192.168.50.1/24"); err != nil {
		t.Fatal(err)
	}
	if _, err := tp.head.Run("sysctl", "-qw", "net.ipv4.ip_forward=1"); err != nil {
		t.Fatal(err)
	}
	// Docker's masquerade: connection tracking and the nat hook are
	// active before our rule exists.
	if _, err := tp.head.Run(ipt(backend), "-t", "nat", "-A", "POSTROUTING", "-s", "172.17.0.0/16", "!", "-o", "docker0", "-j", "MASQUERADE"); err != nil {
		t.Fatal(err)
	}
	var srv net.PacketConn
	must(t, tp.outside.Do(func() (err error) { srv, err = net.ListenPacket("udp4", "10.99.0.1:9999"); return }))
	defer srv.Close()
	var cli net.PacketConn
	must(t, tp.inside.Do(func() (err error) { cli, err = net.ListenPacket("udp4", "192.168.50.2:5555"); return }))
	defer cli.Close()
	dst := &net.UDPAddr{IP: net.IPv4(10, 99, 0, 1), Port: 9999}
	recvFrom := func() string {
		t.Helper()
		if _, err := cli.WriteTo([]byte("x"), dst); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 16)
		srv.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, from, err := srv.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		return from.(*net.UDPAddr).IP.String()
	}
	if got := recvFrom(); got != "192.168.50.2" {
		t.Fatalf("before NAT the flow came from %s; expected the node's own address", got)
	}
	m := tp.manager(t, backend)
	if _, err := m.Apply(); err != nil {
		t.Fatal(err)
	}
	if got := recvFrom(); got != "10.99.0.2" {
		t.Errorf("after apply the old flow still comes from %s, want 10.99.0.2 (conntrack not flushed)", got)
	}
}

// The Keeper restores connectivity after another program removes our
// rules: `iptables -F` of both tables, with FORWARD policy DROP so that
// nothing works without our rules; for netlink `nft flush ruleset`, and
// another program deleting our table (without our masquerade the replies
// have no way back, so nothing works without our rules there either).
func TestKernelKeeperRepairsFlush(t *testing.T) {
	type tc struct {
		name, backend string
		tamper        func(t *testing.T, ns *sandbox.NS)
	}
	var cases []tc
	for _, b := range backends {
		cases = append(cases, tc{b, b, func(t *testing.T, ns *sandbox.NS) { tamper(t, ns, b) }})
	}
	cases = append(cases, tc{"netlink-delete-table", "netlink", func(t *testing.T, ns *sandbox.NS) {
		must(t, run(ns, "nft", "delete", "table", "ip", "headnode"))
	}})
	for _, c := range cases {
		backend := c.backend
		t.Run(c.name, func(t *testing.T) {
			tp := newTopo(t)
			if backend != "netlink" {
				must(t, run(tp.head, ipt(backend), "-P", "FORWARD", "DROP"))
			}
			m := tp.manager(t, backend)
			reports := make(chan KeeperReport, 100)
			k := NewKeeper(m, KeeperOptions{Report: func(r KeeperReport) {
				select {
				case reports <- r:
				default:
				}
			}})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { k.Run(ctx); close(done) }()
			defer func() { cancel(); <-done }()
			if r := <-reports; r.Err != nil {
				t.Fatal(r.Err)
			}
			if _, err := dialFrom(tp.inside, tp.outside, "10.99.0.1:8080", 2*time.Second); err != nil {
				t.Fatalf("before the flush: %v", err)
			}
			c.tamper(t, tp.head)
			flushed := time.Now()
			if _, err := dialFrom(tp.inside, tp.outside, "10.99.0.1:8081", 100*time.Millisecond); err == nil {
				t.Log("note: connection succeeded right after the flush; the repair was faster than the dial")
			}
			var restored time.Duration
			for {
				if _, err := dialFrom(tp.inside, tp.outside, "10.99.0.1:8082", 200*time.Millisecond); err == nil {
					restored = time.Since(flushed)
					break
				}
				if time.Since(flushed) > 2*time.Second {
					t.Fatalf("connectivity not restored within 2 s of the flush")
				}
			}
			t.Logf("%s: connectivity restored %v after the flush", c.name, restored.Round(time.Millisecond))
			deadline := time.After(2 * time.Second)
			for {
				select {
				case r := <-reports:
					if r.Repaired {
						if r.Repairs != 1 {
							t.Errorf("repair count %d, want 1", r.Repairs)
						}
						return
					}
				case <-deadline:
					t.Fatal("no repair reported")
				}
			}
		})
	}
}

func TestKernelApplyWaitsForMissingInterfaces(t *testing.T) {
	sandboxtest.Need(t)
	head, err := sandbox.New(fmt.Sprintf("hnc%dlone", os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	defer head.Close()
	tp := &topo{head: head}
	m := tp.manager(t, "nft")
	res, err := m.Apply()
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Waiting) == 0 || !strings.Contains(res.Waiting[0], "eth0 does not exist yet") {
		t.Errorf("waiting = %q", res.Waiting)
	}
	// Rules match interfaces by name, so they are in place before the
	// interfaces exist.
	if diff := cmp.Diff(goldenRules, ours(t, head, "nft")); diff != "" {
		t.Errorf("(-golden +got):\n%s", diff)
	}
	// The cluster interface appears (USB Ethernet, late): the next apply
	// gives it its address.
	peer, err := sandbox.New(fmt.Sprintf("hnc%dpeer", os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	must(t, sandbox.Veth(head, "eth0", peer, "in0"))
	if err := head.Down("eth0"); err != nil {
		t.Fatal(err)
	}
	res, err = m.Apply()
	if err != nil || len(res.Waiting) != 0 {
		t.Fatalf("apply after eth0 appeared: %+v, %v", res, err)
	}
	out, _ := head.Run("ip", "-4", "addr", "show", "eth0")
	if !strings.Contains(out, "192.168.50.1/24") || !strings.Contains(out, "UP") {
		t.Errorf("eth0 after apply:\n%s", out)
	}
}

// A new cluster address replaces the one we added before, and only that
// one: an address someone else put on the interface stays, through apply
// and clear.
func TestKernelApplyReplacesOnlyTheAddressItAdded(t *testing.T) {
	tp := newTopo(t)
	must(t, tp.head.AddAddr("eth0", "10.77.0.1/24")) // the user's
	dir := t.TempDir()
	open := func(addr string) *Manager { return tp.managerWith(t, "nft", addr, dir) }
	addrs := func() string {
		t.Helper()
		out, err := tp.head.Run("ip", "-4", "-o", "addr", "show", "eth0")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, f := range strings.Fields(out) {
			if _, err := netip.ParsePrefix(f); err == nil {
				got = append(got, f)
			}
		}
		return strings.Join(got, " ")
	}
	if _, err := open("192.168.50.1/24").Apply(); err != nil {
		t.Fatal(err)
	}
	if got := addrs(); got != "10.77.0.1/24 192.168.50.1/24" {
		t.Fatalf("after the first apply eth0 has %s", got)
	}
	// The configuration changes to another subnet (a daemon restart).
	m := open("192.168.60.1/24")
	res, err := m.Apply()
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, c := range res.Changes {
		texts = append(texts, c.Text)
	}
	if !slices.Contains(texts, "removed 192.168.50.1/24 from eth0 (no longer configured)") || !slices.Contains(texts, "added 192.168.60.1/24 to eth0") {
		t.Errorf("changes %q lack the removal of the old address or the new one", texts)
	}
	if got := addrs(); got != "10.77.0.1/24 192.168.60.1/24" {
		t.Errorf("after the address changed eth0 has %s, want the user's and the new one", got)
	}
	if _, err := m.Clear(); err != nil {
		t.Fatal(err)
	}
	if got := addrs(); got != "10.77.0.1/24" {
		t.Errorf("after clear eth0 has %s, want only the user's address", got)
	}
}
