package web

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
)

func yes() *bool { b := true; return &b }
func no() *bool  { b := false; return &b }

// sampleStatus is a ClusterHAT (p1-p4) and a ClusterCTRL Triple (p5-p7)
// with p2 off, p3 unreachable, p8 a [[nodes]] entry no board powers and
// p9 without an address.
func sampleStatus() *api.Status {
	return &api.Status{
		Health:  api.Health{State: api.HealthDegraded},
		Cluster: api.Link{Interface: "br0", Exists: true, Carrier: true, Address: "192.168.50.1/24"},
		Uplink:  api.Link{Interface: "eth1", Exists: true, Carrier: true, IPv6: []string{"2001:db8::2/64"}},
		DHCP: api.DHCP{State: api.DHCPServing, Pool: "192.168.50.128-192.168.50.131", OtherServer: "192.168.50.7", Packets: api.DHCPPackets{Dropped: map[string]int64{"pool-exhausted": 2}}, Leases: []api.Lease{
			{Address: "192.168.50.11", Node: "p1"}, {Address: "192.168.50.128"}, {Address: "192.168.50.131", Offered: true}, {Address: "192.168.50.200", Reserved: true},
		}},
		Power: api.Power{
			Boards: []api.PowerBoard{{Model: "ClusterHAT v2.5", Nodes: "p1-p4"}, {Model: "ClusterCTRL Triple", Nodes: "p5-p7"}},
			Nodes: []api.Node{
				{Name: "p1", Address: "192.168.50.11", State: api.NodeUp, Powered: yes()},
				{Name: "p2", Address: "192.168.50.12", State: api.NodeOff, Powered: no(), Requested: "off"},
				{Name: "p3", Address: "192.168.50.13", State: api.NodeUnreachable, Powered: yes()},
				{Name: "p6", Address: "192.168.50.16", State: api.NodeBooting, Powered: yes()},
				{Name: "p8", Address: "192.168.50.18", State: api.NodeUnknown},
				{Name: "p9", State: api.NodeUnknown},
			},
		},
	}
}

func TestTargetGroups(t *testing.T) {
	got := TargetGroups(sampleStatus(), 9100, "pi")
	node := func(addr, name, board, slot, power, state string) TargetGroup {
		l := map[string]string{"node": name, "head": "pi", "role": "node", "__meta_headnode_power": power, "__meta_headnode_state": state}
		if board != "" {
			l["board"], l["slot"] = board, slot
		}
		return TargetGroup{Targets: []string{addr}, Labels: l}
	}
	want := []TargetGroup{
		{Targets: []string{"192.168.50.1:9100"}, Labels: map[string]string{"node": "pi", "head": "pi", "role": "head", "__meta_headnode_power": "on", "__meta_headnode_state": "up"}},
		node("192.168.50.11:9100", "p1", "ClusterHAT v2.5", "1", "on", "up"),
		node("192.168.50.12:9100", "p2", "ClusterHAT v2.5", "2", "off", "off"),
		node("192.168.50.13:9100", "p3", "ClusterHAT v2.5", "3", "on", "unreachable"),
		node("192.168.50.16:9100", "p6", "ClusterCTRL Triple", "2", "on", "booting"),
		node("192.168.50.18:9100", "p8", "", "", "unknown", "unknown"),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("targets (-want +got):\n%s", diff)
	}
	// Nothing known yet: an empty list, which Prometheus reads as no
	// targets (null would be an error).
	if b, _ := json.Marshal(TargetGroups(&api.Status{}, 9100, "pi")); string(b) != "[]" {
		t.Errorf("no targets: %s, want []", b)
	}
}

func TestTargetsHandler(t *testing.T) {
	srv := httptest.NewServer(Targets(sampleStatus, 9200, "head1"))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// Prometheus requires exactly this content type.
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var groups []TargetGroup
	if err := json.NewDecoder(resp.Body).Decode(&groups); err != nil || len(groups) != 6 || groups[1].Targets[0] != "192.168.50.11:9200" || groups[1].Labels["head"] != "head1" {
		t.Errorf("%v %+v", err, groups)
	}
}

func TestAlertMetrics(t *testing.T) {
	metrics := scrape(t, sampleStatus)
	for _, want := range []string{
		`headnode_dhcp_other_server 1`,
		`headnode_dhcp_pool_size 4`,
		`headnode_dhcp_pool_leases 2`,
		`headnode_link_address_present{family="ipv4",interface="eth1",role="uplink"} 0`,
		`headnode_link_address_present{family="ipv6",interface="eth1",role="uplink"} 1`,
		`headnode_link_address_present{family="ipv4",interface="br0",role="cluster"} 1`,
		`headnode_node_info{address="192.168.50.16",board="ClusterCTRL Triple",node="p6",slot="2"} 1`,
		`headnode_node_info{address="",board="",node="p9",slot=""} 1`,
		`headnode_node_requested_off{node="p2"} 1`,
		`headnode_node_requested_off{node="p3"} 0`,
	} {
		if !strings.Contains(metrics, want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not installed (Debian package prometheus): %v", err)
	}
	check := exec.Command(promtool, "check", "metrics")
	check.Stdin = strings.NewReader(metrics)
	if out, err := check.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
	// Without a pool (DHCP off) there is no pool to measure.
	if b := scrape(t, func() *api.Status { return &api.Status{} }); strings.Contains(b, "headnode_dhcp_pool_size") || !strings.Contains(b, "headnode_dhcp_other_server 0\n") {
		t.Errorf("without DHCP:\n%s", b)
	}
}

// scrape returns what /metrics serves for the status current returns.
func scrape(t *testing.T, current func() *api.Status) string {
	t.Helper()
	srv := httptest.NewServer(Handler(current))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
