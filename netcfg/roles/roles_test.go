package roles

import (
	"slices"
	"strings"
	"testing"

	"github.com/headnode/headnode/netcfg/links"
)

// ls builds a link table: each name exists; "+" after a name means it has
// carrier; "@br0" that it is a port of br0.
func ls(spec ...string) map[string]links.State {
	m := map[string]links.State{}
	idx := map[string]int{}
	for i, s := range spec {
		name, master, _ := strings.Cut(s, "@")
		carrier := strings.HasSuffix(name, "+")
		name = strings.TrimSuffix(name, "+")
		idx[name] = i + 1
		st := links.State{Name: name, Index: i + 1, Exists: true, Up: true, Carrier: carrier}
		if master != "" {
			st.Master = -1 // resolved below
			st.IPv4 = nil
			m[name] = st
			defer func() { st := m[name]; st.Master = idx[master]; m[name] = st }()
			continue
		}
		m[name] = st
	}
	return m
}

func TestDecide(t *testing.T) {
	gadgets := []string{"ethpi*", "ethupi*"}
	base := Input{Uplink: Auto, Cluster: Auto, Bridge: "br0", BridgePorts: gadgets}
	with := func(f func(*Input)) Input { in := base; f(&in); return in }
	for _, tc := range []struct {
		name           string
		in             Input
		uplink, clustr string
		bridge         bool
		ports          []string
		problem        string // Short, "" for none
		refused        []string
	}{
		{
			name:   "two ports, default route on eth1",
			in:     with(func(in *Input) { in.Links = ls("eth0+", "eth1+"); in.Routes = []Route{{"eth1", 100}} }),
			uplink: "eth1", clustr: "eth0", refused: []string{"eth1"},
		},
		{
			name:   "two ports, default route on eth0 (cables the other way round)",
			in:     with(func(in *Input) { in.Links = ls("eth0+", "eth1+"); in.Routes = []Route{{"eth0", 100}} }),
			uplink: "eth0", clustr: "eth1", refused: []string{"eth0"},
		},
		{
			name:   "two ports, no default route yet: nothing guessed",
			in:     with(func(in *Input) { in.Links = ls("eth0+", "eth1+") }),
			uplink: "", clustr: "",
		},
		{
			name:   "one-port ClusterHAT, no route yet: eth0 taken as uplink, bridge of gadgets",
			in:     with(func(in *Input) { in.Board = true; in.Links = ls("eth0+", "ethpi1+", "lo", "wlan0") }),
			uplink: "eth0", clustr: "br0", bridge: true,
		},
		{
			name: "one-port ClusterHAT with its DHCP lease",
			in: with(func(in *Input) {
				in.Board = true
				in.Links = ls("eth0+", "br0", "ethpi1+@br0")
				in.Routes = []Route{{"eth0", 202}}
			}),
			uplink: "eth0", clustr: "br0", bridge: true, refused: []string{"eth0"},
		},
		{
			name: "ClusterHAT on Wi-Fi: the free wired port joins the bridge",
			in: with(func(in *Input) {
				in.Board = true
				in.Links = ls("end0+", "wlan0+", "br0", "ethpi1@br0")
				in.Routes = []Route{{"wlan0", 600}}
			}),
			uplink: "wlan0", clustr: "br0", bridge: true, ports: []string{"end0"}, refused: []string{"wlan0"},
		},
		{
			name: "lowest metric wins; the other uplink is never cluster",
			in: with(func(in *Input) {
				in.Links = ls("eth0+", "enx001122334455+", "wlan0+")
				in.Routes = []Route{{"wlan0", 600}, {"enx001122334455", 100}}
			}),
			uplink: "enx001122334455", clustr: "eth0", refused: []string{"enx001122334455", "wlan0"},
		},
		{
			name: "failover: the old uplink lost its route but is not claimed",
			in: with(func(in *Input) {
				in.Links = ls("eth0+", "eth1", "eth2+")
				in.Routes = []Route{{"eth2", 200}}
				in.WasUplink = map[string]bool{"eth1": true, "eth2": true}
			}),
			uplink: "eth2", clustr: "eth0", refused: []string{"eth1", "eth2"},
		},
		{
			name: "a route on a missing interface does not count",
			in: with(func(in *Input) {
				in.Links = ls("eth0+", "eth1+")
				in.Routes = []Route{{"eth9", 0}, {"eth1", 100}}
			}),
			uplink: "eth1", clustr: "eth0", refused: []string{"eth1"},
		},
		{
			name: "another DHCP server on the only free port: no cluster",
			in: with(func(in *Input) {
				in.Links = ls("eth0+", "eth1+")
				in.Routes = []Route{{"eth1", 100}}
				in.OtherDHCP = map[string]string{"eth0": "192.168.1.1"}
			}),
			uplink: "eth1", clustr: "", refused: []string{"eth0", "eth1"},
		},
		{
			name: "explicit names, cables swapped: the LAN on the cluster side is refused",
			in: with(func(in *Input) {
				in.Uplink, in.Cluster = "eth1", "eth0"
				in.Links = ls("eth0+", "eth1+")
				in.Routes = []Route{{"eth0", 100}}
			}),
			uplink: "eth1", clustr: "eth0", problem: "eth0 is a LAN", refused: []string{"eth0", "eth1"},
		},
		{
			name: "explicit cluster where another DHCP server answers",
			in: with(func(in *Input) {
				in.Uplink, in.Cluster = "eth1", "eth0"
				in.Links = ls("eth0+", "eth1+")
				in.OtherDHCP = map[string]string{"eth0": "192.168.1.1"}
			}),
			uplink: "eth1", clustr: "eth0", problem: "eth0 is a LAN", refused: []string{"eth0", "eth1"},
		},
		{
			name: "explicit bridge with a LAN port: the bridge stays, the port is refused",
			in: with(func(in *Input) {
				in.Uplink, in.Cluster, in.BridgeEnabled, in.BridgePorts = "eth1", "br0", true, []string{"ethpi*", "eth0"}
				in.Links = ls("eth0+", "eth1+", "br0", "ethpi1@br0")
				in.Routes = []Route{{"eth0", 100}}
			}),
			uplink: "eth1", clustr: "br0", problem: "eth0 is a LAN", refused: []string{"eth0", "eth1"},
		},
		{
			name: "explicit names, all well",
			in: with(func(in *Input) {
				in.Uplink, in.Cluster = "eth1", "eth0"
				in.Links = ls("eth0+", "eth1+")
				in.Routes = []Route{{"eth1", 100}}
			}),
			uplink: "eth1", clustr: "eth0", refused: []string{"eth1"},
		},
		{
			name: "auto uplink, explicit cluster: the cluster's own route is not the uplink",
			in: with(func(in *Input) {
				in.Cluster = "eth0"
				in.Links = ls("eth0+", "wlan0+")
				in.Routes = []Route{{"eth0", 100}, {"wlan0", 600}}
			}),
			uplink: "wlan0", clustr: "eth0", problem: "eth0 is a LAN", refused: []string{"eth0", "wlan0"},
		},
		{
			name: "explicit uplink, auto cluster",
			in: with(func(in *Input) {
				in.Uplink = "usb0"
				in.Links = ls("eth0+", "usb0+")
			}),
			uplink: "usb0", clustr: "eth0", refused: []string{"usb0"},
		},
		{
			name: "gadget links and other bridges' ports are not wired ports",
			in: with(func(in *Input) {
				in.Links = ls("docker0", "ethpi1+", "eth5@docker0", "eth1+", "eth2+")
				in.Routes = []Route{{"eth1", 100}}
			}),
			uplink: "eth1", clustr: "eth2", refused: []string{"eth1"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Decide(tc.in)
			if r.Uplink != tc.uplink || r.Cluster != tc.clustr || r.Bridge != tc.bridge || !slices.Equal(r.Ports, tc.ports) {
				t.Errorf("got uplink %q (%s), cluster %q (%s), bridge %v ports %v; want %q, %q, %v %v",
					r.Uplink, r.UplinkWhy, r.Cluster, r.ClusterWhy, r.Bridge, r.Ports, tc.uplink, tc.clustr, tc.bridge, tc.ports)
			}
			if r.UplinkWhy == "" || r.ClusterWhy == "" {
				t.Errorf("a role without a reason: uplink %q, cluster %q", r.UplinkWhy, r.ClusterWhy)
			}
			got := ""
			if r.Problem != nil {
				got = r.Problem.Short
				if len(got) > 16 || !strings.Contains(r.Problem.Line, "swap the cables") || r.Problem.Port != (tc.clustr == "br0") {
					t.Errorf("problem %+v: Short must fit 16 columns and Line must say the fix", *r.Problem)
				}
			}
			if got != tc.problem {
				t.Errorf("problem %q, want %q", got, tc.problem)
			}
			var refused []string
			for n := range r.Refused {
				refused = append(refused, n)
			}
			slices.Sort(refused)
			if !slices.Equal(refused, tc.refused) {
				t.Errorf("refused %v, want %v", r.Refused, tc.refused)
			}
			if !r.Equal(Decide(tc.in)) {
				t.Error("the same input decided twice differs")
			}
		})
	}
}

