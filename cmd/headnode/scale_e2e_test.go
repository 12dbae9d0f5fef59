package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
)

// scaleNodes is the size of the large cluster the scale tests build.
const scaleNodes = 1024

// scaleAddr is node pN's address in the large cluster, in 10.78.0.0/21,
// which the inside namespace answers for (one address each) behind one
// route, so that the head needs one neighbour entry, not 1024 (the
// neighbour table's limits are machine-wide).
func scaleAddr(n int) string { return fmt.Sprintf("10.78.%d.%d", n/256, n%256) }

// scaleSilent are the nodes that stop answering: 12 of 1024, p1000 among
// them.
func scaleSilent(n int) bool { return n%85 == 65 }

// scaleTopo is the e2e topology with 1024 nodes configured on emulated
// hardware (a ClusterHAT for p1-p4, the rest without power control),
// probed once a second (the default), unreachable after 3 s. Every node
// answers.
func scaleTopo(t *testing.T) (*topo, string) {
	t.Helper()
	tp := newTopo(t, true)
	var batch strings.Builder
	var nodes strings.Builder
	for n := 1; n <= scaleNodes; n++ {
		fmt.Fprintf(&batch, "addr add %s/32 dev in0\n", scaleAddr(n))
		fmt.Fprintf(&nodes, "\n[[nodes]]\nname = \"p%d\"\naddress = %q\n", n, scaleAddr(n))
	}
	cmd := tp.inside.Command("ip", "-batch", "-")
	cmd.Stdin = strings.NewReader(batch.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ip -batch: %v %s", err, out)
	}
	// The cluster is 10.78.0.0/20 (the head 10.78.8.1, the inside
	// namespace 10.78.8.2); the nodes' /21 is reached through the inside
	// namespace (onlink: the daemon puts the cluster address on later).
	must(t, tp.inside.AddAddr("in0", "10.78.8.2/20"))
	if out, err := tp.head.Run("ip", "route", "add", "10.78.0.0/21", "via", "10.78.8.2", "dev", "eth0", "onlink"); err != nil {
		t.Fatalf("route: %v %s", err, out)
	}
	cfg := tp.config(t, `
[power]
stagger = "0s"
boot_grace = "1s"
probe_interval = "1s"
down_after = "3s"

[hardware]
backend = "sim"
`+nodes.String())
	text, _ := os.ReadFile(cfg)
	text = []byte(strings.NewReplacer(`cluster_address = "192.168.50.1/24"`, `cluster_address = "10.78.8.1/20"`, "[lcd]\nenabled = false", "[lcd]\nenabled = true", "[led]\nenabled = false", "[led]\nenabled = true").Replace(string(text)))
	must(t, os.WriteFile(cfg, text, 0o644))
	return tp, cfg
}

func countState(s *api.Status, state string) int {
	n := 0
	for _, nd := range s.Power.Nodes {
		if nd.State == state {
			n++
		}
	}
	return n
}

