package guard

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
)

// Hosts answers a request only when its Host names the server: an IP
// address, or a name allowed says is one of the server's. Anything else
// gets 421 Misdirected Request. An address in Host is always accepted: a
// browser sends the name it resolved, so a DNS rebinding attack (a page
// from evil.example whose name is re-pointed at 127.0.0.1, reading the
// answer as its own origin's) always shows as a name; a page whose origin
// is the address itself may read from it anyway.
type Hosts struct {
	allowed func(name string) bool
	hint    string
	refused atomic.Int64
}

// NewHosts returns the check; allowed gets names lower-cased, without a
// port or a trailing dot. hint ends the refusal, saying how to allow a
// name.
func NewHosts(allowed func(name string) bool, hint string) *Hosts {
	return &Hosts{allowed: allowed, hint: hint}
}

// Refused counts requests refused for their Host.
func (hs *Hosts) Refused() int64 { return hs.refused.Load() }

// Wrap applies the check in front of h.
func (hs *Hosts) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !hs.ok(r.Host) {
			hs.refused.Add(1)
			http.Error(w, fmt.Sprintf("Host %q is not a name of this server; %s", r.Host, hs.hint), http.StatusMisdirectedRequest)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (hs *Hosts) ok(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if host == "" {
		return false // HTTP/1.0 without Host: no browser sends that
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	return hs.allowed(host)
}
