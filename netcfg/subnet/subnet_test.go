package subnet

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/headnode/headnode/netcfg/dhcpd"
)

func pfx(s ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(s))
	for i, x := range s {
		out[i] = netip.MustParsePrefix(x)
	}
	return out
}

func TestMaxPoolMatchesTheServer(t *testing.T) {
	if MaxPool != dhcpd.MaxPool {
		t.Fatalf("MaxPool %d, dhcpd.MaxPool %d", MaxPool, dhcpd.MaxPool)
	}
}

func TestSize(t *testing.T) {
	for _, c := range []struct {
		nodes, bits int
	}{{0, 24}, {4, 24}, {40, 24}, {117, 24}, {118, 23}, {245, 23}, {246, 22}, {501, 22}, {502, 21}, {1000, 21}, {1013, 21}, {1014, 20}, {1050, 20}, {2037, 20}} {
		got, err := Size(c.nodes)
		if err != nil || got != c.bits {
			t.Errorf("Size(%d) = /%d, %v; want /%d", c.nodes, got, err, c.bits)
		}
	}
	for _, n := range []int{-1, 2038, 100000} {
		if _, err := Size(n); err == nil {
			t.Errorf("Size(%d) took it", n)
		}
	}
}

func TestLayout(t *testing.T) {
	for _, c := range []struct {
		head, first, last string
		nodes             int
		lastNode          string
	}{
		// Today's /24: p1 = .11, pool .128-.254, 117 nodes.
		{"192.168.50.1/24", "192.168.50.128", "192.168.50.254", 117, "192.168.50.127"},
		{"10.213.0.1/23", "10.213.1.0", "10.213.1.254", 245, "10.213.0.255"},
		{"10.213.0.1/21", "10.213.4.0", "10.213.7.254", 1013, "10.213.3.255"},
		{"10.213.0.1/20", "10.213.8.0", "10.213.15.254", 2037, "10.213.7.255"},
		// Larger subnets: the pool is capped at MaxPool at the top.
		{"10.0.0.1/16", "10.0.240.0", "10.0.255.254", -1, ""},
		// Small ones: the upper half, as before.
		{"192.168.7.1/28", "192.168.7.8", "192.168.7.14", 0, ""},
		{"192.168.7.1/30", "192.168.7.2", "192.168.7.2", 0, ""},
	} {
		l := Of(netip.MustParsePrefix(c.head))
		if l.PoolFirst.String() != c.first || l.PoolLast.String() != c.last {
			t.Errorf("%s: pool %v-%v, want %s-%s", c.head, l.PoolFirst, l.PoolLast, c.first, c.last)
		}
		if c.nodes >= 0 && l.Nodes != c.nodes {
			t.Errorf("%s: %d nodes, want %d", c.head, l.Nodes, c.nodes)
		}
		if c.lastNode != "" {
			if a, ok := l.Node(l.Nodes); !ok || a.String() != c.lastNode || !a.Less(l.PoolFirst) {
				t.Errorf("%s: last node at %v (%v), want %s below the pool", c.head, a, ok, c.lastNode)
			}
			if _, ok := l.Node(l.Nodes + 1); ok {
				t.Errorf("%s: node %d has an address in the pool", c.head, l.Nodes+1)
			}
		}
	}
	if a, _ := Of(netip.MustParsePrefix("192.168.50.1/24")).Node(1); a.String() != "192.168.50.11" {
		t.Errorf("p1 at %v, want 192.168.50.11", a)
	}
}

