package display

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func ok4() Status {
	return Status{
		Uplink:   Uplink{Interface: "eth1", Exists: true, Carrier: true, IPv4: "192.168.1.194/24"},
		Health:   Health{State: StateOK},
		NAT:      "ok",
		Nodes:    []Node{{"p1", NodeUp}, {"p2", NodeUp}, {"p3", NodeUp}, {"p4", NodeUp}},
		Hostname: "cluster-head",
		TempC:    48.3, HasTemp: true,
	}
}

func TestLayout(t *testing.T) {
	noLink := ok4()
	noLink.Uplink = Uplink{Interface: "eth1", Exists: true}
	noLink.Health = Health{State: StateDegraded, Reasons: []string{"uplink eth1 down"}}
	dhcp := ok4()
	dhcp.Uplink.IPv4 = ""
	dhcp.Uplink.IPv6 = []string{"fe80::1/64"}
	dhcp.Health = Health{State: StateDegraded, Reasons: []string{"waiting for DHCP on eth1"}}
	failed := ok4()
	failed.Health = Health{State: StateFailed, Class: 2, Reasons: []string{"NAT failed: iptables not found", "uplink eth1 down"}}
	failed.Throttled = true
	v6 := ok4()
	v6.Uplink.IPv4 = ""
	v6.Uplink.IPv6 = []string{"fe80::ba27:ebff:fe12:3456/64", "2a02:810d:4b40:1a00:ba27:ebff:fe12:3456/64"}
	stopped := ok4()
	stopped.Health = Health{State: StateStopped}
	nodes := ok4()
	nodes.Nodes[2].State = NodeOff
	bare := ok4()
	bare.Nodes, bare.Hostname, bare.HasTemp = nil, "", false
	natOff := ok4()
	natOff.NAT = "disabled"
	// 1024 nodes, 12 of them not answering.
	big := ok4()
	big.Nodes = nil
	for i := range 1024 {
		st := NodeUp
		if i%85 == 7 {
			st = NodeUnreachable
		}
		big.Nodes = append(big.Nodes, Node{fmt.Sprintf("p%d", i+1), st})
	}
	bigDegraded := big
	bigDegraded.Health = Health{State: StateDegraded, Reasons: []string{"12 nodes unreachable: p8 p93 p178 …"}}
	for _, tc := range []struct {
		name       string
		s          Status
		cols, rows int
		want       [][]string
	}{
		{"ok 16x2", ok4(), 16, 2, [][]string{{"192.168.1.194", "4/4 up  NAT ok"}}},
		{"ok 20x4", ok4(), 20, 4, [][]string{{"192.168.1.194", "4/4 up  NAT ok", "cluster-head", "NAT ok  48°C"}}},
		{"no nodes known", bare, 16, 4, [][]string{{"192.168.1.194", "NAT ok", "NAT ok"}}},
		{"NAT not ours", natOff, 16, 2, [][]string{{"192.168.1.194", "4/4 up  NAT off"}}},
		{"a node off", nodes, 16, 2, [][]string{{"192.168.1.194", "3/4 up  NAT ok"}}},
		{"no carrier", noLink, 16, 2, [][]string{{"no uplink", "uplink eth1 down"}}},
		{"no address", dhcp, 16, 2, [][]string{{"waiting for DHCP", "waiting for DHCP"}}},
		{"fault cut to the width", failed, 16, 2, [][]string{{"192.168.1.194", "NAT failed: ipta"}}},
		{"fault 20x4", failed, 20, 4, [][]string{{"192.168.1.194", "NAT failed: iptables", "cluster-head", "NAT ok 48° throttled"}}},
		{"IPv6 wraps on 20x4", v6, 20, 4, [][]string{{"2a02:810d:4b40:1a00:", "ba27:ebff:fe12:3456", "4/4 up  NAT ok", "cluster-head"}}},
		{"IPv6 on 16x4", v6, 16, 4, [][]string{{"2a02:810d:4b40:", "1a00:ba27:ebff:", "fe12:3456", "4/4 up  NAT ok"}}},
		{"IPv6 pages on 16x2", v6, 16, 2, [][]string{{"2a02:810d:4b40:", "1a00:ba27:ebff:"}, {"fe12:3456", "4/4 up  NAT ok"}}},
		{"IPv6 on 20x2", v6, 20, 2, [][]string{{"2a02:810d:4b40:1a00:", "ba27:ebff:fe12:3456"}, {"4/4 up  NAT ok"}}},
		{"1024 nodes 16x2", big, 16, 2, [][]string{{"192.168.1.194", "1012/1024 NAT ok"}}},
		{"1024 nodes 20x4", big, 20, 4, [][]string{{"192.168.1.194", "1012/1024 up  NAT ok", "cluster-head", "NAT ok  48°C"}}},
		{"1024 nodes, 12 unreachable", bigDegraded, 16, 2, [][]string{{"192.168.1.194", "1012/1024 up"}}},
		{"stopped", stopped, 16, 2, [][]string{{"192.168.1.194", "headnode stopped"}}},
	} {
		got := Layout(tc.s, tc.cols, tc.rows)
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
		for _, p := range got {
			for _, row := range p {
				if n := len([]rune(row)); n > tc.cols {
					t.Errorf("%s: row %q is %d wide", tc.name, row, n)
				}
			}
		}
	}
}

func TestWrapNeverSplitsAGroup(t *testing.T) {
	for _, a := range []string{"2001:db8::1", "2001:db8:85a3:1234:5678:8a2e:370:7334", "fd00::abcd:ef01:2345:6789"} {
		for _, cols := range []int{16, 20} {
			lines := Wrap(a, cols)
			if strings.Join(lines, "") != a {
				t.Errorf("%s at %d: %q", a, cols, lines)
			}
			for _, l := range lines[:len(lines)-1] {
				if !strings.HasSuffix(l, ":") || len(l) > cols {
					t.Errorf("%s at %d: line %q", a, cols, l)
				}
			}
		}
	}
}
