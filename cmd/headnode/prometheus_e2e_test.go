package main

// A real Prometheus (Debian's) in the head namespace, configured with the
// shipped prometheus.yml and alerts.yml: it scrapes headnode, finds the
// node_exporters of the nodes and of the head through headnode's service
// discovery, runs the alert rules and answers every query of the shipped
// Grafana dashboard.

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
	"github.com/headnode/headnode/cmd/headnode/internal/web/grafana"
	"github.com/headnode/headnode/netcfg/sandbox"
)

// The test's Prometheus timing. The rules' for: durations are shortened
// to ruleFor in the copy the test loads (alerts_test.yml tests them as
// shipped); everything else is the shipped file.
const (
	scrapeInterval = 2 * time.Second
	evalInterval   = time.Second
	ruleFor        = 4 * time.Second
	promAddr       = "127.0.0.1:9090"
)

// prom talks to Prometheus's HTTP API inside the head namespace.
type prom struct {
	t  *testing.T
	hc *http.Client
}

func newProm(t *testing.T, ns *sandbox.NS) *prom {
	return &prom{t: t, hc: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return ns.Dial(addr, net.Dialer{Timeout: 2 * time.Second})
		},
	}}}
}

// get calls an API path and decodes its data; it returns the API's error
// text instead when the call failed.
func (p *prom) get(path string, q url.Values, data any) (warnings []string, errText string) {
	resp, err := p.hc.Get("http://" + promAddr + path + "?" + q.Encode())
	if err != nil {
		return nil, err.Error()
	}
	defer resp.Body.Close()
	var r struct {
		Status    string          `json:"status"`
		Data      json.RawMessage `json:"data"`
		Error     string          `json:"error"`
		ErrorType string          `json:"errorType"`
		Warnings  []string        `json:"warnings"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, fmt.Sprintf("%s: %v", resp.Status, err)
	}
	if r.Status != "success" {
		return r.Warnings, fmt.Sprintf("%s: %s", r.ErrorType, r.Error)
	}
	if data != nil {
		if err := json.Unmarshal(r.Data, data); err != nil {
			return r.Warnings, err.Error()
		}
	}
	return r.Warnings, ""
}

func (p *prom) mustGet(path string, q url.Values, data any) {
	p.t.Helper()
	if _, e := p.get(path, q, data); e != "" {
		p.t.Fatalf("GET %s %v: %s", path, q, e)
	}
}

type promTarget struct {
	Labels     map[string]string `json:"labels"`
	Discovered map[string]string `json:"discoveredLabels"`
	ScrapePool string            `json:"scrapePool"`
	Health     string            `json:"health"`
	LastError  string            `json:"lastError"`
}

// targets returns Prometheus's targets; none while it is not answering
// yet.
func (p *prom) targets() (active, dropped []promTarget) {
	var d struct {
		Active  []promTarget `json:"activeTargets"`
		Dropped []promTarget `json:"droppedTargets"`
	}
	p.get("/api/v1/targets", nil, &d)
	return d.Active, d.Dropped
}

type promAlert struct {
	Labels map[string]string `json:"labels"`
	State  string            `json:"state"`
}

func (p *prom) alerts() []promAlert {
	var d struct {
		Alerts []promAlert `json:"alerts"`
	}
	p.mustGet("/api/v1/alerts", nil, &d)
	return d.Alerts
}

// waitFor polls cond every 100 ms until it holds or limit passes.
func (p *prom) waitFor(what string, limit time.Duration, cond func() bool) time.Duration {
	p.t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			p.t.Fatalf("not %s within %v", what, limit)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return time.Since(start)
}

// promConfig writes the shipped prometheus.yml with the test's intervals
// and the rules with short for: durations, and returns its path.
func promConfig(t *testing.T, dir string) string {
	t.Helper()
	var cfg map[string]any
	readYAMLFile(t, "internal/web/prometheus/prometheus.yml", &cfg)
	cfg["global"] = map[string]any{
		"scrape_interval":     scrapeInterval.String(),
		"scrape_timeout":      "1s",
		"evaluation_interval": evalInterval.String(),
	}
	var rules map[string]any
	readYAMLFile(t, "internal/web/prometheus/alerts.yml", &rules)
	for _, g := range rules["groups"].([]any) {
		for _, r := range g.(map[string]any)["rules"].([]any) {
			r.(map[string]any)["for"] = ruleFor.String()
		}
	}
	rulesPath := filepath.Join(dir, "alerts.yml")
	writeYAMLFile(t, rulesPath, rules)
	if files := cfg["rule_files"].([]any); len(files) != 1 || files[0] != "/usr/share/headnode/prometheus/alerts.yml" {
		t.Fatalf("prometheus.yml loads %v", files)
	}
	cfg["rule_files"] = []any{rulesPath}
	for _, sc := range cfg["scrape_configs"].([]any) {
		sds, _ := sc.(map[string]any)["http_sd_configs"].([]any)
		for _, sd := range sds {
			sd.(map[string]any)["refresh_interval"] = "1s"
		}
	}
	path := filepath.Join(dir, "prometheus.yml")
	writeYAMLFile(t, path, cfg)
	return path
}

func readYAMLFile(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func writeYAMLFile(t *testing.T, path string, v any) {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// nodeExporter runs Debian's prometheus-node-exporter in ns with the
// collectors the dashboard uses.
func nodeExporter(t *testing.T, ns *sandbox.NS) {
	background(t, ns, "prometheus-node-exporter", "--web.listen-address=:9100", "--collector.disable-defaults",
		"--collector.cpu", "--collector.meminfo", "--collector.loadavg", "--collector.netdev", "--collector.filesystem", "--collector.stat")
}

func TestE2EPrometheus(t *testing.T) {
	c := newCluster(t, 2)
	for _, ns := range append([]*sandbox.NS{c.head}, c.nodes...) {
		nodeExporter(t, ns)
	}
	d := c.startDaemon(t, c.config(t, ""))
	c.followPower(t, d)
	c.powerOn(t, d, "p1", "p2")

	dir := t.TempDir()
	background(t, c.head, "prometheus", "--config.file="+promConfig(t, dir), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+promAddr, "--log.level=warn")
	p := newProm(t, c.head)

	// Every target up: headnode itself, and node_exporter on the head and
	// on p1 and p2, found through the service discovery. p3 and p4 are
	// off: discovered, and dropped by the shipped relabeling.
	host, _ := os.Hostname()
	wantUp := map[string]string{"127.0.0.1:9180": "headnode", "192.168.50.1:9100": host, "192.168.50.11:9100": "p1", "192.168.50.12:9100": "p2"}
	var active, dropped []promTarget
	took := p.waitFor("all targets up", 30*time.Second, func() bool {
		active, dropped = p.targets()
		up := 0
		for _, tg := range active {
			if _, ok := wantUp[tg.Labels["instance"]]; ok && tg.Health == "up" {
				up++
			}
		}
		return up == len(wantUp) && len(active) == len(wantUp)
	})
	t.Logf("Prometheus has all %d targets up %v after it started", len(wantUp), took.Round(100*time.Millisecond))
	for _, tg := range active {
		name := wantUp[tg.Labels["instance"]]
		switch {
		case tg.ScrapePool == "headnode":
		case tg.Labels["node"] != name || tg.Labels["head"] != host:
			t.Errorf("target %s: labels %v, want node=%s head=%s", tg.Labels["instance"], tg.Labels, name, host)
		case name == "p1" && (tg.Labels["board"] != "ClusterHAT v2.5" || tg.Labels["slot"] != "1" || tg.Labels["role"] != "node"):
			t.Errorf("p1's labels %v, want board, slot 1, role node", tg.Labels)
		case name == host && tg.Labels["role"] != "head":
			t.Errorf("the head's labels %v", tg.Labels)
		}
		if _, ok := tg.Labels["__meta_headnode_power"]; ok {
			t.Errorf("a __meta_ label became a target label: %v", tg.Labels)
		}
	}
	var droppedNodes []string
	for _, tg := range dropped {
		if tg.Discovered["__meta_headnode_power"] == "off" {
			droppedNodes = append(droppedNodes, tg.Discovered["node"])
		}
	}
	if slices.Sort(droppedNodes); !slices.Equal(droppedNodes, []string{"p3", "p4"}) {
		t.Errorf("dropped targets of powered-off nodes: %v, want p3 p4", droppedNodes)
	}

	// Enough scrapes of every target for rate() over the dashboard's
	// interval.
	time.Sleep(3 * scrapeInterval)
	checkDashboard(t, p)
	checkRulesLoaded(t, p)
	if a := p.alerts(); len(a) != 0 {
		t.Fatalf("alerts in a healthy cluster: %+v", a)
	}

	// p1 stops answering: the unreachable alert fires within its for:
	// plus two scrape intervals.
	silenced := time.Now()
	silence(t, c.nodes[0])
	_, seen := d.waitFor(t, "p1 unreachable", func(s *api.Status) bool { return nodeOf(s, "p1").State == api.NodeUnreachable })
	firing := func() bool {
		for _, a := range p.alerts() {
			if a.Labels["alertname"] == "HeadnodeNodeUnreachable" && a.Labels["node"] == "p1" && a.State == "firing" {
				return true
			}
		}
		return false
	}
	bound := ruleFor + 2*scrapeInterval
	fired := p.waitFor("HeadnodeNodeUnreachable firing for p1", 3*bound, firing)
	t.Logf("p1 silenced: headnode reported it unreachable after %v, the alert fired after %v (for: %v, scrape interval %v, bound %v)",
		seen.Sub(silenced).Round(10*time.Millisecond), fired.Round(10*time.Millisecond), ruleFor, scrapeInterval, bound)
	if fired > bound {
		t.Errorf("the alert fired %v after p1 stopped answering; want within for: + 2 scrape intervals = %v", fired, bound)
	}
	for _, a := range p.alerts() {
		if a.Labels["node"] != "p1" || a.Labels["alertname"] != "HeadnodeNodeUnreachable" {
			t.Errorf("another alert with p1 silenced: %v", a)
		}
	}
	heal(t, c.nodes[0])
	d.waitFor(t, "p1 up again", func(s *api.Status) bool { return nodeOf(s, "p1").State == api.NodeUp })
	p.waitFor("no alerts once p1 answers again", 3*bound, func() bool { return len(p.alerts()) == 0 })

	// p2 powered off on request: it leaves the network and nothing fires,
	// pending included, for longer than it would take to fire.
	if _, errOut, code := run(t, nil, "off", "p2", "--socket", c.sock); code != 0 {
		t.Fatalf("off p2: %s", errOut)
	}
	d.waitFor(t, "p2 off", func(s *api.Status) bool { return nodeOf(s, "p2").State == api.NodeOff })
	for end := time.Now().Add(bound + 2*time.Second); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
		if a := p.alerts(); len(a) != 0 {
			t.Fatalf("alerts after p2 was powered off on request: %+v", a)
		}
	}
	active, _ = p.targets()
	for _, tg := range active {
		if tg.Labels["node"] == "p2" {
			t.Errorf("p2 is still scraped after it was powered off: %+v", tg)
		}
	}
}

// checkDashboard runs every query of the shipped dashboard on Prometheus:
// each must run without error or warning, name only metrics Prometheus
// has, and return data; each variable must find values.
func checkDashboard(t *testing.T, p *prom) {
	t.Helper()
	var names []string
	p.mustGet("/api/v1/label/__name__/values", nil, &names)
	known := map[string]bool{}
	for _, n := range names {
		known[n] = true
	}
	qs, err := grafana.Queries(grafana.Dashboard())
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		expr := grafana.Substitute(q.Expr, (4 * scrapeInterval).String())
		sel, label, isVariable := grafana.VariableQuery(expr)
		if isVariable {
			expr = sel
		}
		for _, m := range grafana.MetricNames(expr) {
			if !known[m] {
				t.Errorf("panel %q: %q names %s, which this Prometheus does not have", q.Panel, q.Expr, m)
			}
		}
		if isVariable {
			var values []string
			p.mustGet("/api/v1/label/"+label+"/values", url.Values{"match[]": {sel}}, &values)
			if len(values) == 0 {
				t.Errorf("%s: %q finds no values", q.Panel, q.Expr)
			}
			continue
		}
		var res struct {
			Result []json.RawMessage `json:"result"`
		}
		warnings, e := p.get("/api/v1/query", url.Values{"query": {expr}}, &res)
		switch {
		case e != "":
			t.Errorf("panel %q: %q: %s", q.Panel, expr, e)
		case len(warnings) > 0:
			t.Errorf("panel %q: %q: warnings %v", q.Panel, expr, warnings)
		case len(res.Result) == 0:
			t.Errorf("panel %q: %q returns nothing", q.Panel, expr)
		}
	}
	t.Logf("%d dashboard queries ran on Prometheus", len(qs))
}

// checkRulesLoaded: Prometheus loaded every alert of the shipped file and
// evaluates each without error.
func checkRulesLoaded(t *testing.T, p *prom) {
	t.Helper()
	var d struct {
		Groups []struct {
			Rules []struct {
				Name      string            `json:"name"`
				Health    string            `json:"health"`
				LastError string            `json:"lastError"`
				Duration  float64           `json:"duration"`
				Labels    map[string]string `json:"labels"`
			} `json:"rules"`
		} `json:"groups"`
	}
	p.mustGet("/api/v1/rules", url.Values{"type": {"alert"}}, &d)
	n := 0
	for _, g := range d.Groups {
		for _, r := range g.Rules {
			n++
			if r.Health != "ok" || r.LastError != "" || r.Duration != ruleFor.Seconds() || r.Labels["severity"] == "" {
				t.Errorf("rule %s: health %q, error %q, for %vs, labels %v", r.Name, r.Health, r.LastError, r.Duration, r.Labels)
			}
		}
	}
	if n < 10 {
		t.Errorf("Prometheus loaded %d alert rules", n)
	}
	t.Logf("%d alert rules loaded and evaluated without error", n)
}
