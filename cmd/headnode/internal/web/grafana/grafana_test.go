package grafana

import (
	"slices"
	"testing"
)

func TestMetricNames(t *testing.T) {
	for expr, want := range map[string][]string{
		`up`: {"up"},
		`headnode_nat_rules_present{instance=~"$instance"}`:                                           {"headnode_nat_rules_present"},
		`1 - avg by (node) (rate(node_cpu_seconds_total{job="node", mode="idle"}[$__rate_interval]))`: {"node_cpu_seconds_total"},
		`sum(headnode_node_state{state="up"}) or vector(0)`:                                           {"headnode_node_state"},
		`headnode_dhcp_pool_leases / headnode_dhcp_pool_size > 0.9`:                                   {"headnode_dhcp_pool_leases", "headnode_dhcp_pool_size"},
		`a unless on (instance, job, node) b == 1`:                                                    {"a", "b"},
		`max without (family) (x{role="uplink"}) == 0 and on(instance) y`:                             {"x", "y"},
		`time() - node_boot_time_seconds offset 5m`:                                                   {"node_boot_time_seconds"},
		`sum by (kind) (rate(a_total{l="{not a metric}"}[1m:10s])) * on (i) group_left (n) b_info`:    {"a_total", "b_info"},
		`topk(3, x) or bottomk by (n) (2, y) or count_values("v", z)`:                                 {"x", "y", "z"},
		`x[5m] + 1e3 + 0x1F`: {"x"},
	} {
		if got := MetricNames(expr); !slices.Equal(got, want) {
			t.Errorf("MetricNames(%q) = %q, want %q", expr, got, want)
		}
	}
}

// The shipped dashboard: every panel has a query, every query a refId,
// and the variables can be read.
func TestQueries(t *testing.T) {
	qs, err := Queries(Dashboard())
	if err != nil {
		t.Fatal(err)
	}
	if len(qs) < 20 {
		t.Fatalf("only %d queries", len(qs))
	}
	vars := 0
	for _, q := range qs {
		if q.Expr == "" {
			t.Errorf("panel %q has an empty query", q.Panel)
		}
		if len(MetricNames(Substitute(q.Expr, "1m"))) == 0 {
			t.Errorf("panel %q: %q names no metric", q.Panel, q.Expr)
		}
		if sel, label, ok := VariableQuery(q.Expr); ok {
			vars++
			if sel == "" || label == "" {
				t.Errorf("variable query %q", q.Expr)
			}
		}
	}
	if vars != 2 {
		t.Errorf("%d variable queries, want 2 (instance, head)", vars)
	}
}
