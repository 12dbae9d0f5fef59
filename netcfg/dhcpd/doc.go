// Package dhcpd is the head node's DHCPv4 server for its cluster network.
//
// It gives every node an address, the head node as router, resolvers and,
// for nodes, the host name pN. Node pN always gets the same address: the
// one reserved for its name, chosen when its MAC address is pinned to pN,
// when it is a ClusterCTRL USB gadget (MAC 00:22:82:ff:ff:NN names node
// pNN), or when it asks with host name pN. Everyone else gets an address
// from a pool and keeps it across renewals and restarts: leases are kept
// in a file. The server is authoritative for its subnet: a client asking
// for an address it cannot have is told so (DHCPNAK) and starts over.
//
// The lease table is kept on disk as a snapshot and a journal of changes,
// written in batches outside the server's lock (store.go: what a crash can
// lose, and why a renewal is usually not written at all). Per-client rate
// limits (limits.go) keep a flooder from starving anyone else; a ping
// check (ping.go) keeps an address some machine uses without a lease from
// being offered. Requests through a relay agent on the subnet (giaddr)
// are answered through the relay (RFC 2131 section 4.1).
//
// Packets that are malformed or make no sense for this server are dropped
// and counted by reason, never answered and never fatal. Replies are sent
// to the client's address when it has one and broadcast otherwise, which
// RFC 2131 allows and every client accepts; no ARP entries are forged.
//
// Before serving, Service probes the network for another DHCP server
// (Probe) and stays off if one answers; while serving it notices clients
// that chose another server.
//
// The wire format is github.com/insomniacslk/dhcp's dhcpv4 package; its
// server4 package provides the interface-bound sockets.
//
// # Specifications
//
// RFC 2131 (the protocol): https://www.rfc-editor.org/rfc/rfc2131
//
// RFC 2132 (options): https://www.rfc-editor.org/rfc/rfc2132
//
// RFC 3046 (relay agent information, option 82): https://www.rfc-editor.org/rfc/rfc3046
package dhcpd
