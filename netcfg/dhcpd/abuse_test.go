package dhcpd

// DHCP under abuse: each limit is hit while legitimate clients are served.

import (
	"net"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

func randomMAC(i int) net.HardwareAddr {
	return net.HardwareAddr{0x02, 0xf1, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}
}

// A client stuck in a loop is slowed to its own rate; others, known and
// new, are answered meanwhile.
func TestFloodFromOneClientIsLimitedAlone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, nil)
		a := f.lease(macA)
		looper := mustMAC("02:00:00:00:00:66")
		f.lease(looper)
		answered := 0
		for range 1000 {
			if f.send(discover(looper)) != nil {
				answered++
			}
		}
		if got := f.dropped(DropRateLimited); got < 900 {
			t.Errorf("a client sending 1000 DISCOVERs at once: %d dropped as rate-limited, want most", got)
		}
		if answered > DefaultLimits.ClientBurst {
			t.Errorf("the looping client got %d answers in a burst, want at most %d", answered, DefaultLimits.ClientBurst)
		}
		// Meanwhile: a renewal and a new machine.
		if r := f.send(renew(macA, a)); r == nil || r.Type != "ACK" {
			t.Errorf("renewal while another client floods: %+v", r)
		}
		f.lease(macB)
		// The looper recovers at its rate.
		time.Sleep(time.Second)
		if f.send(discover(looper)) == nil {
			t.Error("the looping client is not answered a second later")
		}
	})
}

// A flood from random MACs spends the new-client budget and nothing else:
// every known node keeps being served.
func TestRandomMACFloodLeavesKnownNodesServed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, func(o *Options) { o.Limits = Limits{NewRate: 50, NewBurst: 100} })
		a := f.lease(macA)
		p3 := mustMAC("02:00:00:00:00:33")
		f.lease(p3, hostname("p3"))
		for i := range 5000 {
			f.send(discover(randomMAC(i)))
			if i%500 == 0 {
				// Renewals, a reservation by MAC, a gadget and a
				// named node keep being answered during the flood.
				if r := f.send(renew(macA, a)); r == nil || r.Type != "ACK" {
					t.Fatalf("renewal during the flood (packet %d): %+v", i, r)
				}
				if r := f.send(discover(pinned)); r == nil || r.Addr != "192.168.50.15" {
					t.Fatalf("pinned node during the flood: %+v", r)
				}
				if r := f.send(discover(gadget2)); r == nil || r.Addr != "192.168.50.12" {
					t.Fatalf("gadget of p2 during the flood: %+v", r)
				}
				if r := f.send(renew(p3, "192.168.50.13")); r == nil || r.Type != "ACK" {
					t.Fatalf("p3 renewing during the flood: %+v", r)
				}
			}
		}
		if got := f.dropped(DropRateLimited); got < 4000 {
			t.Errorf("5000 DISCOVERs from random MACs at once: %d rate-limited, want most", got)
		}
	})
}

// The flood fills the pool with offers; they lapse in seconds, and with
// the pool full an offer older than a second goes to the next machine.
// Reservations and known nodes are served with the pool exhausted.
func TestOffersReleasedQuicklyAndReservationsServedWhenFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, func(o *Options) {
			o.PoolFirst, o.PoolLast = netip.MustParseAddr("192.168.50.200"), netip.MustParseAddr("192.168.50.203")
		})
		held := f.lease(macA) // a bound lease in the pool
		for i := range 3 {
			if r := f.send(discover(randomMAC(i))); r == nil {
				t.Fatalf("flooder %d got no offer", i)
			}
		}
		if r := f.send(discover(randomMAC(10))); r != nil {
			t.Fatalf("pool of 4 with 1 lease and 3 offers: another machine got %+v", r)
		}
		// Exhausted: reservations and the lease holder are served.
		if r := f.send(discover(pinned)); r == nil || r.Addr != "192.168.50.15" {
			t.Errorf("pinned node with the pool exhausted: %+v", r)
		}
		if got := f.lease(mustMAC("02:00:00:00:00:34"), hostname("p4")); got != "192.168.50.14" {
			t.Errorf("p4 by name with the pool exhausted got %s", got)
		}
		if got := f.lease(gadget2); got != "192.168.50.12" {
			t.Errorf("gadget of p2 with the pool exhausted got %s", got)
		}
		if r := f.send(renew(macA, held)); r == nil || r.Type != "ACK" {
			t.Errorf("renewal with the pool exhausted: %+v", r)
		}
		// A second on, the oldest unrequested offer goes to a new machine.
		time.Sleep(offerReclaim)
		got := f.lease(macB)
		if got == held {
			t.Fatalf("a reclaimed offer gave away the bound lease %s", held)
		}
		if f.s.Stats().OffersReclaimed != 1 {
			t.Errorf("reclaimed: %+v", f.s.Stats())
		}
		// After offerHold all offers have lapsed.
		time.Sleep(offerHold)
		if got := f.lease(mustMAC("02:00:00:00:00:77")); got == "" {
			t.Error("no address after the offers lapsed")
		}
	})
}

