// Package firewall owns headnode's part of the Linux firewall: two chains of
// our own, each jumped to once from its built-in chain and every rule in
// them tagged with the comment "headnode":
//
//   - HEADNODE-FWD in the filter table, from FORWARD: the cluster subnet may
//     reach the uplink, replies may come back, nothing new from the uplink
//     reaches a node whatever the FORWARD policy is;
//   - HEADNODE-POSTRT in the nat table, from POSTROUTING: the cluster subnet
//     is masqueraded out of the uplink.
//
// A Spec says what the rules must say. A backend makes the kernel match it
// (Apply, idempotent: with everything in place it only reads), reports how
// far it does (Check) and removes everything of ours (Clear). No backend
// touches other programs' rules or any chain's policy.
//
// IPTablesRunner is the backend that drives the iptables program through
// github.com/coreos/go-iptables, over whichever kernel interface that
// program uses (nf_tables or the legacy x_tables; OpenIPTables finds out
// from `iptables --version`). It compares chains by their `iptables -S`
// listing rather than with `iptables -C`. The consumer, package nat,
// declares the narrow interface it needs from a backend, so that a second
// one (nf_tables programmed directly over netlink) can stand beside this
// one, as tailscale/tailscale's util/linuxfw keeps an iptables and an
// nftables runner behind one interface.
//
// Beside the backend: WatchNFTables reports every change to the nf_tables
// ruleset, by whichever program, so that tampering is repaired within
// moments; FlushConntrack makes flows that began before the masquerade rule
// go through NAT from their next packet.
//
// Sources: iptables(8) and iptables-extensions(8) for the rule syntax, the
// -S listing and the comment, conntrack and MASQUERADE extensions;
// iptables' include/xtables.h for its exit status 4 (RESOURCE_PROBLEM,
// which includes giving up on the xtables lock); the kernel's
// include/uapi/linux/netfilter/nfnetlink.h for the NFNLGRP_NFTABLES
// multicast group.
package firewall
