package config

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/headnode/headnode/netcfg/subnet"
	"github.com/headnode/headnode/power/nodename"
)

// AutoAddress is the cluster_address that lets the daemon choose the
// cluster subnet (package netcfg/subnet) and keep it across restarts.
const AutoAddress = "auto"

// Subnet configures how network.cluster_address = "auto" chooses.
type Subnet struct {
	// Candidates are tried in order; each is the start of a block as
	// large as the node count needs.
	Candidates []string `toml:"candidates"`
	// Nodes is how many nodes the subnet must hold; 0 counts the
	// [[nodes]] and [[dhcp.static]] entries (and the highest pN named).
	Nodes int `toml:"nodes"`
	// AllowPublic lets cluster addresses and candidates be outside the
	// private ranges.
	AllowPublic bool `toml:"allow_public"`
}

func defaultSubnet() Subnet {
	c := make([]string, len(subnet.Default))
	for i, p := range subnet.Default {
		c[i] = p.String()
	}
	return Subnet{Candidates: c}
}

// IsAuto reports whether the daemon chooses the cluster subnet.
func (n Network) IsAuto() bool { return n.ClusterAddress == AutoAddress }

// CandidatePrefixes returns the parsed candidates (validated at load).
func (s Subnet) CandidatePrefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, c := range s.Candidates {
		if p, err := netip.ParsePrefix(c); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
}

// NodeCount is how many nodes the chosen subnet must hold: subnet.nodes,
// or what the configuration names.
func (c *Config) NodeCount() int {
	if c.Subnet.Nodes > 0 {
		return c.Subnet.Nodes
	}
	n := max(len(c.Nodes), len(c.DHCP.Static))
	for _, nd := range c.Nodes {
		if k, err := nodename.Parse(nd.Name); err == nil {
			n = max(n, k)
		}
	}
	for _, s := range c.DHCP.Static {
		if k, err := nodename.Parse(s.Name); err == nil {
			n = max(n, k)
		}
	}
	return n
}

func (c *Config) validateClusterAddress(bad badFunc) {
	n, s := &c.Network, &c.Subnet
	switch n.ClusterAddress {
	case "", AutoAddress:
	default:
		p, err := netip.ParsePrefix(n.ClusterAddress)
		if err != nil || !p.Addr().Is4() {
			bad("network.cluster_address", "%q is not an IPv4 address with prefix length, e.g. \"10.213.0.1/24\" (or \"auto\" to choose a free subnet, \"\" to leave the interface alone)", n.ClusterAddress)
		} else if msg := subnet.Check(p, s.AllowPublic); msg != "" {
			bad("network.cluster_address", "%q %s", n.ClusterAddress, msg)
		}
	}
	if len(s.Candidates) == 0 {
		bad("subnet.candidates", "the list is empty; list at least one subnet such as \"10.213.0.0/24\" (or leave the key out for the built-in list)")
	}
	var seen []netip.Prefix
	for i, cand := range s.Candidates {
		key := fmt.Sprintf("subnet.candidates[%d]", i)
		p, err := netip.ParsePrefix(cand)
		if err != nil || !p.Addr().Is4() {
			bad(key, "%q is not an IPv4 subnet, e.g. \"10.213.0.0/24\"", cand)
			continue
		}
		if msg := subnet.Check(subnet.At(p).Head, s.AllowPublic); msg != "" && !strings.Contains(msg, "prefix length") {
			bad(key, "%q: its head address %s %s", cand, subnet.At(p).Head.Addr(), msg)
			continue
		}
		if p.Bits() > 24 || p.Bits() < 8 {
			bad(key, "%q has prefix length /%d; candidates are /8 to /24 (the subnet is /24 or larger)", cand, p.Bits())
			continue
		}
		for j, q := range seen {
			if q == p.Masked() {
				bad(key, "%q is already subnet.candidates[%d]", cand, j)
			}
		}
		seen = append(seen, p.Masked())
	}
	if s.Nodes < 0 || s.Nodes > subnet.MaxNodes {
		bad("subnet.nodes", "%d is out of range; use 0 (count the configured nodes) to %d", s.Nodes, subnet.MaxNodes)
	}
}
