// Package subnet chooses the cluster's subnet and lays addresses out in it.
// It is pure: what is already in use on the head node (every address and
// route on every interface but the cluster's own), the list of candidate
// subnets and the number of nodes go in, a Layout comes out. Load and
// Save keep the choice in the state directory (RecordFile); reading the
// kernel's addresses and routes and moving the nodes when the choice
// changes are the daemon's.
//
// # Layout
//
// A subnet of 2^k addresses is split in halves: the head node is host 1,
// node pN is host 10+N, and the DHCP pool for machines without a fixed
// address is the upper half (at most MaxPool addresses, the top of it).
// That is what headnode always did in a /24 (p1 = .11, pool
// .128-.254), so an existing cluster keeps its addresses; the nodes fit
// while 10+N stays below the pool: 117 in a /24, 245 in a /23, 501 in a
// /22, 1013 in a /21 and 2037 in a /20. Size picks the smallest of those
// for a node count, never smaller than a /24: a smaller subnet would
// clash with nothing more often, but the pool still needs room for
// laptops, switches and PXE clients, and a /24 is what users recognise.
//
// # Candidates
//
// Default lists the subnets tried, in order, when the configuration says
// cluster_address = "auto". They avoid the ranges other software on a head
// node or its LAN takes by default: consumer routers' LANs (192.168.0.x,
// 192.168.1.x, 192.168.50.x of a whole router family, 192.168.8.x,
// 10.0.0.x), Docker's bridge and address pools (172.17.0.0/16 to
// 172.31.0.0/16, then 192.168.0.0/16 in /20s), k3s' pods and services
// (10.42.0.0/16, 10.43.0.0/16), Kubernetes' usual service range
// (10.96.0.0/12), Tailscale and carrier-grade NAT (100.64.0.0/10, which
// is not private anyway) and the link-local range. A candidate is taken
// only if, at the size needed, it overlaps no address and no route on the
// head's other interfaces, so a VPN or a bridge that does use one of them
// is stepped around.
//
// # Valid cluster addresses
//
// Check refuses what cannot work as the head's address on a LAN of its
// own: a network or broadcast address, the unspecified, loopback,
// link-local, multicast and reserved (240.0.0.0/4) ranges, and, unless
// allowed, anything outside the private ranges of RFC 1918 (10.0.0.0/8,
// 172.16.0.0/12, 192.168.0.0/16), where the nodes' traffic would collide
// with someone's public addresses.
package subnet
