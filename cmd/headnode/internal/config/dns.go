package config

import (
	"fmt"
	"net/netip"
	"path/filepath"

	"github.com/headnode/headnode/netcfg/dnsd"
)

// DNS configures the DNS server for the nodes on the cluster address.
type DNS struct {
	// Enabled runs the server beside the DHCP server (with [dhcp] enabled
	// = false it stays off too, since nothing would tell the nodes of it).
	Enabled bool `toml:"enabled"`
	// Domain holds the local names: p1.cluster.home.arpa.
	Domain string `toml:"domain"`
	// Loopback is the head's own address for it ("" for none): the
	// package's NetworkManager drop-in sends the domain's queries there.
	Loopback string `toml:"loopback"`
	// Upstreams are forwarded to; empty means the uplink's resolvers, as
	// ResolvConf lists them, else [dhcp] fallback_dns.
	Upstreams  []string `toml:"upstreams"`
	ResolvConf []string `toml:"resolv_conf"`
	// Rate is the queries a second one client may make (twice that in a
	// burst); CacheSize bounds the cached upstream answers.
	Rate      int `toml:"rate"`
	CacheSize int `toml:"cache_size"`
}

// DefaultDomain is the local domain: a subdomain of home.arpa, which RFC
// 8375 sets aside for home networks.
const DefaultDomain = "cluster.home.arpa"

func defaultDNS() DNS {
	return DNS{
		Enabled:   true,
		Domain:    DefaultDomain,
		Loopback:  "127.0.1.53",
		Upstreams: []string{},
		// /etc/resolv.conf first; when it names only a local stub
		// (NetworkManager's dnsmasq at 127.0.0.1, systemd-resolved at
		// 127.0.0.53), the files where they list the real servers.
		ResolvConf: []string{"/etc/resolv.conf", "/run/NetworkManager/no-stub-resolv.conf", "/run/systemd/resolve/resolv.conf"},
		Rate:       500,
		CacheSize:  4096,
	}
}

// DNSOn reports whether the DNS server runs: enabled, beside the DHCP
// server, on a cluster subnet that is headnode's.
func (c *Config) DNSOn() bool {
	// "auto" is resolved to an address before the parts start (the
	// daemon's subnet choice), so it counts as set.
	_, ok := c.Network.ClusterPrefix()
	return c.DNS.Enabled && c.DHCP.Enabled && (ok || c.Network.ClusterAddress == "auto")
}

func (c *Config) validateDNS(bad badFunc) {
	d := &c.DNS
	if why := dnsd.ValidDomain(d.Domain); why != "" {
		bad("dns.domain", "%q is not a domain name: %s; e.g. %q", d.Domain, why, DefaultDomain)
	}
	if d.Loopback != "" {
		if a, err := netip.ParseAddr(d.Loopback); err != nil || !a.Is4() || !a.IsLoopback() {
			bad("dns.loopback", "%q is not an IPv4 loopback address, e.g. \"127.0.1.53\", or \"\" for none", d.Loopback)
		}
	}
	for i, s := range d.Upstreams {
		if _, err := ParseUpstream(s); err != nil {
			bad(fmt.Sprintf("dns.upstreams[%d]", i), "%q is not an IPv4 address or address:port, e.g. \"192.168.1.1\" or \"192.168.1.1:5353\"", s)
		}
	}
	for i, p := range d.ResolvConf {
		if !filepath.IsAbs(p) {
			bad(fmt.Sprintf("dns.resolv_conf[%d]", i), "%q is not an absolute path, e.g. \"/etc/resolv.conf\"", p)
		}
	}
	if d.Rate < 1 || d.Rate > 100000 {
		bad("dns.rate", "%d is out of range; use 1 to 100000 queries a second per client", d.Rate)
	}
	if d.CacheSize < 0 || d.CacheSize > 1<<20 {
		bad("dns.cache_size", "%d is out of range; use 0 to 1048576 answers", d.CacheSize)
	}
	// Every local name is a DNS label: node names are pN, static names
	// are checked as host names (one label, dhcp.go), and the head's own
	// name comes from the system (one that is not a label is left out).
}

// ParseUpstream parses "a.b.c.d" or "a.b.c.d:port".
func ParseUpstream(s string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil && ap.Addr().Is4() && ap.Port() != 0 {
		return ap, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return netip.AddrPort{}, fmt.Errorf("%q is not an IPv4 address", s)
	}
	return netip.AddrPortFrom(a, 53), nil
}
