package nat

import (
	"fmt"
	"net/netip"

	"github.com/headnode/headnode/netcfg/change"
	"github.com/headnode/headnode/netcfg/firewall"
	"github.com/vishvananda/netns"
)

// Firewall backend choices, as Options.Firewall and the configuration's
// [network] firewall take them.
const (
	FirewallAuto           = "auto"
	FirewallIPTablesNFT    = "iptables-nft"
	FirewallIPTablesLegacy = "iptables-legacy"
	FirewallNFTables       = "nftables"
)

// openFirewall opens the firewall backend for choice: "auto" (or ""),
// "iptables-nft", "iptables-legacy", "nftables", a path to an iptables
// program, or the older "nft" and "legacy". This is the one place a backend
// is chosen. An iptables choice without the program is
// firewall.ErrNoIPTables. flush is called after the masquerade rule was
// (re)installed.
func openFirewall(choice string, ns *netns.NsHandle, flush func(netip.Prefix) error) (Firewall, error) {
	openIPT := func(c string) (*firewall.IPTablesRunner, error) {
		r, err := firewall.OpenIPTablesRunner(c)
		if err != nil {
			return nil, err
		}
		r.FlushConntrack = flush
		return r, nil
	}
	nl := firewall.NewNFTablesRunner(ns)
	nl.FlushConntrack = flush
	switch choice {
	case "", FirewallAuto:
		a := &autoFirewall{nl: nl, open: func() (*firewall.IPTablesRunner, error) { return openIPT("auto") }}
		a.find()
		return a, nil
	case FirewallNFTables:
		return nl, nil
	case FirewallIPTablesNFT, "nft":
		return openIPT("nft")
	case FirewallIPTablesLegacy, "legacy":
		return openIPT("legacy")
	default:
		return openIPT(choice)
	}
}

// autoFirewall uses the iptables program when it is installed and nf_tables
// over netlink when it is not, and moves to the iptables program when it
// appears (checked on every Apply: a few stat calls while it is absent).
//
// Why move rather than keep our own table beside iptables' rules: a drop in
// any base chain is final, but an accept is not. Docker (which pulls in
// the iptables package) sets FORWARD's policy to DROP in iptables' own
// table, and only a rule in that chain can let the cluster's traffic past
// it; our table's accept cannot. With the program installed, our chains
// go where Docker's, ufw's and k3s' are, as the iptables backend always
// put them. The move installs the iptables rules first and deletes our
// table after, so the drop is never missing.
type autoFirewall struct {
	nl   *firewall.NFTablesRunner
	ipt  *firewall.IPTablesRunner // nil while the program is not installed
	open func() (*firewall.IPTablesRunner, error)
	// moved: since ipt was found, our nftables table has been removed.
	moved bool
}

// find opens the iptables program if it is installed now.
func (a *autoFirewall) find() {
	if a.ipt != nil {
		return
	}
	if r, err := a.open(); err == nil {
		a.ipt = r
	}
}

func (a *autoFirewall) current() Firewall {
	if a.ipt != nil {
		return a.ipt
	}
	return a.nl
}

func (a *autoFirewall) Backend() firewall.Backend { return a.current().Backend() }

func (a *autoFirewall) Apply(spec firewall.Spec) ([]change.Change, error) {
	a.find()
	if a.ipt == nil {
		return a.nl.Apply(spec)
	}
	changes, err := a.ipt.Apply(spec)
	if err != nil || a.moved {
		return changes, err
	}
	// An error here means nf_tables cannot be reached (a kernel with
	// x_tables only), so we never made a table there: nothing to move.
	removed, _ := a.nl.Clear()
	for _, c := range removed {
		c.Text = fmt.Sprintf("%s (now on %s)", c.Text, a.ipt.Backend())
		changes = append(changes, c)
	}
	a.moved = true
	return changes, nil
}

// Settle finishes the iptables program's last Apply (see
// firewall.IPTablesRunner.Settle); the netlink runner has nothing to
// finish.
func (a *autoFirewall) Settle() {
	if a.ipt != nil {
		a.ipt.Settle()
	}
}

// Close closes the nf_tables socket the netlink runner keeps.
func (a *autoFirewall) Close() error { return a.nl.Close() }

func (a *autoFirewall) Check(spec firewall.Spec) (firewall.Status, error) {
	return a.current().Check(spec)
}

// Clear removes what we made with either backend. With the iptables
// program in use, failing to reach nf_tables is no error (see Apply).
func (a *autoFirewall) Clear() ([]change.Change, error) {
	a.find()
	changes, err := a.nl.Clear()
	if a.ipt != nil {
		c, ierr := a.ipt.Clear()
		changes, err = append(changes, c...), ierr
	}
	return changes, err
}
