package daemon

import (
	"context"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
	"github.com/headnode/headnode/cmd/headnode/internal/config"
	"github.com/headnode/headnode/netcfg/dhcpd"
	"github.com/headnode/headnode/netcfg/dnsd"
	"github.com/headnode/headnode/power/nodename"
)

// The dns part: the nodes' DNS server. Its local names are derived from
// the state on every event (nodes, leases, static leases, the head), so a
// new lease or a changed node address is answered as soon as the loop has
// seen it; its upstreams follow the uplink's resolvers.

// dnsState is the dns part of the state (loop goroutine only).
type dnsState struct {
	// head is the head's own name and address, records and target what
	// was last handed to the server, uplink the uplink address it last
	// followed.
	head       dnsd.Record
	records    []dnsd.Record
	target     dnsd.Target
	targetSent bool
	uplink     string
}

type dnsHandles struct {
	svc atomic.Pointer[dnsd.Service]
}

func dnsChanged(old, new *config.Config) bool {
	return !reflect.DeepEqual(old.DNS, new.DNS) || old.DNSOn() != new.DNSOn() || old.Network != new.Network ||
		!slices.Equal(old.DHCP.FallbackDNS, new.DHCP.FallbackDNS)
}

func (d *Daemon) startDNS(parent context.Context, cfg *config.Config) (stop func()) {
	ctx, cancel := context.WithCancel(parent)
	var wg sync.WaitGroup
	log := d.log.With("part", "dns")
	off := func(reason string) {
		d.send(ctx, func(st *state) { st.dns = dnsState{}; st.status.DNS = api.DNS{State: api.DNSOff, Reason: reason} })
	}
	head, _ := cfg.Network.ClusterPrefix()
	switch {
	case !cfg.DNS.Enabled:
		off("disabled in the configuration ([dns] enabled = false)")
	case !cfg.DHCP.Enabled:
		off("off with the DHCP server ([dhcp] enabled = false), which would tell the nodes of it")
	case !cfg.DNSOn():
		off("network.cluster_address is empty, so the cluster subnet is not headnode's")
	default:
		srv, err := dnsd.New(dnsd.Options{Domain: cfg.DNS.Domain, Subnet: head.Masked(), Rate: float64(cfg.DNS.Rate), CacheSize: max(cfg.DNS.CacheSize, 1), Log: log})
		if err != nil { // validated at load; kept as a state, not a panic
			msg := err.Error()
			d.send(ctx, func(st *state) { st.status.DNS = api.DNS{State: api.DNSFailed, Reason: msg} })
			break
		}
		lo, _ := netip.ParseAddr(cfg.DNS.Loopback)
		svc := dnsd.NewService(srv, dnsd.ServiceOptions{
			Interface: cfg.Network.ClusterInterface,
			Address:   head.Addr(),
			Loopback:  lo,
			Upstreams: upstreamSource(cfg, head.Addr()),
			Log:       log,
			Report: func(s dnsd.Status) {
				v := dnsView(s)
				d.send(ctx, func(st *state) { st.status.DNS = v })
			},
		})
		rec := dnsd.Record{Addr: head.Addr()}
		if h, err := os.Hostname(); err == nil {
			rec.Name, _, _ = strings.Cut(h, ".")
		}
		d.send(ctx, func(st *state) {
			st.dns = dnsState{head: rec}
			st.status.DNS = api.DNS{State: api.DNSWaiting, Domain: srv.Domain()}
		})
		d.dns.svc.Store(svc)
		wg.Go(func() { svc.Run(ctx) })
		// Hand the current state to what just started.
		d.send(ctx, func(st *state) { d.dnsSync(st) })
	}
	return func() {
		cancel()
		wg.Wait()
		d.dns.svc.Store(nil)
	}
}

