// Package firewall owns headnode's part of the Linux firewall: two chains of
// our own, each jumped to once from its built-in chain and every rule in
// them tagged with the comment "headnode":
//
//   - HEADNODE-FWD in the filter table, from FORWARD: the cluster subnet may
//     reach anything beyond the cluster interface, replies may come back,
//     and nothing new reaches the cluster interface from any other
//     interface, whatever the FORWARD policy is;
//   - HEADNODE-POSTRT in the nat table, from POSTROUTING: the cluster subnet
//     is masqueraded out of whichever other interface it leaves by.
//
// The uplink appears nowhere in the rules: a second way out (Wi-Fi beside
// Ethernet) is closed like the first, and when the default route moves the
// rules stay right without a rewrite.
//
// A Spec says what the rules must say. A backend makes the kernel match it
// (Apply, idempotent: with everything in place it only reads), reports how
// far it does (Check) and removes everything of ours (Clear). No backend
// touches other programs' rules or any chain's policy.
//
// IPTablesRunner is the backend that drives the iptables program, over
// whichever kernel interface that program uses (nf_tables or the legacy
// x_tables; OpenIPTables finds out from `iptables --version`). It reads
// with one iptables-save and writes with one iptables-restore --noflush,
// which commits each table as one transaction, so our chains are replaced
// whole and the DROP is never missing while they are rewritten. It compares
// chains by their listing rather than with `iptables -C`, and learns how
// this iptables prints our rules only from a read-back that holds exactly
// the rules it wrote (their targets, interfaces and addresses); the
// read-back is left to Settle, which the NAT keeper calls once it has
// reported the write. (github.com/coreos/go-iptables, which it used before,
// runs one iptables process per rule and has no restore.)
//
// NFTablesRunner is the backend that programs nf_tables directly over
// netlink (github.com/google/nftables), for systems without the iptables
// program: a table of its own, changed in one netlink batch. The consumer,
// package nat, declares the narrow interface it needs from a backend, as
// tailscale/tailscale's util/linuxfw keeps an iptables and an nftables
// runner behind one interface.
//
// Beside the backend: WatchNFTables reports every change to the nf_tables
// ruleset, by whichever program, so that tampering is repaired within
// moments; FlushConntrack makes flows that began before the masquerade rule
// go through NAT from their next packet.
//
// Sources: iptables(8) and iptables-extensions(8) for the rule syntax, the
// -S listing and the comment, conntrack and MASQUERADE extensions;
// iptables-restore(8) for --noflush (a declared user chain is created or
// flushed, each table committed at its COMMIT line);
// iptables' include/xtables.h for its exit status 4 (RESOURCE_PROBLEM,
// which includes giving up on the xtables lock); the kernel's
// include/uapi/linux/netfilter/nfnetlink.h for the NFNLGRP_NFTABLES
// multicast group.
package firewall
