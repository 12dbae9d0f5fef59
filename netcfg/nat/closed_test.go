package nat

// Closed from every side, in throwaway namespaces: a third interface
// beside the uplink, as Wi-Fi beside Ethernet,
//
//	inside (in0 192.168.50.2) -- eth0 [head] eth1 (10.99.0.2) -- (out0 10.99.0.1) outside
//	                                         eth2 (10.98.0.2) -- (w0 10.98.0.1)   wifi
//
// outside and wifi both have a route to the cluster through the head, so
// only our rules can keep their new connections out.

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/headnode/headnode/netcfg/firewall"
	"github.com/headnode/headnode/netcfg/sandbox"
	"golang.org/x/sys/unix"
)

// addWifi adds the third namespace and routes from outside and wifi to the
// cluster through the head.
func (tp *topo) addWifi(t testing.TB) *sandbox.NS {
	t.Helper()
	wifi, err := sandbox.New(fmt.Sprintf("hnc%dwifi", os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { wifi.Close() })
	for _, err := range []error{
		sandbox.Veth(tp.head, "eth2", wifi, "w0"),
		tp.head.AddAddr("eth2", "10.98.0.2/24"),
		wifi.AddAddr("w0", "10.98.0.1/24"),
		wifi.Route("192.168.50.0/24", "10.98.0.2"),
		tp.outside.Route("192.168.50.0/24", "10.99.0.2"),
	} {
		must(t, err)
	}
	return wifi
}

// New connections into the cluster are dropped from the uplink and from a
// third interface; the cluster reaches both, masqueraded on whichever it
// leaves by.
func TestKernelClosedFromEverySide(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			tp := newTopo(t)
			wifi := tp.addWifi(t)
			must(t, tp.head.AddAddr("eth0", "192.168.50.1/24"))
			must(t, run(tp.head, "sysctl", "-qw", "net.ipv4.ip_forward=1"))
			// Controls: without our rules both ways in are open.
			for _, from := range []*sandbox.NS{tp.outside, wifi} {
				if _, err := dialFrom(from, tp.inside, "192.168.50.2:8090", time.Second); err != nil {
					t.Fatalf("control: %s -> node failed before our rules: %v", from.Name, err)
				}
			}
			if _, err := tp.manager(t, backend).Apply(); err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				from *sandbox.NS
				side string
			}{{tp.outside, "the uplink"}, {wifi, "a third interface"}} {
				if src, err := dialFrom(c.from, tp.inside, "192.168.50.2:8091", 500*time.Millisecond); err == nil {
					t.Errorf("a new connection from %s reached a node (it saw %s)", c.side, src)
				}
			}
			for _, c := range []struct {
				to       *sandbox.NS
				addr, as string
			}{{tp.outside, "10.99.0.1:8092", "10.99.0.2"}, {wifi, "10.98.0.1:8093", "10.98.0.2"}} {
				src, err := dialFrom(tp.inside, c.to, c.addr, 2*time.Second)
				if err != nil {
					t.Errorf("node -> %s: %v", c.addr, err)
				} else if src != c.as {
					t.Errorf("node -> %s arrived from %s, want the head's address there, %s", c.addr, src, c.as)
				}
			}
		})
	}
}

// During 100 consecutive rewrites of our rules (another program adds a
// harmless rule to our chain; Apply replaces the chain), a flood of
// connection attempts from outside at a node must see no gap: the number
// of connections the node accepts is counted, and must be zero. The same
// flood against the way chains were rewritten before (flush the chain,
// then append the rules one process at a time) shows the gap this closes,
// and proves the flood would notice one.
func TestKernelNoLeakDuringRewrites(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			tp := newTopo(t)
			must(t, tp.outside.Route("192.168.50.0/24", "10.99.0.2"))
			m := tp.manager(t, backend)
			if _, err := m.Apply(); err != nil {
				t.Fatal(err)
			}
			l, err := tp.inside.Listen("192.168.50.2:7000")
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			var accepted atomic.Int64
			go func() {
				for {
					c, err := l.Accept()
					if err != nil {
						return
					}
					accepted.Add(1)
					c.Close()
				}
			}()
			leaks := func(rewrite func(i int)) (leaked int64, attempts int, rate float64) {
				t.Helper()
				stop := make(chan struct{})
				done := make(chan error, 1)
				var n int
				go func() {
					var err error
					n, err = flood(tp.outside, netip.MustParseAddrPort("192.168.50.2:7000"), stop)
					done <- err
				}()
				time.Sleep(50 * time.Millisecond) // the flood is running
				start, before := time.Now(), accepted.Load()
				for i := range 100 {
					rewrite(i)
				}
				// Handshakes whose SYN went through complete within
				// milliseconds; the flood's sockets live 200 ms.
				time.Sleep(300 * time.Millisecond)
				close(stop)
				if err := <-done; err != nil {
					t.Fatal(err)
				}
				return accepted.Load() - before, n, float64(n) / time.Since(start).Seconds()
			}
			harmless := func() {
				if backend == "netlink" {
					must(t, run(tp.head, "nft", "add rule ip headnode forward ip saddr 203.0.113.9 return"))
				} else {
					must(t, run(tp.head, ipt(backend), "-A", "HEADNODE-FWD", "-s", "203.0.113.9/32", "-j", "RETURN"))
				}
			}
			leaked, attempts, rate := leaks(func(i int) {
				harmless()
				res, err := m.Apply()
				if err != nil || len(res.Changes) == 0 {
					t.Fatalf("rewrite #%d: changes %v, err %v", i+1, res.Changes, err)
				}
			})
			t.Logf("%s: one transaction per rewrite: %d connections got in during 100 rewrites (%d attempts, %.0f/s)", backend, leaked, attempts, rate)
			if leaked != 0 {
				t.Errorf("%d new connections from outside reached the node while our rules were rewritten", leaked)
			}
			oldLeaked, attempts, rate := leaks(func(int) {
				harmless()
				flushThenAdd(t, tp.head, backend)
			})
			t.Logf("%s: flush, then add rule by rule: %d connections got in during 100 rewrites (%d attempts, %.0f/s)", backend, oldLeaked, attempts, rate)
			if oldLeaked == 0 {
				t.Errorf("the flood found no gap in the non-atomic rewrite either: it cannot tell a gap from none")
			}
		})
	}
}

