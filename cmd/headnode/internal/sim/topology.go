package sim

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/headnode/headnode/netcfg/sandbox"
	"github.com/headnode/headnode/netcfg/subnet"
)

// Topologies are the networks `headnode sim --topology` builds:
//
//	two-port   the uplink eth1 (static 10.99.0.2, default route) and the
//	           bridge br0 of the nodes' gadget links, both named in the
//	           configuration
//	clusterhat a Pi with one Ethernet port: eth0 is on the LAN, whose
//	           DHCP server (busybox udhcpd) gives it its address; the nodes
//	           are on gadget links; no network configuration at all
//	swapped    the configuration says cluster eth0, uplink eth1, but the
//	           LAN cable is in eth0: headnode must leave eth0 alone and say
//	           so
//	lan-clash  as clusterhat, but the LAN is on the first candidate
//	           cluster subnet (10.213.0.0/24) with its router at .1, so
//	           the daemon must pick another
//	failover   as clusterhat, plus a second uplink wlan0 (another LAN,
//	           10.98.0.0/24, a higher metric); after FailoverAfter eth0's
//	           LAN goes away and wlan0 takes the default route
var Topologies = []string{"two-port", "clusterhat", "swapped", "lan-clash", "failover"}

// FailoverAfter is when the failover topology pulls eth0's cable.
const FailoverAfter = 20 * time.Second

// The "internet": one address, 10.100.0.1, on every LAN router, answering
// with the source address it sees, so the way out shows which uplink a
// node's traffic left by.
const internetIP = "10.100.0.1"

// lan is one user network: a namespace acting as its router, with a
// DHCP server when the topology gives the head its address that way.
type lan struct {
	ns      *sandbox.NS
	prefix  string // "10.99.0."
	router  string // "10.99.0.1"
	server  *exec.Cmd
	serverW chan struct{}
}

// topology holds what buildTopology started beside the namespaces.
type topology struct {
	name string
	lans []*lan
	// clients are the head's own DHCP clients (as dhcpcd on Raspberry Pi
	// OS), not headnode's.
	mu      sync.Mutex
	clients []*exec.Cmd
	waits   []chan struct{}
	events  []string
	started time.Time
}

func (tp *topology) note(format string, args ...any) {
	tp.mu.Lock()
	tp.events = append(tp.events, time.Now().Format("15:04:05")+" "+fmt.Sprintf(format, args...))
	tp.mu.Unlock()
}

func (tp *topology) notes() []string {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return slices.Clone(tp.events)
}

// buildTopology wires the head to its LANs.
func (sb *sandboxNet) buildTopology(name string) error {
	tp := &topology{name: name, started: time.Now()}
	sb.topo = tp
	switch name {
	case "", "two-port":
		tp.name = "two-port"
		l, err := sb.newLAN("uplink", "10.99.0.", "eth1", false)
		if err != nil {
			return err
		}
		for _, e := range []error{sb.head.AddAddr("eth1", headUplink), sb.head.DefaultRoute(l.router)} {
			if e != nil {
				return e
			}
		}
		return nil
	case "clusterhat", "swapped", "lan-clash", "failover":
	default:
		return fmt.Errorf("--topology %q: use one of %s", name, strings.Join(Topologies, ", "))
	}
	prefix := "10.99.0."
	if name == "lan-clash" {
		// The first subnet cluster_address = "auto" would pick.
		a := subnet.Default[0].Addr().As4()
		prefix = fmt.Sprintf("%d.%d.%d.", a[0], a[1], a[2])
	}
	if _, err := sb.newLAN("uplink", prefix, "eth0", true); err != nil {
		return err
	}
	if err := sb.headDHCP("eth0", 100); err != nil {
		return err
	}
	switch name {
	case "swapped":
		// eth1 goes to the cluster's switch, where Ethernet nodes would
		// be; nothing answers there.
		sw, err := sandbox.New(sb.prefix + "-switch")
		if err != nil {
			return err
		}
		sb.extra = append(sb.extra, sw)
		if err := sandbox.Veth(sb.head, "eth1", sw, "port0"); err != nil {
			return err
		}
	case "failover":
		if _, err := sb.newLAN("wifi", "10.98.0.", "wlan0", true); err != nil {
			return err
		}
		if err := sb.headDHCP("wlan0", 600); err != nil {
			return err
		}
	}
	return nil
}

