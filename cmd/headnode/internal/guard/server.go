package guard

import (
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// HTTPLimits are the limits of one HTTP server: its connections, the size
// and time of its requests, the time of its answers.
type HTTPLimits struct {
	Conns ConnLimits
	Body  BodyLimits
	// Header caps the request line and headers (net/http allows 4 KiB
	// more for its buffer).
	Header int
	// HeaderTime bounds sending the headers; Read the whole request (0:
	// none, for servers whose requests may stream); Write the answer (0:
	// none); Idle how long a kept-alive connection may wait for its next
	// request.
	HeaderTime, Read, Write, Idle time.Duration
}

// Server returns a server for h within lim, and the listener (l with its
// connections capped) to serve it on.
func (lim HTTPLimits) Server(l net.Listener, h http.Handler) (*Listener, *http.Server) {
	return Listen(l, lim.Conns), &http.Server{
		Handler:           Bodies(h, lim.Body),
		MaxHeaderBytes:    lim.Header,
		ReadHeaderTimeout: lim.HeaderTime,
		ReadTimeout:       lim.Read,
		WriteTimeout:      lim.Write,
		IdleTimeout:       lim.Idle,
	}
}

// StatusPage are the limits of a read-only status listener, which every
// node on the cluster side can reach. Its legitimate clients are a browser
// (six connections at most), Prometheus (one scrape every few seconds) and
// scripts polling the health check; everything they ask for is a GET of a
// few kilobytes.
var StatusPage = HTTPLimits{
	Conns:      ConnLimits{Total: 64, PerClient: 16, Client: TCPClient},
	Body:       BodyLimits{Max: 4 << 10, Timeout: 5 * time.Second},
	Header:     8 << 10,
	HeaderTime: 5 * time.Second,
	Read:       10 * time.Second,
	Write:      30 * time.Second,
	Idle:       30 * time.Second,
}

// StatusPageRate is the request rate of one client of the status page:
// a page, its metrics and a health check a second, many times over.
var StatusPageRate = RateLimits{PerSecond: 20, Burst: 40, MaxWait: 500 * time.Millisecond}

// LocalNames accepts the names this machine goes by: localhost, its host
// name (as it is now: it may change while the daemon runs), the host
// name's first label and NAME.local (mDNS, how a Raspberry Pi is usually
// reached), and those extra returns (lower case, without a trailing dot).
func LocalNames(extra func() []string) func(name string) bool {
	return func(name string) bool {
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
		if extra != nil {
			for _, e := range extra() {
				if name == e {
					return true
				}
			}
		}
		return false
	}
}
