package config

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// A cluster address or candidate that cannot work is one line naming it
// and what would be valid.
func TestClusterAddressAndCandidatesRefused(t *testing.T) {
	for _, tc := range []struct{ doc, want string }{
		{"[network]\ncluster_address = \"10.213.0.255/24\"\n",
			`c.toml:2: network.cluster_address: "10.213.0.255/24" is the broadcast address of 10.213.0.0/24; give the head node's own address, e.g. 10.213.0.1/24`},
		{"[network]\ncluster_address = \"127.0.0.1/8\"\n",
			`c.toml:2: network.cluster_address: "127.0.0.1/8" is a loopback address (127.0.0.0/8), which never leaves the head node`},
		{"[network]\ncluster_address = \"169.254.1.1/16\"\n",
			`c.toml:2: network.cluster_address: "169.254.1.1/16" is a link-local address (169.254.0.0/16), which hosts pick for themselves`},
		{"[network]\ncluster_address = \"239.1.1.1/24\"\n",
			`c.toml:2: network.cluster_address: "239.1.1.1/24" is a multicast address (224.0.0.0/4)`},
		{"[network]\ncluster_address = \"100.64.0.1/24\"\n",
			`c.toml:2: network.cluster_address: "100.64.0.1/24" is outside the private ranges 10.0.0.0/8, 172.16.0.0/12 and 192.168.0.0/16 (100.64.0.0/24 may be someone's public addresses); use a private subnet, or set subnet.allow_public = true`},
		{"[network]\ncluster_address = \"automatic\"\n",
			`c.toml:2: network.cluster_address: "automatic" is not an IPv4 address with prefix length, e.g. "10.213.0.1/24" (or "auto" to choose a free subnet, "" to leave the interface alone)`},
		{"[subnet]\ncandidates = []\n",
			`c.toml:2: subnet.candidates: the list is empty; list at least one subnet such as "10.213.0.0/24" (or leave the key out for the built-in list)`},
		{"[subnet]\ncandidates = [\"10.5.0.0/24\", \"8.8.8.0/24\"]\n",
			`c.toml:2: subnet.candidates[1]: "8.8.8.0/24": its head address 8.8.8.1 is outside the private ranges 10.0.0.0/8, 172.16.0.0/12 and 192.168.0.0/16 (8.8.8.0/24 may be someone's public addresses); use a private subnet, or set subnet.allow_public = true`},
		{"[subnet]\ncandidates = [\"10.5.0.0/26\"]\n",
			`c.toml:2: subnet.candidates[0]: "10.5.0.0/26" has prefix length /26; candidates are /8 to /24 (the subnet is /24 or larger)`},
		{"[subnet]\ncandidates = [\"10.5.0.0/24\", \"10.5.0.9/24\"]\n",
			`c.toml:2: subnet.candidates[1]: "10.5.0.9/24" is already subnet.candidates[0]`},
		{"[subnet]\ncandidates = [\"ten\"]\n",
			`c.toml:2: subnet.candidates[0]: "ten" is not an IPv4 subnet, e.g. "10.213.0.0/24"`},
		{"[subnet]\nnodes = 5000\n",
			`c.toml:2: subnet.nodes: 5000 is out of range; use 0 (count the configured nodes) to 2037`},
	} {
		if diff := cmp.Diff([]string{tc.want}, problems(t, tc.doc)); diff != "" {
			t.Errorf("%q (-want +got):\n%s", tc.doc, diff)
		}
	}
	c, err := Parse([]byte("[network]\ncluster_address = \"100.64.0.1/24\"\n[subnet]\nallow_public = true\n"), "c.toml")
	if err != nil || c.Network.ClusterAddress != "100.64.0.1/24" {
		t.Errorf("allowed explicitly: %v", err)
	}
}

func TestAutoIsTheDefaultAndNodeCount(t *testing.T) {
	c, err := Parse(nil, "c.toml")
	if err != nil || !c.Network.IsAuto() || len(c.Subnet.CandidatePrefixes()) != 7 || c.NodeCount() != 0 {
		t.Fatalf("defaults: %+v %v", c.Network, err)
	}
	var b strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&b, "[[dhcp.static]]\nmac = \"02:00:00:00:%02x:%02x\"\nname = \"p%d\"\n", i>>8, i&0xff, i+1)
	}
	c, err = Parse([]byte(b.String()), "c.toml")
	if err != nil || c.NodeCount() != 1000 {
		t.Fatalf("1000 static leases: %v nodes, %v", c.NodeCount(), err)
	}
	c, _ = Parse([]byte("[[nodes]]\nname = \"p40\"\n[subnet]\nnodes = 0\n"), "c.toml")
	if c.NodeCount() != 40 {
		t.Errorf("p40 named: %d nodes", c.NodeCount())
	}
}
