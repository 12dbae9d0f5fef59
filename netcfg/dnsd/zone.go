package dnsd

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// Record is one local name: a single DNS label (p1, nas, the head's host
// name) that answers A queries as LABEL.DOMAIN and as the bare label, and
// whose address answers PTR queries with LABEL.DOMAIN.
type Record struct {
	Name string
	Addr netip.Addr
}

// zone is an immutable snapshot of the local names, swapped whole.
type zone struct {
	domain  string // fully qualified, lower case: "cluster.home.arpa."
	reverse string // the cluster subnet's in-addr.arpa zone, fully qualified
	subnet  netip.Prefix
	byName  map[string]netip.Addr // lower-case label -> address
	byAddr  map[netip.Addr]string // address -> label as given
	records []Record
}

// ValidLabel reports whether s can be a local name: one DNS label of
// letters, digits and hyphens (RFC 1123 host name rules), at most 63
// bytes, not starting or ending with a hyphen.
func ValidLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// ValidDomain reports why d cannot be the local domain, or "" when it can:
// one or more labels, each a valid label, at most 200 bytes (room for a
// label in front within the 255-byte limit).
func ValidDomain(d string) string {
	d = strings.TrimSuffix(d, ".")
	if d == "" {
		return "the domain is empty"
	}
	if len(d) > 200 {
		return fmt.Sprintf("%d bytes is too long (at most 200)", len(d))
	}
	for l := range strings.SplitSeq(d, ".") {
		if !ValidLabel(l) {
			return fmt.Sprintf("%q is not a DNS label (letters, digits and '-', 1-63 bytes)", l)
		}
	}
	if strings.HasSuffix(strings.ToLower(d), "in-addr.arpa") || strings.HasSuffix(strings.ToLower(d), "ip6.arpa") {
		return "a reverse-lookup zone cannot be the local domain"
	}
	return ""
}

// ReverseZone returns the in-addr.arpa zone that holds the PTR records of
// subnet's addresses: the whole octets of its prefix (a /24 is
// 50.168.192.in-addr.arpa.; a /20 takes the /16 zone, in which only the
// subnet's own addresses are answered).
func ReverseZone(subnet netip.Prefix) string {
	b := subnet.Masked().Addr().As4()
	n := subnet.Bits() / 8
	parts := []string{}
	for i := n - 1; i >= 0; i-- {
		parts = append(parts, fmt.Sprint(b[i]))
	}
	return strings.Join(append(parts, "in-addr.arpa."), ".")
}

func newZone(domain string, subnet netip.Prefix, recs []Record) *zone {
	z := &zone{
		domain:  dns.Fqdn(strings.ToLower(domain)),
		reverse: ReverseZone(subnet),
		subnet:  subnet.Masked(),
		byName:  map[string]netip.Addr{},
		byAddr:  map[netip.Addr]string{},
	}
	// The first record of a name wins, and so does the first name of an
	// address: the caller puts nodes first, then static leases, then
	// leases, so a machine calling itself p1 cannot take p1's name.
	for _, r := range recs {
		if !ValidLabel(r.Name) || !r.Addr.Is4() {
			continue
		}
		k := strings.ToLower(r.Name)
		if _, dup := z.byName[k]; dup {
			continue
		}
		z.byName[k] = r.Addr
		if _, dup := z.byAddr[r.Addr]; !dup {
			z.byAddr[r.Addr] = r.Name
		}
		z.records = append(z.records, Record{Name: r.Name, Addr: r.Addr})
	}
	return z
}

// same reports whether z already holds exactly recs (after the same
// filtering), so an unchanged set costs no swap.
func (z *zone) same(recs []Record) bool {
	return slices.Equal(z.records, newZone(z.domain, z.subnet, recs).records)
}

// local reports whether qname (lower case, fully qualified) belongs to
// this server rather than upstream: a bare label, a name in the domain,
// or a name in the cluster subnet's reverse zone.
func (z *zone) local(qname string) bool {
	return dns.CountLabel(qname) == 1 || isSub(z.domain, qname) || isSub(z.reverse, qname)
}

// isSub is dns.IsSubDomain for lower-case, fully qualified names, without
// its allocations on the common path (a name with an escaped character,
// such as a dot inside a label, takes the library's).
func isSub(parent, child string) bool {
	if strings.IndexByte(child, '\\') >= 0 {
		return dns.IsSubDomain(parent, child)
	}
	return child == parent || strings.HasSuffix(child, "."+parent)
}

// lookup answers a query for a local name: the answer records, and
// whether the name exists (false: NXDOMAIN).
func (z *zone) lookup(q dns.Question, ttl uint32) (answer []dns.RR, exists bool) {
	qname := strings.ToLower(q.Name)
	hdr := func(t uint16) dns.RR_Header {
		return dns.RR_Header{Name: q.Name, Rrtype: t, Class: dns.ClassINET, Ttl: ttl}
	}
	if isSub(z.reverse, qname) {
		a, ok := ptrAddr(qname)
		if !ok || !z.subnet.Contains(a) {
			return nil, qname == z.reverse // the zone's apex exists
		}
		name, ok := z.byAddr[a]
		if !ok {
			return nil, false
		}
		if q.Qtype == dns.TypePTR || q.Qtype == dns.TypeANY {
			answer = append(answer, &dns.PTR{Hdr: hdr(dns.TypePTR), Ptr: name + "." + z.domain})
		}
		return answer, true
	}
	label := qname
	if qname == z.domain {
		return nil, true
	}
	if dns.CountLabel(qname) != 1 {
		label = strings.TrimSuffix(qname, "."+z.domain)
		if strings.Contains(label, ".") {
			return nil, false // deeper names: none exist
		}
	} else {
		label = strings.TrimSuffix(qname, ".")
	}
	a, ok := z.byName[label]
	if !ok {
		return nil, false
	}
	if q.Qtype == dns.TypeA || q.Qtype == dns.TypeANY {
		answer = append(answer, &dns.A{Hdr: hdr(dns.TypeA), A: a.AsSlice()})
	}
	return answer, true
}

// soa is the local zone's SOA record, the authority of negative answers;
// its minimum (and TTL) is the negative-caching time (RFC 2308).
func (z *zone) soa(qname string, negTTL uint32) dns.RR {
	apex := z.domain
	if isSub(z.reverse, strings.ToLower(qname)) {
		apex = z.reverse
	}
	return &dns.SOA{
		Hdr: dns.RR_Header{Name: apex, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: negTTL},
		Ns:  "ns." + z.domain, Mbox: "hostmaster." + z.domain,
		Serial: 1, Refresh: 3600, Retry: 600, Expire: 86400, Minttl: negTTL,
	}
}

// ptrAddr parses d.c.b.a.in-addr.arpa. into a.b.c.d.
func ptrAddr(qname string) (netip.Addr, bool) {
	rest, ok := strings.CutSuffix(qname, ".in-addr.arpa.")
	if !ok {
		return netip.Addr{}, false
	}
	p := strings.Split(rest, ".")
	if len(p) != 4 {
		return netip.Addr{}, false
	}
	slices.Reverse(p)
	a, err := netip.ParseAddr(strings.Join(p, "."))
	if err != nil || !a.Is4() {
		return netip.Addr{}, false
	}
	return a, true
}
