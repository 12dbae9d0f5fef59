package subnet

import (
	"fmt"
	"net/netip"
	"strings"
)

// Default is the candidate list for cluster_address = "auto", in the order
// tried (see the package documentation for what they avoid). Each is the
// start of a block as large as the node count needs (Size).
var Default = []netip.Prefix{
	netip.MustParsePrefix("10.213.0.0/24"),
	netip.MustParsePrefix("172.16.231.0/24"),
	netip.MustParsePrefix("10.187.64.0/24"),
	netip.MustParsePrefix("192.168.213.0/24"),
	netip.MustParsePrefix("10.254.42.0/24"),
	netip.MustParsePrefix("172.16.97.0/24"),
	netip.MustParsePrefix("10.31.160.0/24"),
}

// MaxPool bounds the DHCP pool, as netcfg/dhcpd does (dhcpd.MaxPool): the
// work one DHCPDISCOVER can cost grows with it.
const MaxPool = 1 << 12

// NodeOffset places node pN at host number NodeOffset+N, leaving the low
// addresses for the head node (host 1) and other infrastructure.
const NodeOffset = 10

// Smallest and largest prefix lengths Size picks.
const (
	minBits = 24
	maxBits = 20
)

// MaxNodes is the most nodes a chosen subnet holds (a /20).
var MaxNodes = capacity(maxBits)

// capacity is how many nodes fit below the pool of a subnet with bits.
func capacity(bits int) int {
	return (1<<(32-bits))/2 - NodeOffset - 1
}

// Size returns the prefix length of the smallest subnet, /24 at least,
// whose lower half holds nodes nodes at host 10+N.
func Size(nodes int) (int, error) {
	if nodes < 0 {
		return 0, fmt.Errorf("%d nodes: the count cannot be negative", nodes)
	}
	for bits := minBits; bits >= maxBits; bits-- {
		if nodes <= capacity(bits) {
			return bits, nil
		}
	}
	return 0, fmt.Errorf("%d nodes do not fit a /%d (at most %d); list the subnet yourself in cluster_address", nodes, maxBits, MaxNodes)
}