// 1024 nodes probed by the daemon: they come up (p1-p4 are the
// ClusterHAT's and off until asked; the rest have no power control and
// are followed by the probe alone); 12 nodes that stop answering are
// unreachable within down_after (3 s) and a probe round; `headnode
// status`, its JSON, the status page and /metrics carry all 1024 (the page
// a summary first and 64 nodes a page); the LCD shows the count
// ("1008/1024 up") and the LED degraded.
func TestE2EThousandNodes(t *testing.T) {
	tp, cfg := scaleTopo(t)
	d := tp.startDaemon(t, cfg)
	wantUp := scaleNodes - 4
	s, _ := d.waitFor(t, fmt.Sprintf("%d nodes up", wantUp), func(s *api.Status) bool { return countState(s, api.NodeUp) == wantUp })
	if len(s.Power.Nodes) != scaleNodes {
		t.Fatalf("%d nodes in the status", len(s.Power.Nodes))
	}

	// 12 nodes stop answering at once.
	var batch strings.Builder
	var silent []string
	for n := 1; n <= scaleNodes; n++ {
		if scaleSilent(n) {
			fmt.Fprintf(&batch, "addr del %s/32 dev in0\n", scaleAddr(n))
			silent = append(silent, fmt.Sprintf("p%d", n))
		}
	}
	cmd := tp.inside.Command("ip", "-batch", "-")
	cmd.Stdin = strings.NewReader(batch.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ip -batch: %v %s", err, out)
	}
	stopped := time.Now()
	_, at := d.waitFor(t, "12 nodes unreachable", func(s *api.Status) bool { return countState(s, api.NodeUnreachable) == len(silent) })
	took := at.Sub(stopped)
	t.Logf("%d nodes unreachable %v after they stopped answering (down_after 3 s, probes every 1 s)", len(silent), took.Round(time.Millisecond))
	if took > 3*time.Second+1500*time.Millisecond {
		t.Errorf("unreachable only after %v", took)
	}
	wantUp -= len(silent)

	row := func(s *api.Status, i int) string {
		if len(s.Display.LCD.Rows) <= i {
			return ""
		}
		return strings.TrimSpace(s.Display.LCD.Rows[i])
	}
	count := fmt.Sprintf("%d/%d up", wantUp, scaleNodes)
	s, _ = d.waitFor(t, "the count on the LCD, the LED degraded", func(s *api.Status) bool {
		return row(s, 1) == count && s.Display.LED.Pattern == "degraded"
	})
	if want := fmt.Sprintf("%d nodes unreachable: %s …", len(silent), strings.Join(silent[:8], " ")); len(s.Health.Reasons) == 0 || s.Health.Reasons[0] != want {
		t.Errorf("health %+v, want its first reason %q", s.Health, want)
	}

	start := time.Now()
	out, errOut, code := run(t, nil, "status", "--config", cfg)
	t.Logf("headnode status with %d nodes: %v, %d bytes", scaleNodes, time.Since(start).Round(time.Millisecond), len(out))
	if code != 0 || !strings.Contains(out, fmt.Sprintf("%d/%d up, %d unreachable, 4 off\n", wantUp, scaleNodes, len(silent))) || !strings.Contains(out, "\np1024 ") {
		t.Errorf("status: exit %d %s\n%.1500s", code, errOut, out)
	}
	start = time.Now()
	out, _, code = run(t, nil, "status", "--json", "--config", cfg)
	t.Logf("headnode status --json: %v, %d bytes", time.Since(start).Round(time.Millisecond), len(out))
	var js api.Status
	if err := json.Unmarshal([]byte(out), &js); code != 0 || err != nil || len(js.Power.Nodes) != scaleNodes {
		t.Errorf("status --json: exit %d, %v, %d nodes", code, err, len(js.Power.Nodes))
	}

	start = time.Now()
	page := fetch(t, tp.head, "http://127.0.0.1:9180/", "text/html")
	t.Logf("status page: %v, %d bytes", time.Since(start).Round(time.Millisecond), len(page))
	if i, j := strings.Index(page, count), strings.Index(page, "<table>"); i < 0 || j < 0 || i > j {
		t.Errorf("page: the count %q at %d, the node table at %d", count, i, j)
	}
	if !strings.Contains(page, "page 1 of 16") || strings.Count(page, `<tr><td class="mono">p`) != 64 {
		t.Errorf("page 1 is not 64 nodes of 16 pages")
	}
	if last := fetch(t, tp.head, "http://127.0.0.1:9180/?nodes=16", "text/html"); !strings.Contains(last, `<tr><td class="mono">p1024</td>`) {
		t.Errorf("page 16 lacks p1024")
	}
	start = time.Now()
	metrics := fetch(t, tp.head, "http://127.0.0.1:9180/metrics", "")
	t.Logf("/metrics: %v, %d bytes", time.Since(start).Round(time.Millisecond), len(metrics))
	if n := strings.Count(metrics, "\nheadnode_node_up{"); n != scaleNodes {
		t.Errorf("/metrics has node_up for %d nodes", n)
	}
	if !strings.Contains(metrics, `headnode_node_state{node="p1000",state="unreachable"} 1`) {
		t.Error("/metrics lacks p1000 unreachable")
	}
	promtoolCheck(t, metrics)
}
