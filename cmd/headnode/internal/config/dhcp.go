package config

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/headnode/headnode/netcfg/dhcpd"
	netsubnet "github.com/headnode/headnode/netcfg/subnet"
	"github.com/headnode/headnode/power/nodename"
)

// DHCP configures the DHCP server for the nodes on the cluster interface.
type DHCP struct {
	// Enabled runs the server. It is on by default because in the usual
	// pocket-cluster setup the head node is the nodes' DHCP server; before
	// starting, the daemon asks the cluster network whether another DHCP
	// server already answers, and if one does it stays off and says so.
	Enabled bool `toml:"enabled"`
	// Pool is the range leased to machines without a fixed address:
	// "auto" or "first-last".
	Pool      string   `toml:"pool"`
	LeaseTime Duration `toml:"lease_time"`
	// DNS is handed to the nodes; empty means the uplink's resolvers.
	DNS []string `toml:"dns"`
	// FallbackDNS is used when the uplink's resolvers cannot be found
	// (and nothing serves DNS on the head node).
	FallbackDNS []string `toml:"fallback_dns"`
	// Probe is how long to listen for another DHCP server's offer before
	// starting; 0 skips the check.
	Probe Duration `toml:"probe"`
	// Quiet is how long another DHCP server seen on the cluster side must
	// have been silent before ours answers again.
	Quiet  Duration     `toml:"quiet"`
	Static []DHCPStatic `toml:"static"`
}

// DHCPStatic pins one machine, by MAC address, to a node name (and so to
// that node's address) or to an address of its own.
type DHCPStatic struct {
	MAC     string `toml:"mac"`
	Name    string `toml:"name"`
	Address string `toml:"address"`
}

func defaultDHCP() DHCP {
	return DHCP{
		Enabled:     true,
		Pool:        "auto",
		LeaseTime:   Duration{Duration: time.Hour},
		DNS:         []string{},
		FallbackDNS: []string{"1.1.1.1", "8.8.8.8"},
		Probe:       Duration{Duration: 4 * time.Second},
		Quiet:       Duration{Duration: 30 * time.Second},
		Static:      []DHCPStatic{},
	}
}

