package dhcpd

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

func benchServer(b *testing.B, first, last string, file string) *Server {
	s, err := New(&Options{Address: netip.MustParsePrefix("10.0.0.1/15"), PoolFirst: netip.MustParseAddr(first), PoolLast: netip.MustParseAddr(last),
		Reservations: nodeReservationsIn("10.0.0."), LeaseFile: file})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// handleAt is Handle at the time given: a benchmark cannot run in a
// synctest bubble (synctest.Test takes a *testing.T), so one that needs
// time to pass hands the handler its clock reading.
func (s *Server) handleAt(pkt []byte, now time.Time) *Reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, _ := s.handle(pkt, now)
	return r
}

func nodeReservationsIn(prefix string) []Reservation {
	var rs []Reservation
	for n := 1; n <= 100; n++ {
		rs = append(rs, Reservation{Name: "p" + itoa(n), Addr: netip.MustParseAddr(prefix + itoa(10+n))})
	}
	return rs
}

func itoa(n int) string { return netip.AddrFrom4([4]byte{0, 0, 0, byte(n)}).String()[6:] }

func macN(i int) net.HardwareAddr {
	return net.HardwareAddr{2, 0, 0, byte(i >> 16), byte(i >> 8), byte(i)}
}

// One client's DISCOVER/OFFER/REQUEST/ACK, in memory (no lease file):
// the cost of the packet handling itself. 512 machines take turns, so
// most rounds meet an existing lease, as renewals do.
func BenchmarkHandshake(b *testing.B) {
	s := benchServer(b, "10.0.1.0", "10.0.3.255", "")
	var disc, req [512][]byte
	for i := range 512 {
		d, _ := dhcpv4.NewDiscovery(macN(i))
		disc[i] = d.ToBytes()
		r, _ := dhcpv4.New(dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest), dhcpv4.WithHwAddr(macN(i)))
		req[i] = r.ToBytes()
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		r := s.Handle(disc[i%512])
		o, _ := dhcpv4.FromBytes(r.Packet)
		m, _ := dhcpv4.FromBytes(req[i%512])
		m.UpdateOption(dhcpv4.OptRequestedIPAddress(o.YourIPAddr))
		if a := s.Handle(m.ToBytes()); a == nil {
			b.Fatal("no ACK")
		}
	}
}

// The same with the lease file written (and fsynced) before every ACK, as
// the daemon runs it.
func BenchmarkHandshakeSaved(b *testing.B) {
	s := benchServer(b, "10.0.1.0", "10.0.1.255", b.TempDir()+"/leases.json")
	d, _ := dhcpv4.NewDiscovery(macN(1))
	r := s.Handle(d.ToBytes())
	o, _ := dhcpv4.FromBytes(r.Packet)
	req, _ := dhcpv4.New(dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest), dhcpv4.WithHwAddr(macN(1)), dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(o.YourIPAddr)))
	pkt := req.ToBytes()
	for i := 2; i < 100; i++ { // a cluster's worth of leases in the file
		d, _ := dhcpv4.NewDiscovery(macN(i))
		r := s.Handle(d.ToBytes())
		o, _ := dhcpv4.FromBytes(r.Packet)
		m, _ := dhcpv4.New(dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest), dhcpv4.WithHwAddr(macN(i)), dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(o.YourIPAddr)))
		s.Handle(m.ToBytes())
	}
	b.ReportAllocs()
	for b.Loop() {
		if a := s.Handle(pkt); a == nil {
			b.Fatal("no ACK")
		}
	}
}

// What a flood of junk costs: parse and drop.
func BenchmarkDropMalformed(b *testing.B) {
	s := benchServer(b, "10.0.1.0", "10.0.1.255", "")
	d, _ := dhcpv4.NewDiscovery(macN(1))
	pkt := d.ToBytes()
	pkt[236] = 0 // bad magic cookie
	b.ReportAllocs()
	for b.Loop() {
		s.Handle(pkt)
	}
}

// The worst case of one DISCOVER: a MaxPool-sized pool where every address
// was used before and has expired, scanned to the end for the one that
// expired longest ago. Each round expires a little later than the last.
func BenchmarkDiscoverWorstCase(b *testing.B) {
	s := benchServer(b, "10.0.1.0", "10.0.16.255", "")
	now := time.Now()
	i := 0
	for a := s.o.PoolFirst; !s.o.PoolLast.Less(a); a = a.Next() {
		s.leases.put(&Lease{MAC: macN(i), Addr: a, Expires: now.Add(-time.Hour).Add(time.Duration(i) * time.Second)})
		i++
	}
	b.ReportAllocs()
	for n := 0; b.Loop(); n++ {
		now = now.Add(offerHold + time.Second) // earlier offers lapse
		d, _ := dhcpv4.NewDiscovery(macN(1<<20 + n))
		if s.handleAt(d.ToBytes(), now) == nil {
			b.Fatal("no offer")
		}
	}
	b.ReportMetric(float64(i), "pool")
}

// A flood of DISCOVERs from new MACs once the pool is full: after one
// scan the server knows nothing frees up before the first lease expires.
func BenchmarkDiscoverFullPool(b *testing.B) {
	s := benchServer(b, "10.0.1.0", "10.0.16.255", "")
	now := time.Now()
	i := 0
	for a := s.o.PoolFirst; !s.o.PoolLast.Less(a); a = a.Next() {
		s.leases.put(&Lease{MAC: macN(i), Addr: a, Expires: now.Add(time.Hour)})
		i++
	}
	d, _ := dhcpv4.NewDiscovery(macN(1 << 20))
	pkt := d.ToBytes()
	b.ReportAllocs()
	for b.Loop() {
		if s.Handle(pkt) != nil {
			b.Fatal("offered from a full pool")
		}
	}
}
