package sim

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
	"github.com/headnode/headnode/netcfg/sandbox"
)

// Addresses of the sandbox. The "internet" is a server in the uplink
// namespace that answers with the address it sees; nothing leaves the
// machine.
const (
	headUplink    = "10.99.0.2/24"
	internetAddr  = internetIP + ":8080"
	clusterPrefix = "192.168.50."
)

// sandboxNet is the simulated network: the user's network (uplink), the
// head node, and one namespace per cluster node.
type sandboxNet struct {
	prefix string
	dir    string
	uplink *sandbox.NS
	head   *sandbox.NS
	// extra are the topology's other namespaces (a second LAN, a switch).
	extra []*sandbox.NS
	topo  *topology
	stops []func()

	mu    sync.Mutex
	nodes map[string]*simNode
	// probes are the way-out checks under way; close waits for them
	// before it closes the namespaces they dial from.
	probes sync.WaitGroup
	// consoles are the nodes' serial consoles (console.go); nil until
	// the machine's USB tree is known.
	consoles *nodeConsoles
}

// simNode is one emulated Pi: a namespace, and while it is powered and has
// booted, a link to the head (ethpiN there, eth0 inside).
type simNode struct {
	name    string
	n       int
	ns      *sandbox.NS
	link    bool      // the gadget link exists
	powered time.Time // when power was seen on; zero when off
	addr    string    // its address, once configured
	out     string    // what the internet server saw it as, or why not
}

func buildSandbox(prefix, dir, topo string) (*sandboxNet, error) {
	sb := &sandboxNet{prefix: prefix, dir: dir, nodes: map[string]*simNode{}}
	var err error
	fail := func(e error) (*sandboxNet, error) { sb.close(); return nil, e }
	if sb.head, err = sandbox.New(prefix + "-head"); err != nil {
		return fail(err)
	}
	if err := sb.buildTopology(topo); err != nil {
		return fail(err)
	}
	return sb, nil
}

func (sb *sandboxNet) close() {
	sb.probes.Wait()
	sb.topo.stop()
	for _, f := range sb.stops {
		f()
	}
	if sb.consoles != nil {
		sb.consoles.close()
	}
	for _, n := range sb.nodes {
		n.ns.Close()
	}
	for _, ns := range append([]*sandbox.NS{sb.uplink, sb.head}, sb.extra...) {
		if ns != nil {
			ns.Close()
		}
	}
}

// nodeView is what the terminal shows about a node's network.
type nodeView struct {
	Name, Link, Addr, Out string
}

// follow makes each node's network follow its emulated power: a node
// powered for bootDelay gets its gadget link (and then its address, by DHCP
// from the head when udhcpc is installed); a node without power loses it.
func (sb *sandboxNet) follow(ctx context.Context, s *api.Status, bootDelay time.Duration) []nodeView {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	var views []nodeView
	hubGone := hatHubGone(s, sb.dir)
	for i, pn := range s.Power.Nodes {
		node := sb.nodes[pn.Name]
		if node == nil {
			ns, err := sandbox.New(fmt.Sprintf("%s-%s", sb.prefix, pn.Name))
			if err != nil {
				views = append(views, nodeView{Name: pn.Name, Out: err.Error()})
				continue
			}
			node = &simNode{name: pn.Name, n: i + 1, ns: ns}
			sb.nodes[pn.Name] = node
		}
		on := pn.Powered != nil && *pn.Powered
		switch {
		case on && node.powered.IsZero():
			node.powered = time.Now()
			sb.consoleOn(node, bootDelay)
		case !on:
			if !node.powered.IsZero() {
				sb.consoleOff(node)
			}
			node.powered = time.Time{}
			if node.link {
				sb.unplug(node)
			}
		}
		if hubGone[pn.Name] && node.link {
			sb.unplug(node) // powered, but its USB hub is off
		}
		if on && !hubGone[pn.Name] && !node.link && time.Since(node.powered) >= bootDelay {
			if err := sb.plug(node); err != nil {
				node.out = err.Error()
			}
		}
		v := nodeView{Name: node.name, Addr: node.addr, Out: node.out}
		if node.link {
			v.Link = gadgetName(node.n)
		}
		if !on {
			v.Out = ""
		}
		views = append(views, v)
	}
	sb.probeOut(ctx)
	return views
}

