package web

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/headnode/headnode/cmd/headnode/internal/web/grafana"
)

func promtool(t *testing.T, dir string, args ...string) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not installed (Debian package prometheus): %v", err)
	}
	cmd := exec.Command(p, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// The shipped alert rules pass promtool's checks and unit tests, every
// alert has a for:, a severity and a summary and description, and every
// alert is shown firing by at least one unit test.
func TestAlertRules(t *testing.T) {
	dir := "prometheus"
	promtool(t, dir, "check", "rules", "alerts.yml")
	out := promtool(t, dir, "test", "rules", "alerts_test.yml")
	t.Logf("promtool test rules: %s", strings.TrimSpace(out))

	var rules ruleFile
	readYAML(t, filepath.Join(dir, "alerts.yml"), &rules)
	var alerts []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			if r.For == "" || r.For == "0s" || r.For == "0m" {
				t.Errorf("%s has no for:", r.Alert)
			}
			if !slices.Contains([]string{"critical", "warning", "info"}, r.Labels["severity"]) {
				t.Errorf("%s: severity %q, want critical, warning or info", r.Alert, r.Labels["severity"])
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s lacks a summary or description", r.Alert)
			}
		}
	}
	if len(alerts) < 10 {
		t.Errorf("only %d alerts: %v", len(alerts), alerts)
	}
	var tests struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	readYAML(t, filepath.Join(dir, "alerts_test.yml"), &tests)
	fires := map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			}
		}
	}
	for _, a := range alerts {
		if !fires[a] {
			t.Errorf("no unit test in alerts_test.yml shows %s firing", a)
		}
	}
}

// The example configuration is valid for Prometheus and loads the rules
// (checked with the rules where the repository has them).
func TestPrometheusConfig(t *testing.T) {
	b, err := os.ReadFile("prometheus/prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	const installed = "/usr/share/headnode/prometheus/alerts.yml"
	if !bytes.Contains(b, []byte(installed)) || !bytes.Contains(b, []byte(TargetsPath)) {
		t.Fatalf("prometheus.yml does not load %s or discover through %s", installed, TargetsPath)
	}
	abs, _ := filepath.Abs("prometheus/alerts.yml")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), bytes.ReplaceAll(b, []byte(installed), []byte(abs)), 0o644); err != nil {
		t.Fatal(err)
	}
	promtool(t, dir, "check", "config", "prometheus.yml")
}

// Every headnode_ metric the dashboard and the rules query is one that
// /metrics serves (the end-to-end test runs every query on a real
// Prometheus, node_exporter's metrics included).
func TestQueriedMetricsExist(t *testing.T) {
	served := map[string]bool{}
	for _, line := range strings.Split(scrape(t, sampleStatus), "\n") {
		if name, ok := strings.CutPrefix(line, "# TYPE "); ok {
			served[strings.Fields(name)[0]] = true
		}
	}
	qs, err := grafana.Queries(grafana.Dashboard())
	if err != nil {
		t.Fatal(err)
	}
	var rules ruleFile
	readYAML(t, "prometheus/alerts.yml", &rules)
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			qs = append(qs, grafana.Query{Panel: "alert " + r.Alert, Expr: r.Expr})
		}
	}
	for _, q := range qs {
		for _, m := range grafana.MetricNames(grafana.Substitute(q.Expr, "1m")) {
			if strings.HasPrefix(m, "headnode_") && !served[m] {
				t.Errorf("%s queries %s, which /metrics does not serve", q.Panel, m)
			}
		}
	}
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
