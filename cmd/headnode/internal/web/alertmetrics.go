package web

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
)

// alertCollector adds the metrics the shipped alert rules and dashboard
// need beyond metrics.go's, derived from the published status like the
// rest. Every series is present whenever its subject is, with 0 for
// "no", so that a rule or a panel never depends on a series' absence.
type alertCollector struct {
	current func() *api.Status
}

var (
	dhcpOtherServer = desc("dhcp_other_server", "1 while another DHCP server is seen on the cluster network (it answered the start-up probe, or a node took an address from it).")
	dhcpPoolSize    = desc("dhcp_pool_size", "Addresses in the DHCP pool for machines without a fixed address.")
	dhcpPoolLeases  = desc("dhcp_pool_leases", "Addresses of the DHCP pool leased or offered now.")
	linkHasAddress  = desc("link_address_present", "1 when the interface has an address of the family (ipv4; ipv6: global, past duplicate address detection).", "role", "interface", "family")
	nodeInfo        = desc("node_info", "A node, with the board and slot that power it and its address; always 1.", "node", "board", "slot", "address")
	nodeOffRequest  = desc("node_requested_off", "1 when the last power request for the node was off: it is meant to be down.", "node")
)

func (c *alertCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{dhcpOtherServer, dhcpPoolSize, dhcpPoolLeases, linkHasAddress, nodeInfo, nodeOffRequest} {
		ch <- d
	}
}

func (c *alertCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.current()
	gauge(ch, dhcpOtherServer, b2f(s.DHCP.OtherServer != "" || s.DHCP.State == api.DHCPOtherServer))
	if first, last, ok := poolRange(s.DHCP.Pool); ok {
		leased := 0
		for _, l := range s.DHCP.Leases {
			if a, err := netip.ParseAddr(l.Address); err == nil && !a.Less(first) && !last.Less(a) {
				leased++
			}
		}
		gauge(ch, dhcpPoolSize, float64(poolSize(first, last)))
		gauge(ch, dhcpPoolLeases, float64(leased))
	}
	for _, l := range []struct {
		role string
		link api.Link
	}{{"uplink", s.Uplink}, {"cluster", s.Cluster}} {
		gauge(ch, linkHasAddress, b2f(l.link.Address != ""), l.role, l.link.Interface, "ipv4")
		gauge(ch, linkHasAddress, b2f(len(l.link.IPv6) > 0), l.role, l.link.Interface, "ipv6")
	}
	for _, n := range s.Power.Nodes {
		board, slot, _ := boardSlot(s.Power.Boards, n.Name)
		slotText := ""
		if slot > 0 {
			slotText = strconv.Itoa(slot)
		}
		gauge(ch, nodeInfo, 1, n.Name, board, slotText, n.Address)
		gauge(ch, nodeOffRequest, b2f(n.Requested == "off"), n.Name)
	}
}

// poolRange parses the status's "first-last" pool.
func poolRange(pool string) (first, last netip.Addr, ok bool) {
	a, b, found := strings.Cut(pool, "-")
	first, err1 := netip.ParseAddr(a)
	last, err2 := netip.ParseAddr(b)
	if !found || err1 != nil || err2 != nil || !first.Is4() || !last.Is4() || last.Less(first) {
		return netip.Addr{}, netip.Addr{}, false
	}
	return first, last, true
}

func poolSize(first, last netip.Addr) uint32 {
	f, l := first.As4(), last.As4()
	u := func(b [4]byte) uint32 { return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) }
	return u(l) - u(f) + 1
}
