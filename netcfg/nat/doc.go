// Package nat applies the head node's desired network state and keeps it
// applied: IPv4 forwarding and the cluster's gateway address (package
// gateway), and our firewall chains (package firewall, through the
// Firewall interface declared here), in that order, as one idempotent
// Apply.
//
// What Apply changed that was not there before (forwarding switched on,
// the address added) is written to a ledger in the state directory, so that
// Clear undoes exactly that and nothing the user or another program set:
// forwarding stays on when another program (Docker, a CNI plugin,
// Tailscale, ...) has interfaces that need it. Clear also leaves a mark that
// keeps the daemon from re-applying until the next explicit Apply (`headnode
// nat clear` and `headnode nat apply`).
//
// The firewall backend is chosen in one place (openFirewall): the iptables
// program over nf_tables or x_tables, or nf_tables programmed over netlink
// when no iptables program is installed; the automatic choice moves to the
// iptables program when it appears (see autoFirewall for why).
//
// Keeper runs a Manager on one goroutine: it applies at start, repairs
// after tampering (nf_tables change events, or a poll for the legacy
// backend, rate-limited when another program keeps fighting), and serves
// Apply, Clear, Status and SetDesired (a new cluster interface or address,
// e.g. after the cluster is renumbered) requests in between so that they
// never interleave with a repair. A Manager for another network namespace does its work on
// an OS thread that has joined it, since the iptables processes and
// /proc/sys/net both resolve through the calling thread's namespace.
package nat