func TestNames(t *testing.T) {
	for name, want := range map[string][3]bool{ // wired, wireless, gadget
		"eth0": {true, false, false}, "end0": {true, false, false}, "enxb827eb123456": {true, false, false},
		"usb0": {true, false, false}, "wlan0": {false, true, false}, "ethpi3": {false, false, true},
		"ethupi12": {false, false, true}, "br0": {}, "lo": {}, "docker0": {}, "tailscale0": {},
	} {
		if got := [3]bool{IsWired(name), IsWireless(name), IsGadget(name)}; got != want {
			t.Errorf("%s: wired/wireless/gadget %v, want %v", name, got, want)
		}
	}
}

func TestBridgePort(t *testing.T) {
	r := Decide(Input{Uplink: Auto, Cluster: Auto, Bridge: "br0", Board: true,
		Links: ls("eth0+", "eth1", "br0", "ethpi1"), Routes: []Route{{"eth0", 100}}})
	for name, want := range map[string]bool{"ethpi1": true, "ethupi2": true, "eth1": true, "eth0": false, "wlan0": false} {
		if got := r.BridgePort([]string{"ethpi*", "ethupi*"}, name); got != want {
			t.Errorf("BridgePort(%s) = %v, want %v", name, got, want)
		}
	}
	// An explicit pattern that matches the LAN still leaves it out.
	if r.BridgePort([]string{"eth*"}, "eth0") {
		t.Error("eth0 carries the default route and must not be bridged, whatever the pattern")
	}
}
