package config

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestDHCPAndBridgeValues(t *testing.T) {
	c, err := Parse([]byte(`
[network]
cluster_interface = "br0"
[dhcp]
pool = "192.168.50.100-192.168.50.149"
lease_time = "12h"
dns = ["192.168.1.1"]
[[dhcp.static]]
mac = "B8:27:EB:00:00:01"
name = "p1"
[[dhcp.static]]
mac = "dc:a6:32:00:00:09"
name = "nas"
address = "192.168.50.5"
[bridge]
enabled = true
ports = ["ethpi*", "eth0"]
`), "c.toml")
	if err != nil {
		t.Fatal(err)
	}
	if c.DHCP.LeaseTime.Duration != 12*time.Hour || len(c.DHCP.Static) != 2 || c.DHCP.Static[1].Address != "192.168.50.5" || len(c.DHCP.DNS) != 1 {
		t.Errorf("dhcp %+v", c.DHCP)
	}
	if !c.Bridge.Enabled || c.Bridge.Name != "br0" || len(c.Bridge.Ports) != 2 {
		t.Errorf("bridge %+v", c.Bridge)
	}
	head, _ := c.Network.ClusterPrefix()
	first, last, err := c.DHCP.PoolRange(head)
	if err != nil || first != netip.MustParseAddr("192.168.50.100") || last != netip.MustParseAddr("192.168.50.149") {
		t.Errorf("pool %v-%v, %v", first, last, err)
	}
	c.DHCP.Pool = "auto"
	for prefix, want := range map[string]string{
		"192.168.50.1/24": "192.168.50.128-192.168.50.254",
		"10.0.5.1/16":     "10.0.240.0-10.0.255.254",
		"10.0.4.1/22":     "10.0.6.0-10.0.7.254",
		"172.19.181.1/25": "172.19.181.64-172.19.181.126",
	} {
		first, last, err := c.DHCP.PoolRange(netip.MustParsePrefix(prefix))
		if got := first.String() + "-" + last.String(); err != nil || got != want {
			t.Errorf("auto pool for %s: %s, %v; want %s", prefix, got, err, want)
		}
	}
}

// Conflicts name both entries, with the line of the one that is wrong.
func TestDHCPConflictsNameBothEntries(t *testing.T) {
	for _, tc := range []struct {
		doc  string
		want []string
	}{
		{"[[dhcp.static]]\nmac = \"02:00:00:00:00:01\"\naddress = \"10.0.0.5\"\n", []string{
			`c.toml:3: dhcp.static[0].address: "10.0.0.5" is outside the cluster subnet 192.168.50.0/24 (network.cluster_address = "192.168.50.1/24")`,
		}},
		{"[[dhcp.static]]\nmac = \"b8:27:eb:00:00:01\"\nname = \"p1\"\n[[dhcp.static]]\nmac = \"B8:27:EB:00:00:01\"\nname = \"p2\"\n", []string{
			`c.toml:5: dhcp.static[1].mac: "B8:27:EB:00:00:01" is already used by dhcp.static[0]; one entry per machine`,
		}},
		{"[[nodes]]\nname = \"p2\"\naddress = \"192.168.50.99\"\n[[dhcp.static]]\nmac = \"02:00:00:00:00:01\"\nname = \"nas\"\naddress = \"192.168.50.99\"\n", []string{
			`c.toml:7: dhcp.static[0].address: "192.168.50.99" is already used by nodes[0].address`,
		}},
		{"[[dhcp.static]]\nmac = \"02:00:00:00:00:01\"\naddress = \"192.168.50.7\"\n[[dhcp.static]]\nmac = \"02:00:00:00:00:02\"\naddress = \"192.168.50.7\"\n", []string{
			`c.toml:6: dhcp.static[1].address: "192.168.50.7" is already used by dhcp.static[0].address`,
		}},
		{"[[nodes]]\nname = \"p1\"\naddress = \"192.168.50.21\"\n[[dhcp.static]]\nmac = \"02:00:00:00:00:01\"\nname = \"p1\"\naddress = \"192.168.50.11\"\n", []string{
			`c.toml:7: dhcp.static[0].address: "192.168.50.11" differs from p1's address 192.168.50.21 (nodes[0].address); leave address empty here, or change the node's address in a [[nodes]] entry`,
		}},
		{"[[dhcp.static]]\nmac = \"02:00:00:00:00:01\"\nname = \"p3\"\naddress = \"192.168.50.40\"\n", []string{
			`c.toml:4: dhcp.static[0].address: "192.168.50.40" differs from p3's address 192.168.50.13 (host 10+3 of the cluster subnet); leave address empty here, or change the node's address in a [[nodes]] entry`,
		}},
		{"[[dhcp.static]]\nmac = \"zz\"\nname = \"nas box\"\n", []string{
			`c.toml:2: dhcp.static[0].mac: "zz" is not a MAC address; write six hex pairs like "b8:27:eb:12:34:56"`,
			`c.toml:3: dhcp.static[0].name: "nas box" is not a host name, one DNS label (letters, digits and '-', at most 63, not starting or ending with '-'), e.g. "p1" or "nas"`,
			`c.toml:1: dhcp.static[0]: give an address, or a node name (p1, p2, ...) to use that node's address`,
		}},
		{"[[dhcp.static]]\nmac = \"02:00:00:00:00:01\"\naddress = \"192.168.50.1\"\n", []string{
			`c.toml:3: dhcp.static[0].address: "192.168.50.1" is the head node's own address (network.cluster_address = "192.168.50.1/24")`,
		}},
		{"[[nodes]]\nname = \"p1\"\naddress = \"10.1.1.1\"\n", []string{
			`c.toml:3: nodes[0].address: "10.1.1.1" is outside the cluster subnet 192.168.50.0/24 (network.cluster_address = "192.168.50.1/24")`,
		}},
		{"[dhcp]\npool = \"192.168.50.200-192.168.50.100\"\n", []string{
			`c.toml:2: dhcp.pool: "192.168.50.200-192.168.50.100" starts after it ends; write the lower address first`,
		}},
		{"[dhcp]\npool = \"192.168.50.100-192.168.51.100\"\n", []string{
			`c.toml:2: dhcp.pool: 192.168.51.100 is not a host address of the cluster subnet 192.168.50.0/24 (network.cluster_address)`,
		}},
		{"[network]\ncluster_address = \"10.0.0.1/8\"\n[dhcp]\npool = \"10.0.0.2-10.0.20.0\"\n", []string{
			`c.toml:4: dhcp.pool: "10.0.0.2-10.0.20.0" holds more than 4096 addresses; use a smaller range`,
		}},
		{"[dhcp]\npool = \"lots\"\nlease_time = \"1m\"\ndns = [\"::1\"]\nprobe = \"1h\"\n", []string{
			`c.toml:2: dhcp.pool: "lots" is not valid; write "auto" or a range like "192.168.50.128-192.168.50.254"`,
			`c.toml:3: dhcp.lease_time: 1m0s is out of range; use 2m0s to 168h0m0s`,
			`c.toml:4: dhcp.dns[0]: "::1" is not an IPv4 address, e.g. "192.168.1.1" (DHCP hands out IPv4 resolvers only)`,
			`c.toml:5: dhcp.probe: 1h0m0s is out of range; use 0s to 30s`,
		}},
		{"[network]\ncluster_interface = \"eth0\"\nuplink_interface = \"eth1\"\n[bridge]\nenabled = true\nports = [\"eth*\", \"[x\", \"br*\"]\n", []string{
			`c.toml:5: bridge.enabled: the bridge br0 (bridge.name) is not the cluster interface (network.cluster_interface = "eth0"); with the bridge enabled the nodes are on br0: set cluster_interface = "br0"`,
			`c.toml:6: bridge.ports[0]: "eth*" matches the uplink eth1 (network.uplink_interface); the uplink must not join the cluster bridge`,
			`c.toml:6: bridge.ports[1]: "[x" is not a valid pattern; use names or * wildcards like "ethpi*"`,
			`c.toml:6: bridge.ports[2]: "br*" matches the bridge br0 itself`,
		}},
	} {
		doc := tc.doc
		if !strings.Contains(doc, "[network]") {
			// After the rest, so that the lines named stay the same.
			doc += "\n[network]\ncluster_address = \"192.168.50.1/24\"\n"
		}
		got := problems(t, doc)
		if diff := cmp.Diff(tc.want, got, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
			t.Errorf("%q (-want +got):\n%s", tc.doc, diff)
		}
	}
}

