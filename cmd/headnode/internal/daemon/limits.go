package daemon

import (
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/headnode/headnode/cmd/headnode/internal/config"
	"github.com/headnode/headnode/cmd/headnode/internal/guard"
)

// Limits of the read-only HTTP listener, which every node on the cluster
// side can reach. Its legitimate clients are a browser (six connections at
// most), Prometheus (one scrape every few seconds) and scripts polling the
// health check; everything they ask for is a GET of a few kilobytes.
var httpLimits = struct {
	conns  guard.ConnLimits
	body   guard.BodyLimits
	rate   guard.RateLimits
	header int
	// headerTime bounds sending the headers, read the whole request,
	// write the answer; idle is how long a kept-alive connection may wait
	// for its next request.
	headerTime, read, write, idle time.Duration
}{
	conns:      guard.ConnLimits{Total: 64, PerClient: 16, Client: guard.TCPClient},
	body:       guard.BodyLimits{Max: 4 << 10, Timeout: 5 * time.Second},
	rate:       guard.RateLimits{PerSecond: 20, Burst: 40, MaxWait: 500 * time.Millisecond},
	header:     8 << 10,
	headerTime: 5 * time.Second,
	read:       10 * time.Second,
	write:      30 * time.Second,
	idle:       30 * time.Second,
}

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
	d.limits.rate = guard.NewRate(httpLimits.rate)
	d.limits.hosts = guard.NewHosts(d.httpHostAllowed, "the status page answers to this machine's addresses, localhost and its host name (also NAME.local); add other names to [http] hosts")
}

// httpHostAllowed: localhost, this machine's host name (as it is now: it
// may change while the daemon runs), NAME.local (mDNS, how a Raspberry Pi
// is usually reached) and the names of [http] hosts.
func (d *Daemon) httpHostAllowed(name string) bool {
	if name == "localhost" {
		return true
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		h = strings.ToLower(h)
		short, _, _ := strings.Cut(h, ".")
		if name == h || name == short || name == short+".local" {
			return true
		}
	}
	if p := d.limits.httpHosts.Load(); p != nil {
		return slices.Contains(*p, name)
	}
	return false
}

// setHTTPHosts takes [http] hosts for the Host check.
func (d *Daemon) setHTTPHosts(cfg *config.Config) {
	hosts := make([]string, 0, len(cfg.HTTP.Hosts))
	for _, h := range cfg.HTTP.Hosts {
		hosts = append(hosts, strings.TrimSuffix(strings.ToLower(h), "."))
	}
	d.limits.httpHosts.Store(&hosts)
}

// guardHTTP puts the HTTP listener's limits around l and h.
func (d *Daemon) guardHTTP(l net.Listener, h http.Handler) (net.Listener, *http.Server) {
	lim := httpLimits
	lim.conns.Refused = &d.limits.httpRefused
	h = d.limits.hosts.Wrap(d.limits.rate.Wrap(guard.Bodies(h, lim.body)))
	return guard.Listen(l, lim.conns), &http.Server{
		Handler:           h,
		MaxHeaderBytes:    lim.header,
		ReadHeaderTimeout: lim.headerTime,
		ReadTimeout:       lim.read,
		WriteTimeout:      lim.write,
		IdleTimeout:       lim.idle,
	}
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