func TestChoose(t *testing.T) {
	cands := pfx("10.213.0.0/24", "172.16.231.0/24", "10.187.64.0/24")
	for _, c := range []struct {
		name     string
		occupied []netip.Prefix
		nodes    int
		keep     string
		want     string
		noFree   bool
	}{
		{name: "nothing in use", nodes: 4, want: "10.213.0.1/24"},
		{name: "the LAN on the first", occupied: pfx("10.213.0.0/24"), nodes: 4, want: "172.16.231.1/24"},
		{name: "a route covering it (VPN)", occupied: pfx("10.0.0.0/8"), nodes: 40, want: "172.16.231.1/24"},
		{name: "a host route inside it", occupied: pfx("10.213.0.77/32"), nodes: 4, want: "172.16.231.1/24"},
		{name: "Docker and CGNAT elsewhere", occupied: pfx("172.17.0.0/16", "100.64.0.0/10", "192.168.1.0/24"), nodes: 4, want: "10.213.0.1/24"},
		{name: "1000 nodes: a /21", nodes: 1000, want: "10.213.0.1/21"},
		{name: "1000 nodes, the /21 touched", occupied: pfx("10.213.6.0/24"), nodes: 1000, want: "172.16.224.1/21"},
		{name: "keep the earlier choice", occupied: pfx("192.168.1.0/24"), nodes: 4, keep: "172.16.231.1/24", want: "172.16.231.1/24"},
		{name: "keep it while it is big enough", nodes: 4, keep: "10.187.64.1/22", want: "10.187.64.1/22"},
		{name: "grown out of it", nodes: 200, keep: "172.16.231.1/24", want: "10.213.0.1/23"},
		{name: "the kept one now clashes", occupied: pfx("172.16.231.0/24"), nodes: 4, keep: "172.16.231.1/24", want: "10.213.0.1/24"},
		{name: "kept one no longer a candidate", nodes: 4, keep: "192.168.99.1/24", want: "10.213.0.1/24"},
		{name: "all taken", occupied: pfx("10.0.0.0/8", "172.16.0.0/12"), nodes: 4, noFree: true},
	} {
		keep := netip.Prefix{}
		if c.keep != "" {
			keep = netip.MustParsePrefix(c.keep)
		}
		l, err := Choose(c.occupied, cands, c.nodes, keep)
		var nf *NoFreeError
		switch {
		case c.noFree:
			if !errors.As(err, &nf) || len(nf.Clashes) != 3 || !strings.Contains(err.Error(), "10.213.0.0/24 (10.0.0.0/8 is in use)") {
				t.Errorf("%s: %v, %v; want no free candidate naming each clash", c.name, l, err)
			}
		case err != nil || l.Head.String() != c.want:
			t.Errorf("%s: %v, %v; want %s", c.name, l.Head, err, c.want)
		}
	}
	if _, err := Choose(nil, cands, 5000, netip.Prefix{}); err == nil || !strings.Contains(err.Error(), "5000 nodes do not fit") {
		t.Errorf("5000 nodes: %v", err)
	}
}

func TestDefaultCandidatesAreSane(t *testing.T) {
	commonLANs := pfx("192.168.0.0/24", "192.168.1.0/24", "192.168.50.0/24", "192.168.8.0/24", "10.0.0.0/24",
		"172.17.0.0/16", "10.42.0.0/16", "10.43.0.0/16", "10.96.0.0/12", "100.64.0.0/10", "10.99.0.0/24")
	for i, c := range Default {
		s := Sized(c, maxBits)
		if msg := Check(At(s).Head, false); msg != "" {
			t.Errorf("Default[%d] %v: %s", i, c, msg)
		}
		if o, clash := Clash(s, commonLANs); clash {
			t.Errorf("Default[%d] %v at /%d overlaps the common %v", i, c, maxBits, o)
		}
		for j := range i {
			if Sized(Default[j], maxBits).Overlaps(s) {
				t.Errorf("Default[%d] and [%d] overlap at /%d", j, i, maxBits)
			}
		}
	}
}

func TestCheck(t *testing.T) {
	for _, c := range []struct {
		head, want string
		public     bool
	}{
		{head: "192.168.50.1/24"},
		{head: "10.1.2.3/8"},
		{head: "172.31.0.1/16"},
		{head: "192.168.50.0/24", want: "network address of 192.168.50.0/24"},
		{head: "192.168.50.255/24", want: "broadcast address of 192.168.50.0/24; give the head node's own address, e.g. 192.168.50.1/24"},
		{head: "127.0.0.1/8", want: "loopback"},
		{head: "169.254.3.1/16", want: "link-local"},
		{head: "224.0.0.1/24", want: "multicast"},
		{head: "240.0.0.1/24", want: "reserved"},
		{head: "0.1.2.3/24", want: "this network"},
		{head: "8.8.8.1/24", want: "outside the private ranges"},
		{head: "100.64.0.1/24", want: "outside the private ranges"},
		{head: "8.8.8.1/24", public: true},
		{head: "172.15.0.1/16", want: "outside the private ranges"},
		{head: "10.0.0.1/7", want: "/7"},
		{head: "10.0.0.1/31", want: "/31"},
	} {
		got := Check(netip.MustParsePrefix(c.head), c.public)
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("Check(%s) = %q, want %q", c.head, got, c.want)
		}
	}
}