// upstreamSource returns what the server calls for its upstreams: [dns]
// upstreams, else the uplink's resolvers as the resolv.conf files list
// them, else [dhcp] fallback_dns; never the head's own cluster address
// (that would be a loop).
func upstreamSource(cfg *config.Config, head netip.Addr) func() []netip.AddrPort {
	var fixed []netip.AddrPort
	for _, s := range cfg.DNS.Upstreams {
		if ap, err := config.ParseUpstream(s); err == nil {
			fixed = append(fixed, ap)
		}
	}
	if len(fixed) > 0 {
		return func() []netip.AddrPort { return fixed }
	}
	var fallback []netip.Addr
	for _, s := range cfg.DHCP.FallbackDNS {
		if a, err := netip.ParseAddr(s); err == nil {
			fallback = append(fallback, a)
		}
	}
	src := dhcpd.DNSSource{ResolvConf: slices.Clip(append([]string{}, cfg.DNS.ResolvConf...)), Fallback: fallback, ServesDNS: func(netip.Addr) bool { return false }}
	// Asked every second (dnsd's UpstreamRefresh): the files are read
	// again only when their stamp changed.
	var stamp string
	var last []netip.AddrPort
	return func() []netip.AddrPort {
		st := src.Stamp()
		if last != nil && st == stamp {
			return slices.Clone(last)
		}
		stamp = st
		var out []netip.AddrPort
		for _, a := range src.Resolvers() {
			if a != head {
				out = append(out, netip.AddrPortFrom(a, 53))
			}
		}
		last = append([]netip.AddrPort{}, out...)
		return out
	}
}

func dnsView(s dnsd.Status) api.DNS {
	v := api.DNS{
		State: s.State, Reason: s.Reason, Domain: s.Domain, Listening: s.Listening,
		Records: s.Stats.Records, Queries: s.Stats.Queries, UpstreamErrors: s.Stats.UpstreamErrors,
		Cache: api.DNSCache{Entries: s.Stats.Cache.Entries, Capacity: s.Stats.Cache.Capacity, Hits: s.Stats.Cache.Hits, Misses: s.Stats.Cache.Misses},
	}
	for _, u := range s.Upstreams {
		v.Upstreams = append(v.Upstreams, u.String())
	}
	return v
}

// dnsSync runs on the loop after every event: it hands the server the
// cluster interface, the local names derived from the state, and a nudge
// to re-read its upstreams when the uplink's address changed. Unchanged,
// it costs a comparison.
func (d *Daemon) dnsSync(st *state) {
	svc := d.dns.svc.Load()
	if svc == nil {
		return
	}
	name := st.cfg.Network.ClusterInterface
	head, _ := st.cfg.Network.ClusterPrefix()
	l := st.net.links[name]
	t := dnsd.Target{Index: l.Index, HasAddress: l.Exists && slices.Contains(l.IPv4, head)}
	if !l.Exists {
		t.Index = 0
	}
	if !st.dns.targetSent || t != st.dns.target {
		svc.SetTarget(t)
		st.dns.target, st.dns.targetSent = t, true
	}
	if recs := dnsRecords(st); !slices.Equal(recs, st.dns.records) {
		st.dns.records = recs
		svc.SetRecords(recs)
	}
	if up := st.status.Uplink.Address; up != st.dns.uplink {
		st.dns.uplink = up
		svc.Refresh()
	}
}

// dnsRecords are the local names, first claim first: the head, the nodes
// (their [[nodes]] or default addresses), static leases with a name, then
// leases whose client sent a host name. A machine calling itself p1 thus
// never takes p1's name.
func dnsRecords(st *state) []dnsd.Record {
	var recs []dnsd.Record
	add := func(name string, a netip.Addr) {
		if dnsd.ValidLabel(name) && a.Is4() {
			recs = append(recs, dnsd.Record{Name: name, Addr: a})
		}
	}
	add(st.dns.head.Name, st.dns.head.Addr)
	cfg := st.cfg
	for _, n := range st.status.Power.Nodes {
		if a, err := netip.ParseAddr(n.Address); err == nil {
			add(n.Name, a)
		}
	}
	for _, nd := range cfg.Nodes {
		if n, err := nodename.Parse(nd.Name); err == nil {
			if a, ok := cfg.NodeAddress(n); ok {
				add(nd.Name, a)
			}
		}
	}
	for _, s := range cfg.DHCP.Static {
		if s.Name == "" {
			continue
		}
		if a, err := netip.ParseAddr(s.Address); err == nil {
			add(s.Name, a)
		} else if n, err := nodename.Parse(s.Name); err == nil {
			if a, ok := cfg.NodeAddress(n); ok {
				add(s.Name, a)
			}
		}
	}
	for _, l := range st.status.DHCP.Leases {
		if l.Hostname == "" || l.Offered {
			continue
		}
		if a, err := netip.ParseAddr(l.Address); err == nil {
			add(l.Hostname, a)
		}
	}
	return recs
}

func (st *state) dnsHealth(h *health) {
	if v := st.status.DNS; v.State == api.DNSFailed {
		h.degrade("DNS server not running: " + v.Reason)
	}
}