// newLAN makes a LAN router namespace linked to the head's iface.
func (sb *sandboxNet) newLAN(role, prefix, iface string, dhcp bool) (*lan, error) {
	ns, err := sandbox.New(sb.prefix + "-" + role)
	if err != nil {
		return nil, err
	}
	l := &lan{ns: ns, prefix: prefix, router: prefix + "1"}
	sb.topo.lans = append(sb.topo.lans, l)
	if role == "uplink" {
		sb.uplink = ns
	} else {
		sb.extra = append(sb.extra, ns)
	}
	for _, e := range []error{
		sandbox.Veth(sb.head, iface, ns, "lan0"),
		ns.AddAddr("lan0", l.router+"/24"),
		ns.AddAddr("lo", internetIP+"/32"),
	} {
		if e != nil {
			return nil, e
		}
	}
	srv, err := ns.Listen(internetIP + ":8080")
	if err != nil {
		return nil, err
	}
	go sandbox.ServeSourceAddress(srv)
	sb.stops = append(sb.stops, func() { srv.Close() })
	if dhcp {
		if err := sb.lanDHCP(l); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// lanDHCP runs the LAN's own DHCP server (busybox udhcpd) on its router.
func (sb *sandboxNet) lanDHCP(l *lan) error {
	if _, err := exec.LookPath("busybox"); err != nil {
		return fmt.Errorf("the %s topology needs busybox (its udhcpd is the LAN's DHCP server): %v", sb.topo.name, err)
	}
	dir := filepath.Join(sb.dir, l.ns.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	conf := filepath.Join(dir, "udhcpd.conf")
	text := fmt.Sprintf("interface lan0\nstart %s100\nend %s199\nlease_file %s\npidfile %s\nopt router %s\nopt subnet 255.255.255.0\nopt dns %s\n",
		l.prefix, l.prefix, filepath.Join(dir, "leases"), filepath.Join(dir, "pid"), l.router, l.router)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return err
	}
	os.WriteFile(filepath.Join(dir, "leases"), nil, 0o644)
	cmd := l.ns.Command("busybox", "udhcpd", "-f", "-a", "100", conf)
	if err := cmd.Start(); err != nil {
		return err
	}
	l.server, l.serverW = cmd, make(chan struct{})
	go func() { cmd.Wait(); close(l.serverW) }()
	return nil
}

// headDHCP runs the head's own DHCP client on iface (Raspberry Pi OS runs
// dhcpcd on every port; headnode does not manage the uplink's address),
// with routes at the given metric.
func (sb *sandboxNet) headDHCP(iface string, metric int) error {
	udhcpc, err := exec.LookPath("udhcpc")
	if err != nil {
		return fmt.Errorf("the %s topology needs udhcpc for the head's LAN address: %v", sb.topo.name, err)
	}
	script := filepath.Join(sb.dir, "head-udhcpc.sh")
	body := `#!/bin/sh
# The head's DHCP client script (written by headnode sim): the lease on the
# interface, a default route at $METRIC.
case "$1" in
deconfig)
	ip -4 addr flush dev "$interface"
	;;
bound|renew)
	ip -4 addr flush dev "$interface"
	ip addr add "$ip/${mask:-24}" dev "$interface"
	for r in $router; do ip route replace default via "$r" dev "$interface" metric "$METRIC"; break; done
	;;
esac
`
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		return err
	}
	cmd := sb.head.Command(udhcpc, "-i", iface, "-f", "-t", "1000", "-T", "1", "-A", "1", "-s", script)
	cmd.Env = append(os.Environ(), fmt.Sprintf("METRIC=%d", metric))
	if err := cmd.Start(); err != nil {
		return err
	}
	w := make(chan struct{})
	go func() { cmd.Wait(); close(w) }()
	sb.topo.mu.Lock()
	sb.topo.clients = append(sb.topo.clients, cmd)
	sb.topo.waits = append(sb.topo.waits, w)
	sb.topo.mu.Unlock()
	return nil
}

// stopTopology ends the DHCP client and servers it started.
func (tp *topology) stop() {
	if tp == nil {
		return
	}
	tp.mu.Lock()
	clients, waits := tp.clients, tp.waits
	tp.mu.Unlock()
	for i, c := range clients {
		c.Process.Signal(syscall.SIGTERM)
		select {
		case <-waits[i]:
		case <-time.After(2 * time.Second):
			c.Process.Kill()
			<-waits[i]
		}
	}
	for _, l := range tp.lans {
		if l.server != nil {
			l.server.Process.Kill()
			<-l.serverW
		}
	}
}

// runTopology plays the topology's events: in failover, eth0's LAN goes
// away after FailoverAfter (its router's port down: carrier lost), and
// its lease and route with it.
func (sb *sandboxNet) runTopology(ctx context.Context) {
	if sb.topo == nil || sb.topo.name != "failover" {
		return
	}
	select {
	case <-ctx.Done():
		return
	case <-time.After(FailoverAfter):
	}
	first := sb.topo.lans[0]
	if err := first.ns.Down("lan0"); err != nil {
		sb.topo.note("failover: %v", err)
		return
	}
	// Carrier loss is what dhcpcd acts on; the route goes with the link's
	// addresses here.
	sb.head.Run("ip", "-4", "addr", "flush", "dev", "eth0")
	sb.topo.note("failover: eth0's LAN went away; wlan0 carries the default route")
}

// networkConfig is the part of the daemon's configuration the topology
// decides.
func networkConfig(topo string) string {
	switch topo {
	case "", "two-port":
		return fmt.Sprintf(`[network]
cluster_interface = "br0"
cluster_address = "%s1/24"
uplink_interface = "eth1"

[bridge]
enabled = true

[dhcp]
# Nothing else serves DHCP in the sandbox.
probe = "0s"
`, clusterPrefix)
	case "swapped":
		return `[network]
# As written by someone who thinks eth0 is the cluster side; the LAN
# cable is in eth0.
cluster_interface = "eth0"
uplink_interface = "eth1"
`
	}
	return "# No [network], [bridge] or [dhcp]: everything is found automatically.\n"
}