// flushThenAdd rewrites our filter chain as it was done before: flush it,
// then one process per rule, so that the DROP is missing in between.
func flushThenAdd(t *testing.T, ns *sandbox.NS, backend string) {
	t.Helper()
	if backend == "netlink" {
		must(t, run(ns, "nft", "flush chain ip headnode forward"))
		in := false
		for _, l := range strings.Split(goldenNFT, "\n") {
			l = strings.TrimSpace(l)
			switch {
			case l == "chain forward {":
				in = true
			case l == "}":
				in = false
			case in && !strings.HasPrefix(l, "type "):
				must(t, run(ns, "nft", "add rule ip headnode forward "+l))
			}
		}
		return
	}
	must(t, run(ns, ipt(backend), "-F", "HEADNODE-FWD"))
	for _, l := range strings.Split(goldenRules, "\n") {
		if strings.HasPrefix(l, "-A HEADNODE-FWD ") {
			must(t, run(ns, ipt(backend), strings.Fields(l)...))
		}
	}
}

// flood opens TCP connections from ns to dst at about 1000 a second until
// stop is closed, each socket kept for 200 ms (long enough for a handshake
// whose SYN got through to complete; short enough that no SYN is sent
// twice), and returns how many it started. Everything runs on one thread
// inside ns, so every socket belongs to ns.
func flood(ns *sandbox.NS, dst netip.AddrPort, stop <-chan struct{}) (int, error) {
	type open struct {
		fd int
		at time.Time
	}
	started := 0
	err := ns.Do(func() error {
		var q []open
		defer func() {
			for _, o := range q {
				unix.Close(o.fd)
			}
		}()
		sa := &unix.SockaddrInet4{Port: int(dst.Port()), Addr: dst.Addr().As4()}
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return nil
			case <-tick.C:
			}
			now := time.Now()
			for len(q) > 0 && now.Sub(q[0].at) > 200*time.Millisecond {
				unix.Close(q[0].fd)
				q = q[1:]
			}
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return err
			}
			if err := unix.Connect(fd, sa); err != nil && err != unix.EINPROGRESS {
				unix.Close(fd)
				return fmt.Errorf("connect: %w", err)
			}
			q = append(q, open{fd, now})
			started++
		}
	})
	return started, err
}

