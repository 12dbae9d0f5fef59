package daemon

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
	"github.com/headnode/headnode/cmd/headnode/internal/config"
	"github.com/headnode/headnode/netcfg/dhcpd"
	"github.com/headnode/headnode/netcfg/firewall"
	"github.com/headnode/headnode/netcfg/links"
	"github.com/headnode/headnode/netcfg/nat"
	"github.com/headnode/headnode/power"
	"github.com/headnode/headnode/power/board"
)

// healthyState is a running daemon with nothing wrong: NAT applied, the
// uplink up with an address, the cluster interface there, DHCP serving,
// the LCD and LED found.
func healthyState() *state {
	st := &state{cfg: config.Default()}
	st.net.report = &nat.KeeperReport{}
	st.status = api.Status{
		Ready:   true,
		Config:  api.Config{ReloadOK: true},
		NAT:     api.NAT{State: api.NATOK},
		Uplink:  api.Link{Interface: "eth1", Exists: true, Up: true, Carrier: true, Address: "10.0.0.2/24"},
		Cluster: api.Link{Interface: "eth0", Exists: true, Up: true, Address: "192.168.50.1/24"},
		DHCP:    api.DHCP{State: api.DHCPServing, Interface: "eth0"},
		Display: api.Display{LCD: api.LCD{State: api.DeviceOK}, LED: api.LED{State: api.DeviceOK}},
	}
	return st
}

