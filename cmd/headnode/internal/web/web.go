// Package web serves the read-only network endpoints: the status page (HTML,
// or JSON for Accept: application/json), Prometheus metrics and a health
// check. Everything is derived from the daemon's published status at request
// time; nothing here can change state, which is why it may listen on the
// network.
package web

import (
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
)

//go:embed page.html
var pageFS embed.FS

var page = template.Must(template.New("page.html").Funcs(template.FuncMap{
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return time.Since(t).Round(time.Second).String() + " ago"
	},
	"since": func(t time.Time) string { return time.Since(t).Round(time.Second).String() },
	"join":  strings.Join,
	"deref": func(b *bool) bool { return b != nil && *b },
	// safeColor passes only "#rrggbb" into a style attribute.
	"safeColor": func(c string) template.CSS {
		if len(c) == 7 && c[0] == '#' && strings.Trim(c[1:], "0123456789abcdefABCDEF") == "" {
			return template.CSS(c)
		}
		return "transparent"
	},
	"plural": func(n int64, word string) string {
		if n == 1 {
			return "1 " + word
		}
		return fmt.Sprintf("%d %ss", n, word)
	},
}).ParseFS(pageFS, "page.html"))

// Handler serves /, /metrics and /healthz from the status that current
// returns (never nil). extra collectors add live counters that are not part
// of the status (bus traffic).
func Handler(current func() *api.Status, extra ...prometheus.Collector) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newCollector(current),
		&alertCollector{current: current},
	)
	reg.MustRegister(extra...)
	host, _ := os.Hostname()
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		s := current()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		// 200 while the cluster is served (degraded still forwards);
		// 503 when failed, starting or stopped, so a monitor alerts.
		code := http.StatusOK
		if s.Health.State != api.HealthOK && s.Health.State != api.HealthDegraded {
			code = http.StatusServiceUnavailable
		}
		w.WriteHeader(code)
		w.Write([]byte(s.Health.State))
		for _, r := range s.Health.Reasons {
			w.Write([]byte("\n" + r))
		}
		w.Write([]byte("\n"))
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		s := current()
		if wantsJSON(r) {
			w.Header().Set("Content-Type", "application/json")
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			enc.Encode(s)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		page.Execute(w, struct {
			Host     string
			NodeList nodeList
			Leases   []api.Lease
			*api.Status
		}{host, listNodes(s.Power.Nodes, r.URL.Query().Get("nodes")), s.DHCP.Leases[:min(len(s.DHCP.Leases), pageLeases)], s})
	})
	return mux
}

// pageNodes is how many nodes one page of the node table shows: a
// thousand-node cluster is summarised first, then listed in pages.
const pageNodes = 64

// pageLeases is how many DHCP leases the page lists; the JSON has all.
const pageLeases = 64

// nodeList is the page's view of the nodes: counts per state, the nodes
// that need attention, and one page of the table.
type nodeList struct {
	Total, Up, Booting, Unreachable, Off, Unknown int
	// Attention are the first nodes that are neither up nor off
	// (unreachable, booting, unknown); AttentionMore how many more.
	Attention     []string
	AttentionMore int
	Page          []api.Node
	// PageNo (from 1) of Pages; From and To number the first and last
	// node shown (from 1); Prev and Next are page numbers, 0 for none.
	PageNo, Pages, From, To, Prev, Next int
}

// attentionNames is how many nodes needing attention the page names.
const attentionNames = 32

// listNodes summarises nodes and cuts out page number query ("?nodes=3";
// anything else is the first page, a number past the end the last).
func listNodes(nodes []api.Node, query string) nodeList {
	l := nodeList{Total: len(nodes)}
	for _, n := range nodes {
		switch n.State {
		case api.NodeUp:
			l.Up++
		case api.NodeOff:
			l.Off++
		case api.NodeBooting:
			l.Booting++
		case api.NodeUnreachable:
			l.Unreachable++
		default:
			l.Unknown++
		}
		if n.State != api.NodeUp && n.State != api.NodeOff {
			if len(l.Attention) < attentionNames {
				l.Attention = append(l.Attention, n.Name)
			} else {
				l.AttentionMore++
			}
		}
	}
	l.Pages = max(1, (len(nodes)+pageNodes-1)/pageNodes)
	l.PageNo = 1
	if n, err := strconv.Atoi(query); err == nil && n > 1 {
		l.PageNo = min(n, l.Pages)
	}
	from := (l.PageNo - 1) * pageNodes
	to := min(from+pageNodes, len(nodes))
	l.Page, l.From, l.To = nodes[from:to], from+1, to
	if l.PageNo > 1 {
		l.Prev = l.PageNo - 1
	}
	if l.PageNo < l.Pages {
		l.Next = l.PageNo + 1
	}
	return l
}

// wantsJSON follows the Accept header: JSON when the client prefers it
// (curl -H 'Accept: application/json', scripts), HTML for browsers.
func wantsJSON(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt := strings.TrimSpace(strings.SplitN(part, ";", 2)[0])
		switch mt {
		case "application/json":
			return true
		case "text/html", "application/xhtml+xml":
			return false
		}
	}
	return r.URL.Query().Get("format") == "json"
}
