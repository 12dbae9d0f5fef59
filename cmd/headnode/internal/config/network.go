package config

import (
	"net/netip"
	"regexp"
	"strings"
)

// Network configures forwarding and NAT between the cluster and the uplink.
type Network struct {
	// ClusterInterface and UplinkInterface are interface names, or "auto"
	// (the default): the daemon finds them (netcfg/roles).
	ClusterInterface string `toml:"cluster_interface"`
	// ClusterAddress is set on the cluster interface: "auto" chooses a
	// free subnet ([subnet], config/subnet.go); "" leaves it alone.
	ClusterAddress  string `toml:"cluster_address"`
	UplinkInterface string `toml:"uplink_interface"`
	// Firewall selects the firewall backend: "auto" (the iptables program
	// when it is installed, else nf_tables over netlink), "iptables-nft",
	// "iptables-legacy" or "nftables" (netlink, no program needed).
	Firewall string `toml:"firewall"`
	// IPTables selects the iptables program: "auto" (whatever `iptables`
	// resolves to), "nft", "legacy", or an absolute path to a binary. It
	// chose the backend before Firewall existed, and still does when
	// Firewall is "auto" (see FirewallChoice).
	IPTables string `toml:"iptables"`
	// NAT false leaves forwarding, the cluster address and the firewall
	// to someone else; headnode still follows the uplink for the LCD.
	NAT bool `toml:"nat"`
}

// Auto asks the daemon to choose an interface.
const Auto = "auto"

var ifaceName = regexp.MustCompile(`^[A-Za-z0-9_.@:-]{1,15}$`)

// badFunc records a problem with the value at key.
type badFunc func(key, format string, args ...any)

func (c *Config) validateNetwork(bad badFunc) {
	n := &c.Network
	if !ifaceName.MatchString(n.ClusterInterface) {
		bad("network.cluster_interface", "%q is not an interface name (1-15 characters, e.g. \"eth0\") or \"auto\"", n.ClusterInterface)
	}
	if !ifaceName.MatchString(n.UplinkInterface) {
		bad("network.uplink_interface", "%q is not an interface name (1-15 characters, e.g. \"eth1\") or \"auto\"", n.UplinkInterface)
	}
	if n.ClusterInterface == n.UplinkInterface && n.UplinkInterface != Auto {
		bad("network.uplink_interface", "%q is also the cluster interface; the uplink must be a different interface (or \"auto\")", n.UplinkInterface)
	} else if n.UplinkInterface != Auto && n.UplinkInterface == c.Bridge.Name && (c.Bridge.Enabled || n.ClusterInterface == Auto) {
		bad("network.uplink_interface", "%q is the cluster bridge (bridge.name); the uplink must be a different interface (or \"auto\")", n.UplinkInterface)
	}
	c.validateClusterAddress(bad)
	iptOK := true
	switch n.IPTables {
	case "auto", "nft", "legacy":
	default:
		if !strings.HasPrefix(n.IPTables, "/") {
			iptOK = false
			bad("network.iptables", "%q is not valid; use \"auto\", \"nft\", \"legacy\" or an absolute path to an iptables binary", n.IPTables)
		}
	}
	switch n.Firewall {
	case "auto", "iptables-nft", "iptables-legacy", "nftables":
		if iptOK && n.Firewall != "auto" && n.IPTables != "auto" && iptablesMeans(n.IPTables) != n.Firewall {
			bad("network.iptables", "%q contradicts network.firewall = %q; keep only network.firewall", n.IPTables, n.Firewall)
		}
	default:
		bad("network.firewall", "%q is not valid; use \"auto\", \"iptables-nft\", \"iptables-legacy\" or \"nftables\"", n.Firewall)
	}

}

// iptablesMeans is the firewall backend an iptables value chose before the
// firewall key existed; a path means that program.
func iptablesMeans(v string) string {
	switch v {
	case "nft":
		return "iptables-nft"
	case "legacy":
		return "iptables-legacy"
	}
	return v
}

// FirewallChoice is the backend choice for nat.Options.Firewall: the
// firewall key, unless it is "auto" and the iptables key names a program.
func (n Network) FirewallChoice() string {
	if n.Firewall != "auto" || n.IPTables == "auto" {
		return n.Firewall
	}
	return iptablesMeans(n.IPTables)
}

// ClusterPrefix returns the cluster subnet (e.g. 192.168.50.0/24) and the
// head's own address on it. ok is false when no cluster address is configured.
func (n Network) ClusterPrefix() (addr netip.Prefix, ok bool) {
	if n.ClusterAddress == "" {
		return netip.Prefix{}, false
	}
	p, err := netip.ParsePrefix(n.ClusterAddress)
	if err != nil {
		return netip.Prefix{}, false
	}
	return p, true
}
