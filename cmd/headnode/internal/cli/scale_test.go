package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
)

// status1024 is a 1024-node cluster's status: 12 nodes unreachable, 4 off,
// a lease for every node.
func status1024() *api.Status {
	on, off := true, false
	s := &api.Status{Version: "test", Started: time.Now().Add(-time.Hour), Health: api.Health{State: api.HealthDegraded, Reasons: []string{"12 nodes unreachable: p8 p93 …"}},
		Uplink: api.Link{Interface: "eth1", Exists: true, Carrier: true, Address: "192.168.1.194/24"},
		NAT:    api.NAT{State: api.NATOK, Subnet: "10.0.0.0/21", Backend: "nftables"},
		DHCP:   api.DHCP{State: api.DHCPServing, Interface: "eth0", Pool: "10.0.5.0-10.0.7.254"},
		Config: api.Config{Path: "/etc/headnode/config.toml", ReloadOK: true}}
	for i := range 1024 {
		n := api.Node{Name: fmt.Sprintf("p%d", i+1), Address: fmt.Sprintf("10.0.%d.%d", (i+11)/256, (i+11)%256), State: api.NodeUp, Since: time.Now().Add(-time.Minute), Powered: &on, Reachable: true}
		switch {
		case i%85 == 7:
			n.State, n.Reachable = api.NodeUnreachable, false
		case i >= 1020:
			n.State, n.Powered = api.NodeOff, &off
		}
		s.Power.Nodes = append(s.Power.Nodes, n)
		s.DHCP.Leases = append(s.DHCP.Leases, api.Lease{Address: n.Address, MAC: fmt.Sprintf("b8:27:eb:00:%02x:%02x", i/256, i%256), Node: n.Name, Expires: time.Now().Add(time.Hour)})
	}
	return s
}

// `headnode status` of 1024 nodes: the count by state comes before the
// table, and every node has its row.
func TestStatusThousandNodes(t *testing.T) {
	var out bytes.Buffer
	printStatus(&out, status1024())
	text := out.String()
	summary := strings.Index(text, "1008/1024 up, 12 unreachable, 4 off\n")
	table := strings.Index(text, "\nNODE ")
	if summary < 0 || table < 0 || summary > table {
		t.Fatalf("summary at %d, table at %d:\n%.2000s", summary, table, text)
	}
	if !strings.Contains(text, " ... and 960 more (headnode status --json lists them all)\n") || strings.Count(text, "expires in") != 64 {
		t.Errorf("the lease list is not cut at 64")
	}
	rows := 0
	for _, l := range strings.Split(text[table:], "\n") {
		if strings.HasPrefix(l, "p") {
			rows++
		}
	}
	if rows != 1024 {
		t.Errorf("%d node rows, want 1024", rows)
	}
}

// BenchmarkStatusThousandNodes is what `headnode status` does after the
// request: decode the daemon's JSON and print it (target: the whole
// command in 50 ms; build.sh bench times the command itself).
func BenchmarkStatusThousandNodes(b *testing.B) {
	body, _ := json.Marshal(status1024())
	for b.Loop() {
		var s api.Status
		if err := json.Unmarshal(body, &s); err != nil {
			b.Fatal(err)
		}
		printStatus(io.Discard, &s)
	}
}
