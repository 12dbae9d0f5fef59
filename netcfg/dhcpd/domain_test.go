package dhcpd

import (
	"net/netip"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// With a domain, offers and ACKs carry it as the domain name (15) and the
// search list (119), beside the head as resolver; without one, neither.
func TestDomainOptions(t *testing.T) {
	for _, domain := range []string{"cluster.home.arpa", ""} {
		f := newFixture(t, func(o *Options) { o.Domain = domain })
		f.s.SetDNS([]netip.Addr{head.Addr()})
		r := f.s.Handle(discover(macA).ToBytes())
		m, err := dhcpv4.FromBytes(r.Packet)
		if err != nil {
			t.Fatal(err)
		}
		search := ""
		if l := m.DomainSearch(); l != nil && len(l.Labels) == 1 {
			search = l.Labels[0]
		}
		if m.DomainName() != domain || search != domain || len(m.DNS()) != 1 || m.DNS()[0].String() != "192.168.50.1" {
			t.Errorf("domain %q: offer has domain %q, search %q (%v), dns %v", domain, m.DomainName(), search, m.DomainSearch(), m.DNS())
		}
	}
}