func TestDeriveHealth(t *testing.T) {
	ok := api.Health{State: api.HealthOK}
	degraded := func(reasons ...string) api.Health {
		return api.Health{State: api.HealthDegraded, Reasons: reasons}
	}
	failed := func(class int, reasons ...string) api.Health {
		return api.Health{State: api.HealthFailed, Class: class, Reasons: reasons}
	}
	for _, c := range []struct {
		name  string
		given func(st *state)
		want  api.Health
	}{
		{"all well", func(*state) {}, ok},

		// Before and after.
		{"stopped stays stopped, whatever breaks", func(st *state) {
			st.status.Health = api.Health{State: api.HealthStopped, Reasons: []string{"stopped"}}
			st.status.NAT.State, st.status.Uplink.Exists = api.NATFailed, false
		}, api.Health{State: api.HealthStopped, Reasons: []string{"stopped"}}},
		{"starting until NAT is settled", func(st *state) {
			st.status.Ready, st.net.report = false, nil
			st.status.Uplink.Exists = false
		}, api.Health{State: api.HealthStarting, Reasons: []string{"starting"}}},
		{"NAT that cannot start is settled", func(st *state) {
			st.status.Ready, st.net.report, st.net.openErr = false, nil, errors.New("no iptables")
			st.status.NAT = api.NAT{State: api.NATFailed, Error: "no iptables"}
		}, failed(2, "NAT failed: no iptables")},
		{"NAT turned off is settled", func(st *state) {
			st.status.Ready, st.net.report = false, nil
			st.status.NAT.State = api.NATDisabled
		}, ok},
		{"once ready, a restarting network part is not starting", func(st *state) {
			st.net.report = nil
			st.status.NAT.State = api.NATApplying
		}, ok},

		// One thing wrong at a time.
		{"config invalid: its first line", func(st *state) {
			st.status.Config.ReloadOK, st.status.Config.ReloadError = false, "config.toml:3: power.stagger: \"soon\" is not a duration\nconfig.toml:9: ..."
		}, failed(1, `config invalid: config.toml:3: power.stagger: "soon" is not a duration`)},
		{"NAT failed", func(st *state) {
			st.status.NAT = api.NAT{State: api.NATFailed, Error: "iptables: exit 4"}
		}, failed(2, "NAT failed: iptables: exit 4")},
		{"NAT cleared on request", func(st *state) { st.status.NAT.State = api.NATCleared }, degraded("NAT off (nat clear)")},
		{"NAT waiting, each reason", func(st *state) {
			st.status.NAT = api.NAT{State: api.NATWaiting, Waiting: []string{"eth0 missing", "eth0 has no address"}}
		}, degraded("NAT waiting: eth0 missing", "NAT waiting: eth0 has no address")},
		{"NAT applying", func(st *state) { st.status.NAT.State = api.NATApplying }, ok},
		{"no uplink", func(st *state) { st.status.Uplink.Exists = false }, failed(4, "no uplink: eth1 missing")},
		{"uplink without carrier", func(st *state) { st.status.Uplink.Carrier = false }, degraded("uplink eth1 down")},
		{"uplink without address", func(st *state) { st.status.Uplink.Address = "" }, degraded("waiting for DHCP on eth1")},
		{"no cluster interface", func(st *state) { st.status.Cluster.Exists = false }, degraded("cluster eth0 missing")},
		{"DHCP failed", func(st *state) {
			st.status.DHCP = api.DHCP{State: api.DHCPFailed, Reason: "port 67 in use"}
		}, degraded("DHCP server not running: port 67 in use")},
		{"DHCP serving beside another server", func(st *state) { st.status.DHCP.OtherServer = "192.168.50.5" },
			degraded("another DHCP server (192.168.50.5) also answers on eth0")},
		{"DHCP off because of another server", func(st *state) {
			st.status.DHCP = api.DHCP{State: "other-server", OtherServer: "192.168.50.5"}
		}, ok},
		{"DHCP off", func(st *state) { st.status.DHCP = api.DHCP{State: api.DHCPOff} }, ok},
		{"bridge broken", func(st *state) { st.status.Bridge = &api.Bridge{Name: "br0", Error: "operation not permitted"} },
			degraded("bridge br0: operation not permitted")},
		{"bridge fine", func(st *state) { st.status.Bridge = &api.Bridge{Name: "br0", Exists: true} }, ok},
		{"power board expected and missing", func(st *state) {
			st.power.problems = []power.Problem{{What: "ClusterCTRL", Missing: true, Err: errors.New("no board found")}}
		}, degraded("power board missing: ClusterCTRL: no board found")},
		{"power board broken", func(st *state) {
			st.power.problems = []power.Problem{{What: "ClusterHAT", Err: errors.New("i2c bus 1: input/output error")}}
		}, failed(3, "power board failed: ClusterHAT: i2c bus 1: input/output error")},
		{"board stopped answering", func(st *state) {
			st.status.Power.Boards = []api.PowerBoard{{Model: "ClusterHAT v2.5", State: power.BoardMissing, Error: "NACK"}}
		}, degraded("ClusterHAT v2.5 missing: NACK")},
		{"board failed", func(st *state) {
			st.status.Power.Boards = []api.PowerBoard{{Model: "ClusterCTRL Triple", State: power.BoardFailed, Error: "bus error"}}
		}, failed(3, "ClusterCTRL Triple failed: bus error")},
		{"board fine", func(st *state) {
			st.status.Power.Boards = []api.PowerBoard{{Model: "ClusterHAT v2.5", State: "ok"}}
		}, ok},
		{"no reachability probe", func(st *state) { st.power.probeErr = "icmp: operation not permitted" },
			degraded("node probe unavailable: icmp: operation not permitted")},
		{"node that should be up does not answer", func(st *state) {
			st.status.Power.Nodes = []api.Node{{Name: "p1", State: api.NodeUp}, {Name: "p2", State: api.NodeUnreachable, Requested: "on"}, {Name: "p3", State: api.NodeUnreachable}}
		}, degraded("p2 unreachable", "p3 unreachable")},
		{"node switched off on request is no fault", func(st *state) {
			st.status.Power.Nodes = []api.Node{{Name: "p2", State: api.NodeUnreachable, Requested: "off"}, {Name: "p3", State: api.NodeOff}, {Name: "p4", State: api.NodeBooting}}
		}, ok},
		{"LCD missing: the first line of its error", func(st *state) {
			st.status.Display.LCD = api.LCD{State: api.DeviceMissing, Error: "nothing answers at 0x27\nor 0x3f"}
		}, degraded("LCD missing: nothing answers at 0x27")},
		{"LED missing", func(st *state) {
			st.status.Display.LED = api.LED{State: api.DeviceMissing, Error: "no status LED (BlinkStick or blink(1)) is plugged in"}
		}, degraded("status LED missing: no status LED (BlinkStick or blink(1)) is plugged in")},
		{"LCD and LED turned off or not looked for yet", func(st *state) {
			st.status.Display = api.Display{LCD: api.LCD{State: api.DeviceDisabled}, LED: api.LED{State: api.DeviceStarting}}
		}, ok},

		// Several: failures first, in order of importance, and the blink
		// code of the first.
		{"failures before degradations, class of the first", func(st *state) {
			st.status.Display.LCD = api.LCD{State: api.DeviceMissing, Error: "gone"}
			st.status.Uplink.Exists = false
			st.power.problems = []power.Problem{{What: "ClusterHAT", Err: errors.New("bus error")}}
			st.status.NAT = api.NAT{State: api.NATFailed, Error: "exit 4"}
		}, failed(2, "NAT failed: exit 4", "no uplink: eth1 missing", "power board failed: ClusterHAT: bus error", "LCD missing: gone")},
		{"a bad config outranks everything", func(st *state) {
			st.status.Uplink.Exists = false
			st.status.Config.ReloadOK, st.status.Config.ReloadError = false, "bad"
		}, failed(1, "config invalid: bad", "no uplink: eth1 missing")},
		{"degradations in order: network, DHCP, power, display", func(st *state) {
			st.status.Display.LED = api.LED{State: api.DeviceMissing, Error: "unplugged"}
			st.power.probeErr = "denied"
			st.status.DHCP.OtherServer = "192.168.50.5"
			st.status.Cluster.Exists = false
		}, degraded("cluster eth0 missing", "another DHCP server (192.168.50.5) also answers on eth0", "node probe unavailable: denied", "status LED missing: unplugged")},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := healthyState()
			c.given(st)
			st.deriveHealth()
			if got := st.status.Health; !reflect.DeepEqual(got, c.want) {
				t.Errorf("health\n got %#v\nwant %#v", got, c.want)
			}
		})
	}
}

