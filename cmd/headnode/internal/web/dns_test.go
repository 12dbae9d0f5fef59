package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
)

// The DNS server's state on /metrics (queries by outcome, zeros too) and
// on the page.
func TestDNSOnMetricsAndPage(t *testing.T) {
	s := &api.Status{DNS: api.DNS{State: api.DNSServing, Domain: "cluster.home.arpa", Listening: []string{"192.168.50.1:53", "127.0.1.53:53"},
		Upstreams: []string{"10.99.0.1:53"}, Records: 5, Cache: api.DNSCache{Entries: 3, Capacity: 4096, Hits: 7, Misses: 3},
		Queries: map[string]int64{"local": 12, "upstream": 3, "cache": 7}, UpstreamErrors: 1}}
	metrics := scrape(t, func() *api.Status { return s })
	for _, want := range []string{
		`headnode_dns_state{state="serving"} 1`, `headnode_dns_state{state="failed"} 0`,
		`headnode_dns_queries_total{outcome="local"} 12`, `headnode_dns_queries_total{outcome="refused"} 0`,
		`headnode_dns_upstreams 1`, `headnode_dns_cache_entries 3`, `headnode_dns_local_names 5`, `headnode_dns_upstream_errors_total 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	srv := httptest.NewServer(Handler(func() *api.Status { return s }))
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/", nil)
	req.Header.Set("Accept", "text/html")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, want := range []string{"DNS · cluster.home.arpa", "192.168.50.1:53, 127.0.1.53:53", "10.99.0.1:53", "3/4096 · 7 hits, 3 misses", "local 12"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("page lacks %q", want)
		}
	}
}
