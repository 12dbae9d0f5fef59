package daemon

import (
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/headnode/headnode/cmd/headnode/internal/config"
	"github.com/headnode/headnode/cmd/headnode/internal/guard"
)

// limitCounters count what the listeners' limits refused, for /metrics.
// They live as long as the daemon: the listeners come and go with reloads.
type limitCounters struct {
	controlRefused, httpRefused atomic.Int64
	rate                        *guard.Rate
	hosts                       *guard.Hosts
	// httpHosts are the names (beside addresses) the HTTP listener
	// answers to, set by startHTTP from [http] hosts.
	httpHosts atomic.Pointer[[]string]
}

func (d *Daemon) initLimits() {
	d.limits.rate = guard.NewRate(guard.StatusPageRate)
	d.limits.hosts = guard.NewHosts(guard.LocalNames(d.httpHosts), "the status page answers to this machine's addresses, localhost and its host name (also NAME.local); add other names to [http] hosts")
}

// httpHosts are the names of [http] hosts.
func (d *Daemon) httpHosts() []string {
	if p := d.limits.httpHosts.Load(); p != nil {
		return *p
	}
	return nil
}

// setHTTPHosts takes [http] hosts for the Host check, and the head's
// names in its own DNS server's domain while that runs, so that
// http://pi.cluster.home.arpa:9180/ works from the nodes.
func (d *Daemon) setHTTPHosts(cfg *config.Config) {
	hosts := make([]string, 0, len(cfg.HTTP.Hosts)+1)
	for _, h := range cfg.HTTP.Hosts {
		hosts = append(hosts, strings.TrimSuffix(strings.ToLower(h), "."))
	}
	if cfg.DNSOn() {
		if h, err := os.Hostname(); err == nil {
			label, _, _ := strings.Cut(strings.ToLower(h), ".")
			hosts = append(hosts, label+"."+strings.ToLower(strings.TrimSuffix(cfg.DNS.Domain, ".")))
		}
	}
	d.limits.httpHosts.Store(&hosts)
}

// guardHTTP puts the status page's limits around l and h: those of every
// status listener, with one rate limit and Host check for all of them.
func (d *Daemon) guardHTTP(l net.Listener, h http.Handler) (net.Listener, *http.Server) {
	lim := guard.StatusPage
	lim.Conns.Refused = &d.limits.httpRefused
	return lim.Server(l, d.limits.hosts.Wrap(d.limits.rate.Wrap(h)))
}

var (
	refusedConnsDesc = prometheus.NewDesc("headnode_listener_connections_refused_total",
		"Connections closed at once for being over a listener's cap (in all or per client).", []string{"listener"}, nil)
	refusedRequestsDesc = prometheus.NewDesc("headnode_http_requests_refused_total",
		"Requests to the read-only listener refused: over a client's rate (rate) or for a Host that is not the head's (host).", []string{"reason"}, nil)
)

// limitMetrics makes the counters Prometheus metrics.
type limitMetrics struct{ c *limitCounters }

func (limitMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- refusedConnsDesc
	ch <- refusedRequestsDesc
}

func (m limitMetrics) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(refusedConnsDesc, prometheus.CounterValue, float64(m.c.controlRefused.Load()), "control")
	ch <- prometheus.MustNewConstMetric(refusedConnsDesc, prometheus.CounterValue, float64(m.c.httpRefused.Load()), "http")
	ch <- prometheus.MustNewConstMetric(refusedRequestsDesc, prometheus.CounterValue, float64(m.c.rate.Refused()), "rate")
	ch <- prometheus.MustNewConstMetric(refusedRequestsDesc, prometheus.CounterValue, float64(m.c.hosts.Refused()), "host")
}