// The cluster side changes while the Keeper runs (renumbered, then moved
// to another interface): the rules follow without a restart, the address
// we added goes with them, and the new side is closed and NATed.
func TestKernelSetDesiredMovesTheCluster(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			tp := newTopo(t)
			must(t, tp.outside.Route("192.168.60.0/24", "10.99.0.2"))
			must(t, tp.outside.Route("192.168.70.0/24", "10.99.0.2"))
			k := NewKeeper(tp.manager(t, backend), KeeperOptions{})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { k.Run(ctx); close(done) }()
			defer func() { cancel(); <-done }()
			if _, err := k.Apply(ctx); err != nil {
				t.Fatal(err)
			}
			addrs := func(link string) string {
				out, err := tp.head.Run("ip", "-4", "-o", "addr", "show", link)
				if err != nil {
					t.Fatal(err)
				}
				return out
			}
			// Renumbered: the node follows (as its DHCP client would).
			must(t, tp.inside.DelAddr("in0", "192.168.50.2/24"))
			must(t, tp.inside.AddAddr("in0", "192.168.60.2/24"))
			must(t, tp.inside.DefaultRoute("192.168.60.1"))
			res, err := k.SetDesired(ctx, Desired{ClusterInterface: "eth0", ClusterAddress: netip.MustParsePrefix("192.168.60.1/24")})
			if err != nil || res.Subnet.String() != "192.168.60.0/24" {
				t.Fatalf("renumber: %+v, %v", res, err)
			}
			if a := addrs("eth0"); strings.Contains(a, "192.168.50.1") || !strings.Contains(a, "192.168.60.1/24") {
				t.Errorf("eth0 after the renumbering:\n%s", a)
			}
			checkSide(t, tp, tp.inside, "192.168.60.2")
			rules := save(t, tp.head, backend)
			if strings.Contains(rules, "192.168.50.") || !strings.Contains(rules, "192.168.60.0/24") {
				t.Errorf("rules after the renumbering:\n%s", rules)
			}

			// Moved to another interface, with a node behind it.
			inside2, err := sandbox.New(fmt.Sprintf("hnc%din2", os.Getpid()))
			if err != nil {
				t.Fatal(err)
			}
			defer inside2.Close()
			must(t, sandbox.Veth(tp.head, "eth3", inside2, "in0"))
			must(t, inside2.AddAddr("in0", "192.168.70.2/24"))
			must(t, inside2.DefaultRoute("192.168.70.1"))
			if _, err := k.SetDesired(ctx, Desired{ClusterInterface: "eth3", ClusterAddress: netip.MustParsePrefix("192.168.70.1/24")}); err != nil {
				t.Fatal(err)
			}
			if a := addrs("eth0"); strings.Contains(a, "192.168.60.1") {
				t.Errorf("the address we had added stays on the old cluster interface:\n%s", a)
			}
			if a := addrs("eth3"); !strings.Contains(a, "192.168.70.1/24") {
				t.Errorf("eth3 after the move:\n%s", a)
			}
			checkSide(t, tp, inside2, "192.168.70.2")
			st, err := k.Status(ctx)
			if err != nil || !st.RulesPresent || st.Subnet != "192.168.70.0/24" {
				t.Errorf("status after the move: %+v, %v", st, err)
			}
		})
	}
}

// checkSide: the node at addr in ns reaches outside, NATed, and outside
// cannot reach it.
func checkSide(t *testing.T, tp *topo, ns *sandbox.NS, addr string) {
	t.Helper()
	if src, err := dialFrom(ns, tp.outside, "10.99.0.1:8094", 2*time.Second); err != nil || src != "10.99.0.2" {
		t.Errorf("node %s -> outside: seen as %q, %v; want 10.99.0.2", addr, src, err)
	}
	if src, err := dialFrom(tp.outside, ns, net.JoinHostPort(addr, "8095"), 500*time.Millisecond); err == nil {
		t.Errorf("a new connection from outside reached node %s (it saw %s)", addr, src)
	}
}

// hookedIPTables is the real iptables with another program acting right
// after each of our iptables-restore transactions, before the read-back.
type hookedIPTables struct {
	firewall.IPTables
	after func()
}

func (h hookedIPTables) Restore(input string) error {
	err := h.IPTables.Restore(input)
	if err == nil {
		h.after()
	}
	return err
}

// Another program adds a rule to our chain the moment after our rewrite
// (before we read the chain back to learn how this iptables prints it).
// The rule must not be learned as ours: the next check finds and removes
// it, with real iptables.
func TestKernelForeignRuleRightAfterOurWriteIsRepaired(t *testing.T) {
	for _, backend := range []string{"nft", "legacy"} {
		t.Run(backend, func(t *testing.T) {
			tp := newTopo(t)
			m := tp.manager(t, backend)
			real := m.fw.(*firewall.IPTablesRunner)
			inserted := 0
			hooked := firewall.NewIPTablesRunner(hookedIPTables{real.IPTables(), func() {
				if inserted == 0 {
					inserted++
					// On the Manager's thread, so in the head namespace.
					if out, err := exec.Command(ipt(backend), "-A", "HEADNODE-FWD", "-s", "203.0.113.7/32", "-j", "ACCEPT").CombinedOutput(); err != nil {
						t.Errorf("the foreign insert: %v %s", err, out)
					}
				}
			}}, real.Backend())
			m.fw = hooked
			if _, err := m.Apply(); err != nil {
				t.Fatal(err)
			}
			if inserted != 1 || !strings.Contains(save(t, tp.head, backend), "203.0.113.7") {
				t.Fatalf("the foreign rule was not inserted (%d)", inserted)
			}
			st, err := m.Status()
			if err != nil || st.RulesPresent {
				t.Errorf("status accepts our chain with the foreign rule in it: %+v, %v", st.Rules, err)
			}
			res, err := m.Apply()
			if err != nil || len(res.Changes) == 0 {
				t.Fatalf("second apply did not repair: %v, %v", res.Changes, err)
			}
			if diff := cmp.Diff(goldenRules, ours(t, tp.head, backend)); diff != "" {
				t.Errorf("after the repair (-golden +got):\n%s", diff)
			}
			if res, err := m.Apply(); err != nil || len(res.Changes) != 0 {
				t.Errorf("third apply changed %v, %v", res.Changes, err)
			}
		})
	}
}