// A machine calling itself p2 does not take p2's address while the machine
// that holds the name is off; a gadget or pinned MAC asking as p2 gets its
// own reservation.
func TestNodeNameIsNotTakenWhileItsMachineIsOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, nil)
		real := mustMAC("b8:27:eb:00:00:02")
		if got := f.lease(real, hostname("p2")); got != "192.168.50.12" {
			t.Fatalf("p2 got %s", got)
		}
		time.Sleep(2 * time.Hour) // p2 is off; its lease has expired
		if got := f.lease(mustMAC("02:00:00:00:00:99"), hostname("p2")); got == "192.168.50.12" {
			t.Errorf("an impostor calling itself p2 got p2's address while p2 is off")
		}
		if got := f.lease(mustMAC("00:22:82:ff:ff:03"), hostname("p2")); got != "192.168.50.13" {
			t.Errorf("gadget of p3 calling itself p2 got %s, want p3's 192.168.50.13", got)
		}
		if got := f.lease(pinned, hostname("p2")); got != "192.168.50.15" {
			t.Errorf("MAC pinned to p5 calling itself p2 got %s, want its own 192.168.50.15", got)
		}
		if got := f.lease(real, hostname("p2")); got != "192.168.50.12" {
			t.Errorf("p2 back on got %s", got)
		}
		// A day after p2's lease ended, the name is free to move.
		time.Sleep(time.Hour + nameHold)
		if got := f.lease(mustMAC("02:00:00:00:00:98"), hostname("p2")); got != "192.168.50.12" {
			t.Errorf("a new p2 a day after the old one left got %s", got)
		}
	})
}

// Relayed requests from a relay on the subnet are answered through the
// relay (to giaddr, port 67) with its option 82; relays for other networks
// are not.
func TestRelayedRequests(t *testing.T) {
	f := newFixture(t, nil)
	ri := dhcpv4.WithGeneric(dhcpv4.OptionRelayAgentInformation, []byte{1, 3, 'p', 'o', 'e'})
	relay := dhcpv4.WithGatewayIP(net.ParseIP("192.168.50.250"))
	r := f.s.Handle(discover(macA, relay, ri).ToBytes())
	if r == nil || r.To.String() != "192.168.50.250:67" {
		t.Fatalf("relayed DISCOVER: %+v", r)
	}
	o, _ := dhcpv4.FromBytes(r.Packet)
	if o.MessageType() != dhcpv4.MessageTypeOffer || !o.GatewayIPAddr.Equal(net.ParseIP("192.168.50.250")) || string(o.Options.Get(dhcpv4.OptionRelayAgentInformation)) != "\x01\x03poe" {
		t.Errorf("relayed offer: %s", o.Summary())
	}
	a := f.s.Handle(request(macA, o.YourIPAddr.String(), "192.168.50.1", relay).ToBytes())
	if p, _ := dhcpv4.FromBytes(a.Packet); a == nil || p.MessageType() != dhcpv4.MessageTypeAck || a.To.String() != "192.168.50.250:67" {
		t.Errorf("relayed request: %+v", a)
	}
	if n := f.s.Handle(request(macB, "192.168.50.77", "", relay).ToBytes()); n == nil || n.To.String() != "192.168.50.250:67" {
		t.Errorf("a relayed NAK goes to the relay: %+v", n)
	}
	if r := f.send(discover(macB, dhcpv4.WithGatewayIP(net.ParseIP("10.1.2.3")))); r != nil || f.dropped(DropRelayed) != 1 {
		t.Errorf("a relay for another network was answered: %+v", r)
	}
	if f.s.Stats().Relayed != 3 {
		t.Errorf("relayed: %+v", f.s.Stats())
	}
}