func gadgetName(n int) string { return fmt.Sprintf("ethpi%d", n) }

// plug gives a booted node its link: a veth pair named like a ClusterHAT
// gadget interface on the head (the daemon adds it to br0), with the
// gadget's MAC (00:22:82:ff:ff:NN) on the node, which the head's DHCP
// server knows as node pN.
func (sb *sandboxNet) plug(node *simNode) error {
	gadget := gadgetName(node.n)
	if err := sandbox.Veth(sb.head, gadget, node.ns, "eth0"); err != nil {
		return err
	}
	l, err := node.ns.NL.LinkByName("eth0")
	if err == nil {
		mac, _ := net.ParseMAC(fmt.Sprintf("00:22:82:ff:ff:%02x", node.n))
		node.ns.Down("eth0")
		err = node.ns.NL.LinkSetHardwareAddr(l, mac)
		node.ns.Up("eth0")
	}
	if err != nil {
		return err
	}
	node.link = true
	node.out = "booting"
	go sb.configure(node)
	return nil
}

// configure gets the node an address: DHCP from the head with busybox
// udhcpc when installed, else the node's default address, set by hand.
func (sb *sandboxNet) configure(node *simNode) {
	addr, err := dhcp(node, sb.dir)
	if err != nil {
		addr = fmt.Sprintf("%s%d", clusterPrefix, 10+node.n)
		a, _ := netlink.ParseAddr(addr + "/24")
		if l, lerr := node.ns.NL.LinkByName("eth0"); lerr == nil {
			node.ns.NL.AddrReplace(l, a)
		}
		node.ns.DefaultRoute(clusterPrefix + "1")
	}
	sb.mu.Lock()
	node.addr = addr
	sb.mu.Unlock()
}

// dhcp runs busybox udhcpc in the node's namespace with a script that
// applies the lease there.
func dhcp(node *simNode, dir string) (string, error) {
	udhcpc, err := exec.LookPath("udhcpc")
	if err != nil {
		return "", err
	}
	script := filepath.Join(dir, "udhcpc.sh")
	leaseFile := filepath.Join(dir, node.name+".lease")
	body := `#!/bin/sh
# Applies a lease inside the node's namespace (written by headnode sim).
case "$1" in
bound|renew)
	ip addr flush dev "$interface"
	ip addr add "$ip/${mask:-24}" dev "$interface"
	for r in $router; do ip route replace default via "$r"; break; done
	echo "$ip" > "$LEASE_FILE"
	;;
esac
`
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		return "", err
	}
	cmd := node.ns.Command(udhcpc, "-i", "eth0", "-q", "-n", "-t", "10", "-T", "1", "-f", "-x", "hostname:"+node.name, "-s", script)
	cmd.Env = append(os.Environ(), "LEASE_FILE="+leaseFile)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("udhcpc: %v: %s", err, out)
	}
	b, err := os.ReadFile(leaseFile)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// unplug removes a node's link, as a Pi Zero's gadget interface vanishes
// when it loses power.
func (sb *sandboxNet) unplug(node *simNode) {
	if l, err := sb.head.NL.LinkByName(gadgetName(node.n)); err == nil {
		sb.head.NL.LinkDel(l)
	}
	node.link, node.addr, node.out = false, "", ""
}

// probeOut asks the "internet" from every linked node which address it
// sees, in the background; results show on the next draw.
func (sb *sandboxNet) probeOut(ctx context.Context) {
	for _, node := range sb.nodes {
		if !node.link || node.addr == "" {
			continue
		}
		sb.probes.Go(func() {
			res := "no way out"
			c, err := node.ns.Dial(internetAddr, net.Dialer{Timeout: 800 * time.Millisecond})
			if err == nil {
				c.SetReadDeadline(time.Now().Add(time.Second))
				b := make([]byte, 64)
				k, _ := c.Read(b)
				c.Close()
				res = "out as " + strings.TrimSpace(string(b[:k]))
			}
			sb.mu.Lock()
			if node.link {
				node.out = res
			}
			sb.mu.Unlock()
		})
	}
}