func TestApplyNAT(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	t1 := t0.Add(time.Minute)
	subnet := netip.MustParsePrefix("192.168.50.0/24")
	// before is what the status said after the previous report.
	before := api.NAT{State: api.NATApplying, Daemon: true, Backend: "iptables-nft", Missing: []string{"nat POSTROUTING jump"},
		Subnet: "10.1.0.0/24", Error: "earlier error", Repairs: 2, LastRepair: t0, LastCheck: t0, Waiting: []string{"eth0 missing"}}
	for _, c := range []struct {
		name    string
		openErr error
		report  *nat.KeeperReport
		want    api.NAT
	}{
		{"iptables cannot be opened", errors.New("no iptables binary"), nil, api.NAT{State: api.NATFailed, Daemon: true, Backend: "iptables-nft",
			Missing: []string{"nat POSTROUTING jump"}, Subnet: "10.1.0.0/24", Error: "no iptables binary", Repairs: 2, LastRepair: t0, LastCheck: t0, Waiting: []string{"eth0 missing"}}},
		{"that failure outranks any report", errors.New("no iptables binary"), &nat.KeeperReport{At: t1, Result: nat.Result{Subnet: subnet}},
			api.NAT{State: api.NATFailed, Daemon: true, Backend: "iptables-nft", Missing: []string{"nat POSTROUTING jump"}, Subnet: "10.1.0.0/24",
				Error: "no iptables binary", Repairs: 2, LastRepair: t0, LastCheck: t0, Waiting: []string{"eth0 missing"}}},
		{"applied: the subnet, rules and forwarding, earlier trouble forgotten", nil, &nat.KeeperReport{At: t1, Result: nat.Result{Subnet: subnet}, Repairs: 2},
			api.NAT{State: api.NATOK, Daemon: true, Backend: "iptables-nft", Forwarding: true, RulesPresent: true, Subnet: "192.168.50.0/24", Repairs: 2, LastRepair: t0, LastCheck: t1}},
		{"repaired: the time of the repair", nil, &nat.KeeperReport{At: t1, Result: nat.Result{Subnet: subnet}, Repaired: true, Repairs: 3},
			api.NAT{State: api.NATOK, Daemon: true, Backend: "iptables-nft", Forwarding: true, RulesPresent: true, Subnet: "192.168.50.0/24", Repairs: 3, LastRepair: t1, LastCheck: t1}},
		{"the automatic backend moved to iptables-legacy: the status follows", nil, &nat.KeeperReport{At: t1, Result: nat.Result{Subnet: subnet}, Repairs: 2, Backend: firewall.BackendIPTablesLegacy},
			api.NAT{State: api.NATOK, Daemon: true, Backend: "iptables-legacy", Forwarding: true, RulesPresent: true, Subnet: "192.168.50.0/24", Repairs: 2, LastRepair: t0, LastCheck: t1}},
		{"waiting for the cluster interface", nil, &nat.KeeperReport{At: t1, Result: nat.Result{Waiting: []string{"eth0 has no address"}}, Repairs: 2},
			api.NAT{State: api.NATWaiting, Daemon: true, Backend: "iptables-nft", Missing: []string{"nat POSTROUTING jump"}, Subnet: "10.1.0.0/24",
				Repairs: 2, LastRepair: t0, LastCheck: t1, Waiting: []string{"eth0 has no address"}}},
		{"applying failed", nil, &nat.KeeperReport{At: t1, Err: errors.New("iptables: exit 4"), Repairs: 2},
			api.NAT{State: api.NATFailed, Daemon: true, Backend: "iptables-nft", Missing: []string{"nat POSTROUTING jump"}, Subnet: "10.1.0.0/24",
				Error: "iptables: exit 4", Repairs: 2, LastRepair: t0, LastCheck: t1}},
		{"cleared on request", nil, &nat.KeeperReport{At: t1, Cleared: true, Repairs: 2},
			api.NAT{State: api.NATCleared, Daemon: true, Backend: "iptables-nft", Missing: []string{"nat POSTROUTING jump"}, Repairs: 2, LastRepair: t0, LastCheck: t1}},
		{"cleared, and the clear failed", nil, &nat.KeeperReport{At: t1, Cleared: true, Err: errors.New("chain busy"), Repairs: 2},
			api.NAT{State: api.NATCleared, Daemon: true, Backend: "iptables-nft", Missing: []string{"nat POSTROUTING jump"}, Error: "chain busy", Repairs: 2, LastRepair: t0, LastCheck: t1}},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := &state{}
			st.status.NAT = before
			st.status.NAT.Missing = append([]string(nil), before.Missing...)
			st.net.openErr, st.net.report = c.openErr, c.report
			st.applyNAT()
			if got := st.status.NAT; !reflect.DeepEqual(got, c.want) {
				t.Errorf("NAT\n got %+v\nwant %+v", got, c.want)
			}
		})
	}
}

