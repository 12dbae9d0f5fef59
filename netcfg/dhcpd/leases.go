package dhcpd

import (
	"net"
	"net/netip"
	"slices"
	"time"
)

// Lease is an address given (or offered) to one machine.
type Lease struct {
	MAC  net.HardwareAddr `json:"mac"`
	Addr netip.Addr       `json:"address"`
	// Hostname is the host name the server handed out (a reservation's
	// name), else the one the client sent, if it was a valid host name.
	Hostname string    `json:"hostname,omitempty"`
	Expires  time.Time `json:"expires"`
	// Reserved: the address is the machine's by reservation.
	Reserved bool `json:"reserved,omitempty"`
	// Offered: offered in a DHCPOFFER and not yet requested. Offers are
	// not persisted.
	Offered bool `json:"-"`
	// disk is the expiry the lease file records for this lease (zero:
	// the file does not have it, or not with this address and name).
	disk time.Time
}

// active reports whether the lease still holds its address at now.
func (l *Lease) active(now time.Time) bool { return now.Before(l.Expires) }

// leases is the lease table: at most one lease per MAC and per address.
// Expired leases stay as a record of who had which address, so that a
// machine coming back gets its old address if no one took it since; the
// table never grows beyond the pool and the reservations, because a new
// lease on an address replaces the old record.
type leases struct {
	byMAC    map[string]*Lease
	byAddr   map[netip.Addr]*Lease
	declined map[netip.Addr]time.Time // until
}

func newLeases() *leases {
	return &leases{byMAC: map[string]*Lease{}, byAddr: map[netip.Addr]*Lease{}, declined: map[netip.Addr]time.Time{}}
}

// put records l, replacing the machine's previous lease and any earlier
// record of the address.
func (t *leases) put(l *Lease) {
	key := l.MAC.String()
	if old := t.byMAC[key]; old != nil {
		delete(t.byAddr, old.Addr)
	}
	if old := t.byAddr[l.Addr]; old != nil {
		delete(t.byMAC, old.MAC.String())
	}
	t.byMAC[key] = l
	t.byAddr[l.Addr] = l
}

func (t *leases) remove(l *Lease) {
	delete(t.byMAC, l.MAC.String())
	delete(t.byAddr, l.Addr)
}

// heldByOther reports whether another machine holds a unexpired lease or
// offer on a.
func (t *leases) heldByOther(a netip.Addr, mac net.HardwareAddr, now time.Time) bool {
	l := t.byAddr[a]
	return l != nil && l.active(now) && l.MAC.String() != mac.String()
}

func (t *leases) isDeclined(a netip.Addr, now time.Time) bool {
	until, ok := t.declined[a]
	if ok && !now.Before(until) {
		delete(t.declined, a)
		return false
	}
	return ok
}

// list returns copies of the leases for which keep is true, by address.
func (t *leases) list(keep func(*Lease) bool) []Lease {
	out := make([]Lease, 0, len(t.byAddr))
	for _, l := range t.byAddr {
		if keep(l) {
			c := *l
			c.MAC = slices.Clone(l.MAC)
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b Lease) int { return a.Addr.Compare(b.Addr) })
	return out
}
