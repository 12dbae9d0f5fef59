package dhcpd

import (
	"time"
)

// Limits bound how many packets the server answers, per client and for
// clients it does not know yet. A packet over a limit is dropped and
// counted as DropRateLimited before it costs more than a map lookup.
type Limits struct {
	// ClientRate (packets a second) and ClientBurst bound each MAC
	// address the server knows (a reservation, a ClusterCTRL gadget, a
	// lease or offer). A node needs two packets to boot and one to
	// renew; a client stuck in a loop is slowed to ClientRate without
	// affecting anyone else.
	ClientRate  float64
	ClientBurst int
	// NewRate and NewBurst bound the packets from MACs the server does
	// not know, together: a flood from random MACs spends this budget
	// and nothing else, so the known nodes' renewals still get through.
	// The burst lets a boot storm of a thousand nodes through at once.
	NewRate  float64
	NewBurst int
}

// DefaultLimits are the Limits used for zero fields. The budget for new
// clients is far above what a cluster needs (a thousand nodes booting at
// once) and about what the server answers on a small ARM board, so a
// flood costs a bounded share of the head node's CPU.
var DefaultLimits = Limits{ClientRate: 4, ClientBurst: 16, NewRate: 10000, NewBurst: 4096}

func (l *Limits) withDefaults() {
	if l.ClientRate <= 0 {
		l.ClientRate = DefaultLimits.ClientRate
	}
	if l.ClientBurst <= 0 {
		l.ClientBurst = DefaultLimits.ClientBurst
	}
	if l.NewRate <= 0 {
		l.NewRate = DefaultLimits.NewRate
	}
	if l.NewBurst <= 0 {
		l.NewBurst = DefaultLimits.NewBurst
	}
}

// bucket is a token bucket.
type bucket struct {
	tokens float64
	at     time.Time
}

// take refills b for the time since its last use and takes a token.
func (b *bucket) take(now time.Time, rate float64, burst int) bool {
	if b.at.IsZero() {
		b.tokens = float64(burst)
	} else if d := now.Sub(b.at); d > 0 {
		b.tokens = min(float64(burst), b.tokens+d.Seconds()*rate)
	}
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// full reports whether b would be full at now, so that forgetting it
// changes nothing.
func (b *bucket) full(now time.Time, rate float64, burst int) bool {
	return b.tokens+now.Sub(b.at).Seconds()*rate >= float64(burst)
}

// limits is the rate limiter's state (under Server.mu).
type limits struct {
	perMAC map[[6]byte]*bucket
	fresh  bucket
	// sweepAt is the map size at which idle buckets are forgotten.
	sweepAt int
}

// admit applies the limits to a raw packet: its client hardware address
// is at bytes 28-33 (RFC 2131 section 2). Packets too short to have one
// pass, to be dropped as malformed.
func (s *Server) admit(pkt []byte, now time.Time) bool {
	if len(pkt) < 34 || pkt[2] != 6 {
		return true
	}
	var key [6]byte
	copy(key[:], pkt[28:34])
	l := &s.lim
	if l.perMAC == nil {
		l.perMAC = map[[6]byte]*bucket{}
		l.sweepAt = 1024
	}
	o := &s.o.Limits
	b := l.perMAC[key]
	if b == nil {
		if !s.knows(key) {
			return l.fresh.take(now, o.NewRate, o.NewBurst)
		}
		if len(l.perMAC) >= l.sweepAt {
			for k, b := range l.perMAC {
				if b.full(now, o.ClientRate, o.ClientBurst) {
					delete(l.perMAC, k)
				}
			}
			l.sweepAt = max(1024, 2*len(l.perMAC))
		}
		b = &bucket{}
		l.perMAC[key] = b
	}
	return b.take(now, o.ClientRate, o.ClientBurst)
}

// knows reports whether the server has a reservation, a gadget slot or a
// lease record (current or expired, or an offer) for the MAC.
func (s *Server) knows(mac [6]byte) bool {
	if mac[0] == 0x00 && mac[1] == 0x22 && mac[2] == 0x82 && mac[3] == 0xff && mac[4] == 0xff && mac[5] != 0 {
		return true
	}
	k := macKey(mac)
	if _, ok := s.byMAC[k]; ok {
		return true
	}
	return s.leases.byMAC[k] != nil
}

// macKey is net.HardwareAddr(mac).String() without the allocations.
func macKey(mac [6]byte) string {
	const hex = "0123456789abcdef"
	var b [17]byte
	for i, c := range mac {
		if i > 0 {
			b[3*i-1] = ':'
		}
		b[3*i], b[3*i+1] = hex[c>>4], hex[c&0xf]
	}
	return string(b[:])
}