func TestDHCPReservations(t *testing.T) {
	// The pool starts at .15: only p1-p4 (.11-.14) are outside it.
	const base = `
[network]
cluster_address = "192.168.50.1/24"
`
	const pool = `
[dhcp]
pool = "192.168.50.15-192.168.50.254"
`
	const defaults = "p1 192.168.50.11|p2 192.168.50.12|p3 192.168.50.13|p4 192.168.50.14"
	for _, c := range []struct {
		name, toml string
		want       string // reservations as "[mac ]name addr", joined by |
	}{
		{"every node outside the pool at host 10+N", "", defaults},
		{"none inside the pool", `
[dhcp]
pool = "192.168.50.2-192.168.50.254"
`, ""},
		{"the pool need not start at .15", `
[dhcp]
pool = "192.168.50.13-192.168.50.254"
`, "p1 192.168.50.11|p2 192.168.50.12"},
		{"a MAC pinned to a node name gets the node's address", `
[[dhcp.static]]
mac = "b8:27:eb:00:00:02"
name = "p2"
`, "b8:27:eb:00:00:02 p2 192.168.50.12|p1 192.168.50.11|p3 192.168.50.13|p4 192.168.50.14"},
		{"a MAC with an address of its own takes it from the node there", `
[[dhcp.static]]
mac = "b8:27:eb:00:00:99"
name = "nas"
address = "192.168.50.13"
`, "b8:27:eb:00:00:99 nas 192.168.50.13|p1 192.168.50.11|p2 192.168.50.12|p4 192.168.50.14"},
		{"a MAC with an address and no name", `
[[dhcp.static]]
mac = "b8:27:eb:00:00:99"
address = "192.168.50.200"
`, "b8:27:eb:00:00:99 192.168.50.200|" + defaults},
		{"a [[nodes]] address is reserved even inside the pool", `
[[nodes]]
name = "p7"
address = "192.168.50.100"
`, "p7 192.168.50.100|" + defaults},
		{"a [[nodes]] entry moves its node", `
[[nodes]]
name = "p1"
address = "192.168.50.50"
`, "p1 192.168.50.50|p2 192.168.50.12|p3 192.168.50.13|p4 192.168.50.14"},
		{"a [[nodes]] entry beyond the 252 numbered by default", `
[[nodes]]
name = "p300"
address = "192.168.50.201"
`, "p300 192.168.50.201|" + defaults},
		{"a MAC pinned to a node listed in [[nodes]] gets the listed address", `
[[nodes]]
name = "p2"
address = "192.168.50.60"
[[dhcp.static]]
mac = "b8:27:eb:00:00:02"
name = "p2"
`, "b8:27:eb:00:00:02 p2 192.168.50.60|p1 192.168.50.11|p3 192.168.50.13|p4 192.168.50.14"},
	} {
		t.Run(c.name, func(t *testing.T) {
			text := base + c.toml
			if !strings.Contains(c.toml, "pool =") {
				text = base + pool + c.toml
			}
			cfg, err := config.Parse([]byte(text), "test.toml")
			if err != nil {
				t.Fatal(err)
			}
			if got := reservations(t, cfg); got != c.want {
				t.Errorf("reservations\n got %s\nwant %s", got, c.want)
			}
		})
	}

	t.Run("the default pool of a /24 leaves p1-p117", func(t *testing.T) {
		cfg := config.Default()
		cfg.Network.ClusterAddress = "192.168.50.1/24"
		rs := strings.Split(reservations(t, cfg), "|")
		if len(rs) != 117 || rs[0] != "p1 192.168.50.11" || rs[116] != "p117 192.168.50.127" {
			t.Errorf("%d reservations, %s ... %s", len(rs), rs[0], rs[len(rs)-1])
		}
	})
	t.Run("a /21 for 1000 nodes leaves p1-p1013", func(t *testing.T) {
		cfg := config.Default()
		cfg.Network.ClusterAddress = "10.213.0.1/21"
		rs := strings.Split(reservations(t, cfg), "|")
		if len(rs) != 1013 || rs[0] != "p1 10.213.0.11" || rs[1012] != "p1013 10.213.3.255" {
			t.Errorf("%d reservations, %s ... %s", len(rs), rs[0], rs[len(rs)-1])
		}
	})
	// What validation refuses cannot reach here from a file; built by hand
	// it is left out, never reserved for a made-up node.
	t.Run("entries validation refuses are left out", func(t *testing.T) {
		cfg, _ := config.Parse([]byte(base+pool), "test.toml")
		cfg.DHCP.Static = []config.DHCPStatic{
			{MAC: "not a mac", Name: "p1"},
			{MAC: "b8:27:eb:00:00:01", Name: "nas"},
			{MAC: "b8:27:eb:00:00:02", Name: "p01"},
			{MAC: "b8:27:eb:00:00:03", Name: "p3", Address: "192.168.50.300"},
		}
		cfg.Nodes = []config.Node{{Name: "p0", Address: "192.168.50.90"}, {Name: "P5", Address: "192.168.50.91"}}
		if got := reservations(t, cfg); got != defaults {
			t.Errorf("reservations\n got %s\nwant %s", got, defaults)
		}
		cfg.Nodes = []config.Node{{Name: "p3", Address: "10.9.9.9"}, {Name: "p4", Address: "192.168.50.1"}}
		if got, want := reservations(t, cfg), "p1 192.168.50.11|p2 192.168.50.12"; got != want {
			t.Errorf("addresses outside the subnet or the head's: reservations\n got %s\nwant %s", got, want)
		}
		cfg.Nodes = nil
		cfg.DHCP.Static = []config.DHCPStatic{{MAC: "b8:27:eb:00:00:02", Name: "p2", Address: "192.168.50.200"}}
		if got, want := reservations(t, cfg), "b8:27:eb:00:00:02 p2 192.168.50.200|p1 192.168.50.11|p3 192.168.50.13|p4 192.168.50.14"; got != want {
			t.Errorf("a node name pinned elsewhere is reserved once: reservations\n got %s\nwant %s", got, want)
		}
	})
}

