package dhcpd

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"
)

// Options configures a Server.
type Options struct {
	// Address is the head node's address on the cluster network with the
	// subnet's prefix length, e.g. 192.168.50.1/24: the server identifier,
	// the default router, and the subnet served.
	Address netip.Prefix
	// PoolFirst and PoolLast bound the addresses leased to machines
	// without a reservation. Reserved addresses and the head's own are
	// skipped.
	PoolFirst, PoolLast netip.Addr
	// Reservations pin addresses to MAC addresses and/or names.
	Reservations []Reservation
	// Router is handed out as the default gateway; zero means Address.
	Router netip.Addr
	// Domain, when set, is handed out as the domain name (option 15) and
	// the search list (option 119, RFC 3397), so that a node resolves the
	// bare names of the head's DNS server ("p2") too.
	Domain string
	// LeaseTime is how long a lease lasts; zero means DefaultOpts's.
	LeaseTime time.Duration
	// LeaseFile keeps the leases across restarts; "" keeps them in memory.
	LeaseFile string
	Log       *slog.Logger
}

// DefaultOpts holds the defaults for zero fields of Options.
var DefaultOpts = Options{LeaseTime: time.Hour}

// Reservation pins an address. With a MAC, that machine gets Addr and
// host name Name. Without one, Name must be a node name (pN): a machine
// asking with that host name, or the ClusterCTRL gadget of that node, gets
// Addr.
type Reservation struct {
	MAC  net.HardwareAddr
	Name string
	Addr netip.Addr
}

// offerHold is how long an offered address stays set aside for the client
// it was offered to, so that two clients discovering at once do not get the
// same address.
const offerHold = 30 * time.Second

// declineHold keeps an address a client reported as in use (DHCPDECLINE)
// out of the pool for a while.
const declineHold = 10 * time.Minute

func (o *Options) withDefaults() {
	if o.LeaseTime == 0 {
		o.LeaseTime = DefaultOpts.LeaseTime
	}
	if !o.Router.IsValid() {
		o.Router = o.Address.Addr()
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

// check reports inconsistent options, naming both sides of a conflict.
func (o *Options) check() error {
	a := o.Address
	if !a.IsValid() || !a.Addr().Is4() || a.Bits() > 30 {
		return fmt.Errorf("server address %v is not an IPv4 address with a prefix of /30 or shorter", a)
	}
	subnet := a.Masked()
	host := func(x netip.Addr) error {
		if !IsHostAddr(subnet, x) {
			return fmt.Errorf("%v is not a host address of %s", x, subnet)
		}
		return nil
	}
	if err := host(o.PoolFirst); err != nil {
		return fmt.Errorf("pool start: %w", err)
	}
	if err := host(o.PoolLast); err != nil {
		return fmt.Errorf("pool end: %w", err)
	}
	if o.PoolLast.Less(o.PoolFirst) {
		return fmt.Errorf("pool %v-%v starts after it ends", o.PoolFirst, o.PoolLast)
	}
	if !PoolSizeOK(o.PoolFirst, o.PoolLast) {
		return fmt.Errorf("pool %v-%v holds more than %d addresses", o.PoolFirst, o.PoolLast, MaxPool)
	}
	if o.LeaseTime < time.Minute {
		return fmt.Errorf("lease time %v is shorter than a minute", o.LeaseTime)
	}
	byMAC := map[string]int{}
	byName := map[string]int{}
	byAddr := map[netip.Addr]int{}
	for i, r := range o.Reservations {
		what := fmt.Sprintf("reservation %d (%s)", i, r)
		if err := host(r.Addr); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if r.Addr == a.Addr() {
			return fmt.Errorf("%s: %v is the server's own address", what, r.Addr)
		}
		if r.MAC == nil && !isNodeName(r.Name) {
			return fmt.Errorf("%s: a reservation without a MAC address needs a node name (pN)", what)
		}
		if r.MAC != nil {
			if len(r.MAC) != 6 {
				return fmt.Errorf("%s: %v is not an Ethernet MAC address", what, r.MAC)
			}
			if j, dup := byMAC[r.MAC.String()]; dup {
				return fmt.Errorf("%s: MAC %v is also in reservation %d (%s)", what, r.MAC, j, o.Reservations[j])
			}
			byMAC[r.MAC.String()] = i
		}
		if r.Name != "" {
			if j, dup := byName[r.Name]; dup {
				return fmt.Errorf("%s: name %s is also in reservation %d (%s)", what, r.Name, j, o.Reservations[j])
			}
			byName[r.Name] = i
		}
		if j, dup := byAddr[r.Addr]; dup {
			return fmt.Errorf("%s: address %v is also in reservation %d (%s)", what, r.Addr, j, o.Reservations[j])
		}
		byAddr[r.Addr] = i
	}
	return nil
}

func (r Reservation) String() string {
	s := r.Addr.String()
	if r.Name != "" {
		s = r.Name + " " + s
	}
	if r.MAC != nil {
		s = r.MAC.String() + " " + s
	}
	return s
}

var errNoPool = errors.New("no free address in the pool")

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func addr4(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func broadcastOf(p netip.Prefix) netip.Addr {
	return addr4(u32(p.Masked().Addr()) | (1<<(32-p.Bits()) - 1))
}

// AutoPool is the default pool for a head node at head: the upper half of
// the subnet, or of the /24 around head when the subnet is larger, less
// the broadcast address. For 192.168.50.1/24 that is .128-.254: above the
// nodes' own addresses, which start low (host 10+N for pN).
func AutoPool(head netip.Prefix) (first, last netip.Addr) {
	block := head.Masked()
	if block.Bits() < 24 {
		block = netip.PrefixFrom(head.Addr(), 24).Masked()
	}
	size := uint32(1) << (32 - block.Bits())
	base := u32(block.Addr())
	return addr4(base + size/2), addr4(base + size - 2)
}

// IsHostAddr reports whether a is a usable host address of subnet: inside
// it, and neither its network nor its broadcast address.
func IsHostAddr(subnet netip.Prefix, a netip.Addr) bool {
	subnet = subnet.Masked()
	return a.Is4() && subnet.Contains(a) && a != subnet.Addr() && a != broadcastOf(subnet)
}

// MaxPool bounds the pool, and with it the work one DHCPDISCOVER can cost
// when every address has been used before (a scan for the one that
// expired longest ago). A cluster needs a few hundred at most.
const MaxPool = 1 << 12

// PoolSizeOK reports whether first-last holds at most MaxPool addresses.
func PoolSizeOK(first, last netip.Addr) bool {
	return !last.Less(first) && u32(last)-u32(first) < MaxPool
}