// Without a cluster address the server does not run, so addresses are not
// checked against a subnet, and dhcp = off needs no valid subnet at all.
func TestDHCPWithoutClusterAddress(t *testing.T) {
	if _, err := Parse([]byte("[network]\ncluster_address = \"\"\n[[dhcp.static]]\nmac = \"02:00:00:00:00:01\"\naddress = \"10.0.0.5\"\n"), "c.toml"); err != nil {
		t.Error(err)
	}
	if _, err := Parse([]byte("[dhcp]\nenabled = false\n[[dhcp.static]]\nmac = \"02:00:00:00:00:01\"\naddress = \"10.0.0.5\"\n"), "c.toml"); err != nil {
		t.Error(err)
	}
}

// [dns]: bad values are one line each, naming the key and what is valid.
func TestDNSKeyErrors(t *testing.T) {
	got := problems(t, "[dns]\ndomain = \"my_cluster.lan\"\nloopback = \"10.0.0.1\"\nupstreams = [\"dns.google\"]\nrate = 0\n[[dhcp.static]]\nmac = \"02:00:00:00:00:01\"\nname = \"-nas\"\naddress = \"192.168.50.5\"\n")
	want := []string{
		`c.toml:2: dns.domain: "my_cluster.lan" is not a domain name: "my_cluster" is not a DNS label (letters, digits and '-', 1-63 bytes); e.g. "cluster.home.arpa"`,
		`c.toml:3: dns.loopback: "10.0.0.1" is not an IPv4 loopback address, e.g. "127.0.1.53", or "" for none`,
		`c.toml:4: dns.upstreams[0]: "dns.google" is not an IPv4 address or address:port, e.g. "192.168.1.1" or "192.168.1.1:5353"`,
		`c.toml:5: dns.rate: 0 is out of range; use 1 to 100000 queries a second per client`,
		`c.toml:8: dhcp.static[0].name: "-nas" is not a host name, one DNS label (letters, digits and '-', at most 63, not starting or ending with '-'), e.g. "p1" or "nas"`,
	}
	if diff := cmp.Diff(want, got, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	c := Default()
	if !c.DNSOn() || c.DNS.Domain != "cluster.home.arpa" {
		t.Errorf("DNS is not on by default: %+v", c.DNS)
	}
	c.DHCP.Enabled = false
	if c.DNSOn() {
		t.Error("DNS on without the DHCP server")
	}
}