// reservations runs dhcpReservations for cfg as the dhcp part does.
func reservations(t *testing.T, cfg *config.Config) string {
	t.Helper()
	head, _ := cfg.Network.ClusterPrefix()
	first, last, err := cfg.DHCP.PoolRange(head)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range dhcpReservations(cfg, head, first, last) {
		out = append(out, r.String())
	}
	// Every one must pass the server's own checks.
	if _, err := dhcpd.New(&dhcpd.Options{Address: head, PoolFirst: first, PoolLast: last, Reservations: dhcpReservations(cfg, head, first, last), LeaseTime: time.Hour}); err != nil {
		t.Errorf("the DHCP server refuses the reservations: %v", err)
	}
	return strings.Join(out, "|")
}

func TestUpdatePower(t *testing.T) {
	on, off := true, false
	yes := func(b bool) *bool { return &b }
	hat := power.BoardReport{Info: board.Info{Kind: "clusterhat", Model: "ClusterHAT v2.5", Revision: "2.5", Chip: "XRA1200P", Bus: 1, Address: 0x20, Major: 2, Minor: 5},
		First: 1, Nodes: 4, State: "ok", Alert: yes(false), Hub: yes(true), LEDs: yes(true)}
	hatView := api.PowerBoard{Model: "ClusterHAT v2.5", Kind: "clusterhat", Chip: "XRA1200P", Bus: 1, Address: "0x20", Nodes: "p1-p4", First: 1, Count: 4, State: "ok",
		Alert: yes(false), Hub: yes(true), LEDs: yes(true), Version: "2.5", Major: 2, Minor: 5}
	four := []powerNode{
		{name: "p1", num: 1, n: 1, addr: netip.MustParseAddr("192.168.50.11")},
		{name: "p2", num: 2, n: 2, addr: netip.MustParseAddr("192.168.50.12")},
		{name: "p3", num: 3, n: 3, addr: netip.MustParseAddr("192.168.50.13")},
		{name: "p4", num: 4, n: 4, addr: netip.MustParseAddr("192.168.50.14")},
	}
	report := power.Report{Boards: []power.BoardReport{hat}, Powered: []*bool{&on, &off, nil, &on}, Requested: []string{"on", "off", "", ""}}
	const grace, downAfter = 2 * time.Minute, 3 * time.Second
	type nodeWant struct {
		state, requested, gadget string
		powered                  *bool
		reachable                bool
	}
	for _, c := range []struct {
		name    string
		probing bool
		grace   time.Duration
		ps      powerState
		links   map[string]links.State
		given   func(st *state, now time.Time) // between two updatePowers
		board   string
		boards  []api.PowerBoard
		nodes   []nodeWant
		other   func(p api.Power) string // further checks: "" or what is wrong
	}{
		{name: "no board", board: "none"},
		{name: "board facts: a HAT's identity and write protection, a Stack's fan, voltages, temperature, USBBOOT lines",
			ps: powerState{nodes: []powerNode{{name: "p5", num: 5, n: 5}, {name: "p6", num: 6, n: 6}}, report: power.Report{
				Boards: []power.BoardReport{
					{Info: board.Info{Kind: "clusterhat", Model: "ClusterHAT v2.5", Revision: "2.5", Chip: "XRA1200P", Bus: 1, Address: 0x20, Major: 2, Minor: 5,
						UUID: "u", Vendor: "8086 Consultancy", ProductID: "0x0004", WPLink: new(int)}, First: 1, Nodes: 4, State: "ok", Read: board.State{WP: yes(true)}},
					{Info: board.Info{Kind: "clusterctrl", Model: "ClusterCTRL Stack", Bus: 11, Address: 0x20, Order: 20, Firmware: "1.8", FirmwareMajor: 1, FirmwareMinor: 8},
						First: 5, Nodes: 2, State: "ok", Read: board.State{FanStatus: new(byte(0b101)), ADCs: []board.ADC{{Type: 1, Raw: 800}, {Type: 2, Raw: 360}, {Type: 9, Raw: 1}},
							Temp: new(uint16(369)), USBBoot: []bool{false, true}}},
				},
				Powered: []*bool{nil, nil, nil, nil, &off, &off}}},
			board: "ClusterHAT v2.5 + ClusterCTRL Stack",
			boards: []api.PowerBoard{
				{Model: "ClusterHAT v2.5", Kind: "clusterhat", Chip: "XRA1200P", Bus: 1, Address: "0x20", Nodes: "p1-p4", First: 1, Count: 4, State: "ok", Version: "2.5", Major: 2, Minor: 5,
					UUID: "u", Vendor: "8086 Consultancy", ProductID: "0x0004", WP: yes(true), WPLink: new(int)},
				{Model: "ClusterCTRL Stack", Kind: "clusterctrl", Bus: 11, Address: "0x20", Order: 20, Firmware: "1.8", FirmwareMajor: 1, FirmwareMinor: 8, Nodes: "p5-p6", First: 5, Count: 2, State: "ok",
					FanStatus: new(5), Fan: yes(true), Cooling: []string{"p6"},
					Voltages:    []api.Voltage{{ADC: 1, Type: 1, Raw: 800, Volts: 5.15625}, {ADC: 2, Type: 2, Raw: 360, Volts: 12.002738025700932}},
					Temperature: &api.Reading{Raw: 369, Celsius: 100}},
			},
			nodes: []nodeWant{{state: api.NodeOff, powered: &off}, {state: api.NodeOff, powered: &off}},
			other: func(p api.Power) string {
				if p.Nodes[0].USBBoot == nil || *p.Nodes[0].USBBoot || p.Nodes[1].USBBoot == nil || !*p.Nodes[1].USBBoot {
					return fmt.Sprintf("usbboot %v %v, want off, on", p.Nodes[0].USBBoot, p.Nodes[1].USBBoot)
				}
				return ""
			}},
		{name: "without a probe, powered is up", ps: powerState{nodes: four, report: report}, board: "ClusterHAT v2.5", boards: []api.PowerBoard{hatView},
			nodes: []nodeWant{{state: api.NodeUp, requested: "on", powered: &on}, {state: api.NodeOff, requested: "off", powered: &off}, {state: api.NodeUnknown}, {state: api.NodeUp, powered: &on}}},
		{name: "probing: powered and silent is booting within the grace", probing: true, grace: grace, ps: powerState{nodes: four[:1], report: report},
			board: "ClusterHAT v2.5", boards: []api.PowerBoard{hatView}, nodes: []nodeWant{{state: api.NodeBooting, requested: "on", powered: &on}}},
		{name: "probing: and unreachable after it", probing: true, ps: powerState{nodes: four[:1], report: report},
			board: "ClusterHAT v2.5", boards: []api.PowerBoard{hatView}, nodes: []nodeWant{{state: api.NodeUnreachable, requested: "on", powered: &on}}},
		{name: "probing: an answer is up", probing: true, ps: powerState{nodes: four[:1], report: report},
			given: func(st *state, now time.Time) { st.power.life.Seen("p1", true, now) },
			board: "ClusterHAT v2.5", boards: []api.PowerBoard{hatView}, nodes: []nodeWant{{state: api.NodeUp, requested: "on", powered: &on, reachable: true}}},
		{name: "a gadget link is shown", ps: powerState{nodes: four[:2], report: report},
			links: map[string]links.State{"ethpi1": {Name: "ethpi1"}, "ethpi2": {Name: "ethpi2", Exists: true}},
			board: "ClusterHAT v2.5", boards: []api.PowerBoard{hatView},
			nodes: []nodeWant{{state: api.NodeUp, requested: "on", powered: &on}, {state: api.NodeOff, requested: "off", powered: &off, gadget: "ethpi2"}}},
		{name: "a [[nodes]] entry without a board is unknown", ps: powerState{nodes: []powerNode{{name: "p9", num: 9, addr: netip.MustParseAddr("192.168.50.90")}}, report: report},
			board: "ClusterHAT v2.5", boards: []api.PowerBoard{hatView}, nodes: []nodeWant{{state: api.NodeUnknown}}},
		{name: "a node the report does not cover is unknown", ps: powerState{nodes: []powerNode{{name: "p5", num: 5, n: 5}}, report: report},
			board: "ClusterHAT v2.5", boards: []api.PowerBoard{hatView}, nodes: []nodeWant{{state: api.NodeUnknown}}},
		{name: "two boards, the queue, problems, probe error, boot policy",
			ps: powerState{nodes: four[:1], probeErr: "icmp: operation not permitted",
				problems: []power.Problem{{What: "ClusterCTRL", Missing: true, Err: errors.New("no board found")}},
				report: power.Report{
					Boards:  []power.BoardReport{hat, {Info: board.Info{Kind: "clusterctrl", Model: "ClusterCTRL Single", Bus: 11, Order: 20, Firmware: "1.2"}, First: 5, Nodes: 1, State: power.BoardMissing, Error: "NACK"}},
					Powered: []*bool{&on, &off, &off, &off, nil}, Requested: []string{"on"}, Queued: []int{2, 3},
					BootApplied: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), BootNote: "restored p1", Warnings: []string{"same order"},
				}},
			board:  "ClusterHAT v2.5 + ClusterCTRL Single",
			boards: []api.PowerBoard{hatView, {Model: "ClusterCTRL Single", Kind: "clusterctrl", Bus: 11, Order: 20, Firmware: "1.2", Nodes: "p5", First: 5, Count: 1, State: power.BoardMissing, Error: "NACK"}},
			nodes:  []nodeWant{{state: api.NodeUp, requested: "on", powered: &on}},
			other: func(p api.Power) string {
				want := api.Power{Queued: []string{"p2", "p3"}, Errors: []string{"ClusterCTRL: no board found", "reachability probe: icmp: operation not permitted"},
					Warnings: []string{"same order"}, BootApplied: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), BootNote: "restored p1"}
				got := api.Power{Queued: p.Queued, Errors: p.Errors, Warnings: p.Warnings, BootApplied: p.BootApplied, BootNote: p.BootNote}
				if !reflect.DeepEqual(got, want) {
					return "got " + strings.Join(append(append(p.Queued, p.Errors...), p.BootNote), ", ")
				}
				return ""
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				st := &state{cfg: config.Default()}
				st.power = c.ps
				st.power.life = power.Lifecycle{Grace: c.grace, DownAfter: downAfter, Probing: c.probing}
				st.net.links = c.links
				start := time.Now()
				st.updatePower() // the nodes are known, as after resetPower
				if c.given != nil {
					c.given(st, start)
				}
				st.updatePower()
				p := st.status.Power
				if p.Board != c.board || p.BootPolicy != "restore" || p.Stagger != "1s" || p.Probe != "icmp" || !reflect.DeepEqual(p.Boards, c.boards) {
					t.Errorf("board %q %+v, policy %q stagger %q probe %q; want %q %+v", p.Board, p.Boards, p.BootPolicy, p.Stagger, p.Probe, c.board, c.boards)
				}
				if p.Nodes == nil || len(p.Nodes) != len(c.nodes) {
					t.Fatalf("nodes %+v, want %d", p.Nodes, len(c.nodes))
				}
				for i, w := range c.nodes {
					nd, want := p.Nodes[i], c.ps.nodes[i]
					if nd.Name != want.name || nd.State != w.state || nd.Since != start || !reflect.DeepEqual(nd.Powered, w.powered) ||
						nd.Reachable != w.reachable || nd.Requested != w.requested || nd.Gadget != w.gadget {
						t.Errorf("node %d: %+v, want %s %+v", i, nd, want.name, w)
					}
					if wantAddr := want.addr; (wantAddr.IsValid() && nd.Address != wantAddr.String()) || (!wantAddr.IsValid() && nd.Address != "") {
						t.Errorf("node %s address %q, want %v", nd.Name, nd.Address, wantAddr)
					}
				}
				if c.other != nil {
					if msg := c.other(p); msg != "" {
						t.Error(msg)
					}
				}
			})
		})
	}
}

// A node the part stops following is forgotten: followed again later, it
// starts over rather than carrying its old state and time.
func TestUpdatePowerForgets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		on := true
		st := &state{cfg: config.Default()}
		st.power = powerState{nodes: []powerNode{{name: "p1", num: 1, n: 1}}, report: power.Report{Powered: []*bool{&on}}, life: power.Lifecycle{DownAfter: time.Second}}
		st.updatePower()
		first := st.status.Power.Nodes[0].Since
		time.Sleep(time.Minute)
		st.updatePower()
		if got := st.status.Power.Nodes[0].Since; got != first {
			t.Errorf("still up, since %v; want %v", got, first)
		}
		nodes := st.power.nodes
		st.power.nodes = nil
		st.updatePower()
		time.Sleep(time.Minute)
		st.power.nodes = nodes
		st.updatePower()
		if got := st.status.Power.Nodes[0]; got.State != api.NodeUp || got.Since != first.Add(2*time.Minute) {
			t.Errorf("followed again: %+v, want up since %v", got, first.Add(2*time.Minute))
		}
	})
}
