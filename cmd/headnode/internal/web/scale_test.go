package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
)

// status1024 is a cluster of 1024 nodes (12 unreachable, 4 off) with a
// lease for each, as a thousand-node build's status looks.
func status1024() *api.Status {
	s := &api.Status{Version: "test", Started: time.Now().Add(-time.Hour), Health: api.Health{State: api.HealthDegraded, Reasons: []string{"12 nodes unreachable: p8 p93 p178 p263 p348 p433 p518 p603 …"}},
		Uplink: api.Link{Interface: "eth1", Exists: true, Carrier: true, Address: "192.168.1.194/24"},
		NAT:    api.NAT{State: api.NATOK, Subnet: "10.0.0.0/21", Backend: "nftables"},
		DHCP:   api.DHCP{State: api.DHCPServing, Interface: "eth0", Pool: "10.0.5.0-10.0.7.254"},
		Power:  api.Power{Board: "none"}}
	since := time.Now().Add(-10 * time.Minute)
	for i := range 1024 {
		n := api.Node{Name: fmt.Sprintf("p%d", i+1), Address: fmt.Sprintf("10.0.%d.%d", (i+11)/256, (i+11)%256), State: api.NodeUp, Since: since, Powered: boolPtr(true), Reachable: true}
		switch {
		case i%85 == 7:
			n.State, n.Reachable = api.NodeUnreachable, false
		case i >= 1020:
			n.State, n.Powered, n.Reachable = api.NodeOff, boolPtr(false), false
		}
		s.Power.Nodes = append(s.Power.Nodes, n)
		s.DHCP.Leases = append(s.DHCP.Leases, api.Lease{Address: n.Address, MAC: fmt.Sprintf("b8:27:eb:00:%02x:%02x", i/256, i%256), Node: n.Name, Expires: time.Now().Add(time.Hour)})
	}
	return s
}

func get(t testing.TB, h http.Handler, path, accept string) string {
	t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("%s: %d", path, rec.Code)
	}
	return rec.Body.String()
}

// With 1024 nodes the page puts the summary first, names the nodes that
// need attention and lists 64 nodes a page; the metrics carry every node
// and pass promtool; the JSON carries every node.
func TestThousandNodes(t *testing.T) {
	s := status1024()
	h := Handler(func() *api.Status { return s })
	page := get(t, h, "/", "text/html")
	summary := strings.Index(page, "1008/1024 up</span> · <span class=\"warn\">12 unreachable</span> · 4 off")
	table := strings.Index(page, "<table>")
	if summary < 0 || table < 0 || summary > table {
		t.Errorf("summary at %d, node table at %d: want the summary first", summary, table)
	}
	for _, want := range []string{"not up: <span class=\"mono\">p8 p93 p178", "nodes 1–64 of 1024 · page 1 of 16", `<a href="/?nodes=2">next ›</a>`, "the first 64 of 1024"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if rows := strings.Count(page, `<tr><td class="mono">p`); rows != 64 {
		t.Errorf("page 1 lists %d nodes, want 64", rows)
	}
	last := get(t, h, "/?nodes=16", "text/html")
	if !strings.Contains(last, "nodes 961–1024 of 1024") || !strings.Contains(last, `<tr><td class="mono">p1024</td>`) || strings.Contains(last, `<tr><td class="mono">p960</td>`) || strings.Contains(last, "next ›") {
		t.Errorf("page 16 is not p961-p1024")
	}
	for _, q := range []string{"0", "-3", "x", "99999999999999999999"} {
		if p := get(t, h, "/?nodes="+q, "text/html"); !strings.Contains(p, "page 1 of 16") && !strings.Contains(p, "page 16 of 16") {
			t.Errorf("?nodes=%s: no page shown", q)
		}
	}

	metrics := scrapeHandler(t, h)
	if n := strings.Count(metrics, "\nheadnode_node_up{"); n != 1024 {
		t.Errorf("metrics carry node_up for %d nodes, want 1024", n)
	}
	if !strings.Contains(metrics, `headnode_node_state{node="p8",state="unreachable"} 1`) {
		t.Error("metrics lack p8 unreachable")
	}
	promtoolCheck(t, metrics)

	var back api.Status
	if err := json.Unmarshal([]byte(get(t, h, "/", "application/json")), &back); err != nil || len(back.Power.Nodes) != 1024 || len(back.DHCP.Leases) != 1024 {
		t.Errorf("JSON: %v, %d nodes, %d leases", err, len(back.Power.Nodes), len(back.DHCP.Leases))
	}
}

func scrapeHandler(t testing.TB, h http.Handler) string {
	t.Helper()
	return get(t, h, "/metrics", "")
}

// BenchmarkThousandNodes times producing each view of a 1024-node status
// (the target is 50 ms each): the page, /metrics and the JSON.
func BenchmarkThousandNodes(b *testing.B) {
	s := status1024()
	h := Handler(func() *api.Status { return s })
	for _, v := range []struct{ name, path, accept string }{
		{"page", "/", "text/html"},
		{"metrics", "/metrics", ""},
		{"json", "/", "application/json"},
	} {
		b.Run(v.name, func(b *testing.B) {
			var size int
			for b.Loop() {
				req := httptest.NewRequest("GET", v.path, nil)
				if v.accept != "" {
					req.Header.Set("Accept", v.accept)
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				size = rec.Body.Len()
			}
			b.ReportMetric(float64(size), "bytes")
		})
	}
}

// promtoolCheck runs Prometheus' own linter on a scrape.
func promtoolCheck(t *testing.T, metrics string) {
	t.Helper()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not installed (Debian package prometheus): %v", err)
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(metrics)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}