func (c *Config) validateDHCP(bad badFunc) {
	d := &c.DHCP
	if msg := d.LeaseTime.check(2*time.Minute, 7*24*time.Hour); msg != "" {
		bad("dhcp.lease_time", "%s", msg)
	}
	if msg := d.Probe.check(0, 30*time.Second); msg != "" {
		bad("dhcp.probe", "%s", msg)
	}
	if msg := d.Quiet.check(time.Second, time.Hour); msg != "" {
		bad("dhcp.quiet", "%s", msg)
	}
	for _, l := range []struct {
		key  string
		list []string
	}{{"dhcp.dns", d.DNS}, {"dhcp.fallback_dns", d.FallbackDNS}} {
		key := l.key
		for i, s := range l.list {
			if a, err := netip.ParseAddr(s); err != nil || !a.Is4() {
				bad(fmt.Sprintf("%s[%d]", key, i), "%q is not an IPv4 address, e.g. \"192.168.1.1\" (DHCP hands out IPv4 resolvers only)", s)
			}
		}
	}
	head, haveSubnet := c.Network.ClusterPrefix()
	subnet := head.Masked()
	// The pool and fixed addresses are checked against the subnet; without
	// a cluster_address the server does not run (the subnet is the user's),
	// so only the spelling of the pool is checked.
	if haveSubnet || d.Pool != "auto" {
		if _, _, err := d.PoolRange(head); err != nil {
			bad("dhcp.pool", "%v", err)
		}
	}

	// Every fixed address, with the entry that claims it, for duplicates.
	type claim struct{ key, what string }
	claimed := map[netip.Addr]claim{}
	inSubnet := func(key string, a netip.Addr) bool {
		if !haveSubnet || !d.Enabled {
			return true
		}
		switch {
		case !subnet.Contains(a):
			bad(key, "%q is outside the cluster subnet %s (network.cluster_address = %q)", a, subnet, c.Network.ClusterAddress)
		case a == head.Addr():
			bad(key, "%q is the head node's own address (network.cluster_address = %q)", a, c.Network.ClusterAddress)
		case !dhcpd.IsHostAddr(subnet, a):
			bad(key, "%q is the network or broadcast address of %s; give a host address", a, subnet)
		default:
			return true
		}
		return false
	}
	nodeAt := map[string]int{}
	for i, nd := range c.Nodes {
		nodeAt[nd.Name] = i
		if a, err := netip.ParseAddr(nd.Address); err == nil && a.Is4() {
			key := fmt.Sprintf("nodes[%d].address", i)
			if inSubnet(key, a) {
				claimed[a] = claim{key, nd.Name}
			}
		}
	}
	seenMAC := map[string]int{}
	seenName := map[string]int{}
	for i, s := range d.Static {
		key := fmt.Sprintf("dhcp.static[%d]", i)
		if mac, err := net.ParseMAC(s.MAC); err != nil || len(mac) != 6 {
			bad(key+".mac", "%q is not a MAC address; write six hex pairs like \"b8:27:eb:12:34:56\"", s.MAC)
		} else if j, dup := seenMAC[mac.String()]; dup {
			bad(key+".mac", "%q is already used by dhcp.static[%d]; one entry per machine", s.MAC, j)
		} else {
			seenMAC[mac.String()] = i
		}
		nodeNum, nodeErr := nodename.Parse(s.Name)
		isNode := nodeErr == nil
		if s.Name != "" {
			if !dhcpd.ValidHostname(s.Name) {
				bad(key+".name", "%q is not a host name, one DNS label (letters, digits and '-', at most 63, not starting or ending with '-'), e.g. \"p1\" or \"nas\"", s.Name)
			} else if j, dup := seenName[s.Name]; dup {
				bad(key+".name", "%q is already used by dhcp.static[%d]; one MAC address per name", s.Name, j)
			} else {
				seenName[s.Name] = i
			}
		}
		if s.Address == "" {
			if !isNode {
				bad(key, "give an address, or a node name (p1, p2, ...) to use that node's address")
			}
			continue
		}
		a, err := netip.ParseAddr(s.Address)
		if err != nil || !a.Is4() {
			bad(key+".address", "%q is not an IPv4 address, e.g. \"192.168.50.200\"", s.Address)
			continue
		}
		if isNode {
			// A node's address has one home, so that power's reachability
			// probes and DHCP agree on it.
			if want, ok := c.NodeAddress(nodeNum); ok && want != a {
				where := fmt.Sprintf("host 10+%d of the cluster subnet", nodeNum)
				if j, ok := nodeAt[s.Name]; ok {
					where = fmt.Sprintf("nodes[%d].address", j)
				}
				bad(key+".address", "%q differs from %s's address %s (%s); leave address empty here, or change the node's address in a [[nodes]] entry", s.Address, s.Name, want, where)
				continue
			}
		}
		if !inSubnet(key+".address", a) {
			continue
		}
		if other, dup := claimed[a]; dup && !(isNode && other.what == s.Name) {
			bad(key+".address", "%q is already used by %s", s.Address, other.key)
			continue
		}
		claimed[a] = claim{key + ".address", s.Name}
	}
}

// PoolRange returns the first and last address of the pool for the head's
// cluster address. "auto" is the upper half of the cluster subnet (at most
// dhcpd.MaxPool addresses, the top of it; netcfg/subnet's layout): for
// 192.168.50.1/24 that is .128-.254, above the nodes' own addresses
// (host 10+N), which in a /21 fit 1013 nodes.
func (d DHCP) PoolRange(head netip.Prefix) (first, last netip.Addr, err error) {
	subnet := head.Masked()
	if d.Pool == "auto" {
		if !head.IsValid() {
			return first, last, fmt.Errorf("\"auto\" needs network.cluster_address to know the subnet")
		}
		l := netsubnet.Of(head)
		return l.PoolFirst, l.PoolLast, nil
	}
	lo, hi, ok := strings.Cut(d.Pool, "-")
	a, errA := netip.ParseAddr(strings.TrimSpace(lo))
	b, errB := netip.ParseAddr(strings.TrimSpace(hi))
	if !ok || errA != nil || errB != nil || !a.Is4() || !b.Is4() {
		return first, last, fmt.Errorf("%q is not valid; write \"auto\" or a range like \"192.168.50.128-192.168.50.254\"", d.Pool)
	}
	if b.Less(a) {
		return first, last, fmt.Errorf("%q starts after it ends; write the lower address first", d.Pool)
	}
	if !head.IsValid() {
		return a, b, nil
	}
	for _, x := range []netip.Addr{a, b} {
		if !dhcpd.IsHostAddr(subnet, x) {
			return first, last, fmt.Errorf("%s is not a host address of the cluster subnet %s (network.cluster_address)", x, subnet)
		}
	}
	if !dhcpd.PoolSizeOK(a, b) {
		return first, last, fmt.Errorf("%q holds more than %d addresses; use a smaller range", d.Pool, dhcpd.MaxPool)
	}
	return a, b, nil
}
