package dhcpd

import (
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// FuzzHandler feeds arbitrary datagrams to the packet handler, as anyone
// on the cluster network can. The seed corpus in testdata/fuzz/FuzzHandler
// holds the packets real dhclient and udhcpc sent in the kernel tests
// (regenerate with go test -run Kernel -seeds). Whatever arrives, the
// handler must not panic, must answer only with a well-formed reply to
// the request it got, must never hand out an address that is not ours to
// give, and must keep the lease table consistent.
func FuzzHandler(f *testing.F) {
	for _, m := range []*dhcpv4.DHCPv4{
		discover(macA),
		discover(macA, hostname("p3")),
		discover(gadget2),
		request(macB, "192.168.50.128", "192.168.50.1"),
		request(pinned, "192.168.50.200", ""),
		renew(macA, "192.168.50.129"),
	} {
		f.Add(m.ToBytes())
	}
	f.Add([]byte{})
	f.Add(make([]byte, 240))

	// Each input runs in a synctest bubble: the same clock every time, so
	// an input that fails once fails again.
	f.Fuzz(func(t *testing.T, pkt []byte) {
		synctest.Test(t, func(t *testing.T) {
			s, err := New(&Options{
				Address:   head,
				PoolFirst: netip.MustParseAddr("192.168.50.200"),
				PoolLast:  netip.MustParseAddr("192.168.50.203"),
				Reservations: append(nodeReservations(),
					Reservation{MAC: pinned, Name: "p5", Addr: netip.MustParseAddr("192.168.50.15")}),
			})
			if err != nil {
				t.Fatal(err)
			}
			fx := &fixture{t: t, s: s}
			fx.lease(macA)
			fx.lease(macB, hostname("p3"))

			for range 2 { // the same packet twice: the second meets the state the first left
				r := s.Handle(pkt)
				checkTable(t, s, time.Now())
				if r == nil {
					continue
				}
				req, err := dhcpv4.FromBytes(pkt)
				if err != nil {
					t.Fatalf("answered a packet that does not parse (%v)", err)
				}
				resp, err := dhcpv4.FromBytes(r.Packet)
				if err != nil {
					t.Fatalf("reply does not parse: %v", err)
				}
				if resp.OpCode != dhcpv4.OpcodeBootReply || resp.TransactionID != req.TransactionID || resp.ClientHWAddr.String() != req.ClientHWAddr.String() {
					t.Fatalf("reply does not answer the request:\n%s", resp.Summary())
				}
				switch resp.MessageType() {
				case dhcpv4.MessageTypeOffer, dhcpv4.MessageTypeAck, dhcpv4.MessageTypeNak:
				default:
					t.Fatalf("replied with %v", resp.MessageType())
				}
				if y, _ := netip.AddrFromSlice(resp.YourIPAddr.To4()); !y.IsUnspecified() && !ours(s, y) {
					t.Fatalf("handed out %v, which is not ours to give", y)
				}
				if to := r.To.Addr(); to != netip.AddrFrom4([4]byte{255, 255, 255, 255}) && !head.Masked().Contains(to) {
					t.Fatalf("reply sent to %v, off the cluster network", r.To)
				}
				if len(r.Packet) > len(pkt)+300 {
					t.Fatalf("a %d-byte request drew a %d-byte reply", len(pkt), len(r.Packet))
				}
			}
		})
	})
}

// ours reports whether a is in the pool or reserved.
func ours(s *Server, a netip.Addr) bool {
	if _, ok := s.byAddr[a]; ok {
		return true
	}
	return !a.Less(s.o.PoolFirst) && !s.o.PoolLast.Less(a)
}

// checkTable verifies the lease table's invariants.
func checkTable(t *testing.T, s *Server, now time.Time) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.leases.byMAC) != len(s.leases.byAddr) {
		t.Fatalf("lease table out of step: %d by MAC, %d by address", len(s.leases.byMAC), len(s.leases.byAddr))
	}
	for a, l := range s.leases.byAddr {
		if l.Addr != a || s.leases.byMAC[l.MAC.String()] != l {
			t.Fatalf("lease table out of step at %v: %+v", a, l)
		}
		if !ours(s, a) || a == head.Addr() {
			t.Fatalf("lease on %v, which is not ours to give", a)
		}
		if len(l.MAC) != 6 {
			t.Fatalf("lease for a %d-byte hardware address", len(l.MAC))
		}
		if r, ok := s.byAddr[a]; ok && r.MAC != nil && l.active(now) && r.MAC.String() != l.MAC.String() {
			t.Fatalf("%v is reserved for %v but leased to %v", a, r.MAC, l.MAC)
		}
	}
}
