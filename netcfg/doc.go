// Package netcfg holds the head node's network configuration, one job per
// package:
//
//   - nat: the desired network state as one idempotent Apply (forwarding,
//     the cluster address, the firewall), the ledger that lets Clear undo
//     exactly what Apply changed, and the Keeper that repairs tampering;
//   - firewall: our rules, the listing comparison, the two backends behind
//     nat.Firewall (the iptables program, through one iptables-save and one
//     iptables-restore, and nf_tables over netlink), nf_tables change
//     events and the conntrack flush;
//   - gateway: IPv4 forwarding and the gateway address on the cluster
//     interface;
//   - links: the state of every interface, read once or followed through
//     netlink;
//   - bridge: the ClusterHAT bridge of the nodes' USB gadget links;
//   - dhcpd: the nodes' DHCP server;
//   - dhcpwatch: other DHCP servers on the cluster side, seen from a
//     packet socket, and the gate that keeps ours silent while one answers;
//   - roles: which interface is the uplink and which the cluster side, a
//     pure decision from links, default routes and the board;
//   - routes: the IPv4 default routes, followed through netlink (and a
//     signal at any route change, for the cluster subnet's check);
//   - echofilter: the socket filter that gives each raw ICMP socket (the
//     node probe's, the DHCP ping check's) only its own echo replies;
//   - change: the record of what any of them changed;
//   - netlinksafe: netlink handles in a namespace, with interrupted dumps
//     retried and missing links as nil;
//   - sandbox: network namespaces and veth pairs for tests and `headnode
//     sim`.
//
// This package itself has no code.
package netcfg