// Layout is the cluster subnet and where things are in it.
type Layout struct {
	// Head is the head node's address with the subnet's prefix length
	// (what goes on the cluster interface), Subnet the network.
	Head   netip.Prefix
	Subnet netip.Prefix
	// PoolFirst-PoolLast is the DHCP pool for machines without a fixed
	// address.
	PoolFirst, PoolLast netip.Addr
	// Nodes is how many nodes have an address below the pool (p1 ...
	// pNodes at host 10+N).
	Nodes int
}

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func addr4(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// Of lays out the subnet of head (an IPv4 address with prefix length,
// /8 to /30): the pool is its upper half, at most MaxPool addresses at the
// top; nodes fill host 10+N below it.
func Of(head netip.Prefix) Layout {
	sub := head.Masked()
	size := uint64(1) << (32 - sub.Bits())
	base := uint64(u32(sub.Addr()))
	first, last := base+size/2, base+size-2
	if last-first+1 > MaxPool {
		first = base + size - MaxPool // 4095 addresses, from a round one
	}
	nodes := int(min(first-base, 1<<20)) - NodeOffset - 1
	return Layout{Head: head, Subnet: sub, PoolFirst: addr4(uint32(first)), PoolLast: addr4(uint32(last)), Nodes: max(0, nodes)}
}

// At lays out subnet s with the head at host 1.
func At(s netip.Prefix) Layout {
	s = s.Masked()
	return Of(netip.PrefixFrom(addr4(u32(s.Addr())+1), s.Bits()))
}

// Node returns node pN's address (host 10+N), if it is below the pool.
func (l Layout) Node(n int) (netip.Addr, bool) {
	if n < 1 || n > l.Nodes {
		return netip.Addr{}, false
	}
	return addr4(u32(l.Subnet.Addr()) + uint32(NodeOffset+n)), true
}

// Sized is candidate c at prefix length bits: the block of that size that
// starts where c does.
func Sized(c netip.Prefix, bits int) netip.Prefix {
	return netip.PrefixFrom(c.Addr(), bits).Masked()
}

// Clash returns the first of occupied that overlaps s.
func Clash(s netip.Prefix, occupied []netip.Prefix) (netip.Prefix, bool) {
	for _, o := range occupied {
		if o.IsValid() && o.Addr().Is4() && o.Overlaps(s) {
			return o, true
		}
	}
	return netip.Prefix{}, false
}

// NoFreeError says that every candidate clashes, and with what.
type NoFreeError struct {
	Bits    int
	Clashes []string // "10.213.0.0/24 (10.213.0.0/16 is in use)"
}

func (e *NoFreeError) Error() string {
	return fmt.Sprintf("no candidate subnet is free at /%d: %s; add a free one to the candidates (e.g. a /%d in 10.0.0.0/8 that nothing here uses)",
		e.Bits, strings.Join(e.Clashes, ", "), e.Bits)
}

// Choose picks the cluster subnet for nodes nodes: keep (the subnet chosen
// before, so that nodes keep their addresses) while it is still one of the
// candidates' blocks, large enough and free; else the first candidate
// whose block of the needed size overlaps nothing in occupied.
func Choose(occupied, candidates []netip.Prefix, nodes int, keep netip.Prefix) (Layout, error) {
	bits, err := Size(nodes)
	if err != nil {
		return Layout{}, err
	}
	if keep.IsValid() && keep.Addr().Is4() && keep.Bits() <= bits {
		k := keep.Masked()
		for _, c := range candidates {
			if Sized(c, k.Bits()) != k {
				continue
			}
			if _, clash := Clash(k, occupied); !clash {
				return At(k), nil
			}
			break
		}
	}
	e := &NoFreeError{Bits: bits}
	for _, c := range candidates {
		s := Sized(c, bits)
		o, clash := Clash(s, occupied)
		if !clash {
			return At(s), nil
		}
		e.Clashes = append(e.Clashes, fmt.Sprintf("%s (%s is in use)", s, o))
	}
	return Layout{}, e
}

var (
	private = []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("172.16.0.0/12"),
		netip.MustParsePrefix("192.168.0.0/16"),
	}
	reserved = netip.MustParsePrefix("240.0.0.0/4")
	thisNet  = netip.MustParsePrefix("0.0.0.0/8")
)

// Private reports whether all of p is in the RFC 1918 ranges.
func Private(p netip.Prefix) bool {
	for _, r := range private {
		if r.Bits() <= p.Bits() && r.Contains(p.Addr()) {
			return true
		}
	}
	return false
}

// Check says what is wrong with head (an IPv4 address with prefix length)
// as the head node's address on the cluster network, or "" when nothing
// is. allowPublic lets it be outside the private ranges.
func Check(head netip.Prefix, allowPublic bool) string {
	a, sub := head.Addr(), head.Masked()
	switch {
	case !a.Is4():
		return "is not an IPv4 address"
	case sub.Bits() > 30 || sub.Bits() < 8:
		return fmt.Sprintf("has prefix length /%d; use /8 to /30", sub.Bits())
	case thisNet.Contains(a):
		return "is in 0.0.0.0/8, which means \"this network\" and is never a host's address"
	case a.IsLoopback():
		return "is a loopback address (127.0.0.0/8), which never leaves the head node"
	case a.IsLinkLocalUnicast():
		return "is a link-local address (169.254.0.0/16), which hosts pick for themselves"
	case a.IsMulticast():
		return "is a multicast address (224.0.0.0/4)"
	case reserved.Contains(a):
		return "is in the reserved range 240.0.0.0/4"
	case a == sub.Addr():
		return fmt.Sprintf("is the network address of %s itself; give the head node's own address, e.g. %s", sub, netip.PrefixFrom(a.Next(), sub.Bits()))
	case a == addr4(u32(sub.Addr())|(1<<(32-sub.Bits())-1)):
		return fmt.Sprintf("is the broadcast address of %s; give the head node's own address, e.g. %s", sub, netip.PrefixFrom(sub.Addr().Next(), sub.Bits()))
	case !allowPublic && !Private(sub):
		return fmt.Sprintf("is outside the private ranges 10.0.0.0/8, 172.16.0.0/12 and 192.168.0.0/16 (%s may be someone's public addresses); use a private subnet, or set subnet.allow_public = true", sub)
	}
	return ""
}
