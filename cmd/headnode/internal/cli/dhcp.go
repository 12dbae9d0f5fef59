package cli

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
)

// statusLeases is how many leases `headnode status` lists: a thousand-node
// cluster's would bury the rest.
const statusLeases = 64

// printDHCP adds the DHCP server, its leases and the ClusterHAT bridge to
// `headnode status` (w is the status's tabwriter).
func printDHCP(w io.Writer, s *api.Status, now time.Time) {
	d := s.DHCP
	line := d.State
	switch d.State {
	case api.DHCPServing:
		line = fmt.Sprintf("serving on %s, pool %s, %d lease%s", d.Interface, d.Pool, len(d.Leases), dhcpPlural(len(d.Leases)))
		if d.OtherServer != "" {
			line += fmt.Sprintf("; another DHCP server (%s) also answers", d.OtherServer)
		}
	default:
		if d.Reason != "" {
			line += ": " + d.Reason
		}
	}
	if n := dropped(d.Packets); n != "" {
		line += "; " + n
	}
	if d.SaveError != "" {
		line += "; leases not saved: " + d.SaveError
	}
	fmt.Fprintf(w, "DHCP\t%s\n", line)
	for i, l := range d.Leases {
		if i == statusLeases {
			fmt.Fprintf(w, "\t... and %d more (headnode status --json lists them all)\n", len(d.Leases)-i)
			break
		}
		name := l.Hostname
		if name == "" {
			name = "-"
		}
		until := "expires in " + leaseLeft(l.Expires.Sub(now))
		if l.Offered {
			until = "offered"
		}
		fmt.Fprintf(w, "\t%s\t%s\t%s\t%s\n", l.Address, name, l.MAC, until)
	}
	printDNS(w, s.DNS)
	if b := s.Bridge; b != nil {
		var ports []string
		for _, p := range b.Ports {
			if p.Node != "" {
				ports = append(ports, fmt.Sprintf("%s (%s)", p.Interface, p.Node))
			} else {
				ports = append(ports, p.Interface)
			}
		}
		line := b.Name + ": "
		switch {
		case !b.Exists:
			line += "missing"
		case len(ports) == 0:
			line += "no nodes yet"
		default:
			line += strings.Join(ports, ", ")
		}
		if b.Error != "" {
			line += "; " + b.Error
		}
		fmt.Fprintf(w, "bridge\t%s\n", line)
	}
}

func dropped(p api.DHCPPackets) string {
	total := int64(0)
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(p.Dropped)) {
		total += p.Dropped[k]
		parts = append(parts, fmt.Sprintf("%s %d", k, p.Dropped[k]))
	}
	if total == 0 {
		return ""
	}
	return fmt.Sprintf("dropped %d packet%s (%s)", total, dhcpPlural(int(total)), strings.Join(parts, ", "))
}

func dhcpPlural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// leaseLeft says how long a lease has left: "59m", "2h5m", "40s".
func leaseLeft(d time.Duration) string {
	switch {
	case d < time.Minute:
		return d.Truncate(time.Second).String()
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	}
	return fmt.Sprintf("%dh%dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
}

// printDNS adds the DNS server: state, domain, upstreams, cache, queries.
func printDNS(w io.Writer, d api.DNS) {
	line := d.State
	if d.Reason != "" {
		line += ": " + d.Reason
	}
	if d.State == api.DNSOff || d.State == "" {
		fmt.Fprintf(w, "DNS\t%s\n", line)
		return
	}
	if d.State == api.DNSServing {
		line = "serving on " + strings.Join(d.Listening, ", ")
	}
	line += fmt.Sprintf(", %d local name%s in %s", d.Records, dhcpPlural(d.Records), d.Domain)
	fmt.Fprintf(w, "DNS\t%s\n", line)
	up := "none known (queries for other names get SERVFAIL)"
	if len(d.Upstreams) > 0 {
		up = strings.Join(d.Upstreams, ", ")
	}
	if d.UpstreamErrors > 0 {
		up += fmt.Sprintf("; %d upstream error%s", d.UpstreamErrors, dhcpPlural(int(d.UpstreamErrors)))
	}
	fmt.Fprintf(w, "\tforwards to %s\n", up)
	fmt.Fprintf(w, "\tcache %d/%d, %d hit%s, %d miss%s\n", d.Cache.Entries, d.Cache.Capacity, d.Cache.Hits, dhcpPlural(int(d.Cache.Hits)), d.Cache.Misses, map[bool]string{true: "", false: "es"}[d.Cache.Misses == 1])
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(d.Queries)) {
		if n := d.Queries[k]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, n))
		}
	}
	if len(parts) == 0 {
		parts = []string{"none yet"}
	}
	fmt.Fprintf(w, "\tqueries: %s\n", strings.Join(parts, ", "))
}
