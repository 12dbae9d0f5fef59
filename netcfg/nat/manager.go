package nat

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"

	"github.com/headnode/headnode/netcfg/change"
	"github.com/headnode/headnode/netcfg/firewall"
	"github.com/headnode/headnode/netcfg/gateway"
	"github.com/headnode/headnode/netcfg/links"
	"github.com/headnode/headnode/netcfg/netlinksafe"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Firewall is what the Manager needs from a firewall backend: make our
// rules match a spec (idempotent; with everything in place it only reads,
// so it doubles as the tamper check), report how far they do, remove
// everything of ours, and say which backend it is. Implemented by
// *firewall.IPTablesRunner (the iptables program), *firewall.NFTablesRunner
// (nf_tables over netlink) and autoFirewall (the first while the program
// is installed, else the second).
type Firewall interface {
	Apply(firewall.Spec) ([]change.Change, error)
	Check(firewall.Spec) (firewall.Status, error)
	Clear() ([]change.Change, error)
	Backend() firewall.Backend
}

// settler is a Firewall whose Apply leaves work for later that no caller
// needs to wait for (the iptables runner's read-back): Manager.Settle does
// it.
type settler interface{ Settle() }

var (
	_ settler  = (*firewall.IPTablesRunner)(nil)
	_ settler  = (*autoFirewall)(nil)
	_ Firewall = (*firewall.IPTablesRunner)(nil)
	_ Firewall = (*firewall.NFTablesRunner)(nil)
	_ Firewall = (*autoFirewall)(nil)
)

// Options says what the cluster network looks like.
type Options struct {
	ClusterInterface string
	// UplinkInterface is only reported in Status: the rules do not depend
	// on which interface is the uplink.
	UplinkInterface string
	// ClusterAddress is put on the cluster interface (e.g. 192.168.50.1/24).
	// The zero value leaves the interface alone; the NATed subnet is then
	// whatever the interface's own address is in.
	ClusterAddress netip.Prefix
	// Hold keeps the address off the cluster interface while the rules
	// for its subnet are in place: the daemon is still checking that the
	// interface is not a LAN.
	Hold bool
	// Firewall is the backend choice: "auto" (the iptables program when
	// it is installed, else nf_tables over netlink), "iptables-nft",
	// "iptables-legacy", "nftables" (netlink), or a path to an iptables
	// program. "" is "auto".
	Firewall string
	// StateDir holds the ledger of what we changed.
	StateDir string
	// ProcSys overrides /proc/sys (tests).
	ProcSys string
	// Namespace, when set, is the network namespace to manage instead of
	// the process's own (tests and the simulator).
	Namespace *netns.NsHandle
}

// Desired is the part of Options that may change while the Manager runs:
// the cluster side, which moves when the cluster is renumbered or its
// interface is found anew.
type Desired struct {
	ClusterInterface string
	ClusterAddress   netip.Prefix
	Hold             bool // see Options.Hold
}

// Manager applies and removes the head node's network setup: IPv4
// forwarding, the cluster address and the NAT rules. Apply is idempotent;
// Clear is its inverse and touches only what the ledger says we changed.
type Manager struct {
	opts   Options
	fw     Firewall
	fwd    gateway.Forwarding
	h      *netlink.Handle
	thread *nsThread // nil: work in the caller's namespace
	// released: SetDesired gave up the cluster side; Apply removes our
	// address from it.
	released bool
}

// NewManager opens the firewall backend and netlink. It fails with
// firewall.ErrNoIPTables when an iptables backend is asked for and the
// program is not installed.
func NewManager(o Options) (*Manager, error) {
	m := &Manager{opts: o, fwd: gateway.Forwarding{ProcSys: o.ProcSys}}
	var err error
	if o.Namespace != nil {
		if m.thread, err = newNSThread(*o.Namespace); err != nil {
			return nil, fmt.Errorf("enter network namespace: %w", err)
		}
	}
	if m.h, err = netlinksafe.Open(o.Namespace); err != nil {
		m.Close()
		return nil, fmt.Errorf("netlink: %w", err)
	}
	if m.fw, err = openFirewall(o.Firewall, o.Namespace, m.flushConntrack); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// SetDesired changes the cluster side the next Apply makes true: the rules
// follow the new interface and subnet in one transaction, and an address
// we had added on the old interface is removed. Not to be called
// concurrently with the Manager's other methods (Keeper.SetDesired
// serializes it).
func (m *Manager) SetDesired(d Desired) {
	m.released = m.opts.ClusterInterface != "" && d.ClusterInterface == ""
	m.opts.ClusterInterface, m.opts.ClusterAddress, m.opts.Hold = d.ClusterInterface, d.ClusterAddress, d.Hold
}

// Close releases the netlink handle and the namespace thread.
func (m *Manager) Close() {
	if c, ok := m.fw.(interface{ Close() error }); ok {
		c.Close() // the nf_tables socket the netlink backend keeps open
	}
	if m.h != nil {
		m.h.Close()
	}
	if m.thread != nil {
		m.thread.close()
	}
}

// do runs f in the managed namespace.
func (m *Manager) do(f func()) {
	if m.thread == nil {
		f()
		return
	}
	m.thread.do(f)
}

// flushConntrack deletes the conntrack entries from subnet in the managed
// namespace. When the namespace tracks no connection at all (as at boot),
// there is nothing to delete, and the dump is skipped: the kernel walks its
// whole conntrack hash for it, shared by all namespaces (9 ms at the
// 262144 buckets of a 24 GB machine, with nothing in it).
func (m *Manager) flushConntrack(subnet netip.Prefix) error {
	if n, err := firewall.ConntrackCount(m.opts.ProcSys); err == nil && n == 0 {
		return nil
	}
	return firewall.FlushConntrack(m.h, subnet)
}

// Backend reports the firewall backend in use; with the automatic choice
// it changes when the iptables program is installed.
func (m *Manager) Backend() firewall.Backend { return m.fw.Backend() }

// Result says what Apply did and what it is still waiting for.
type Result struct {
	Changes []change.Change
	// Waiting lists what could not be done yet and why, in words: a
	// missing interface is a normal state at boot, not an error.
	Waiting []string
	// Subnet is the cluster subnet being NATed (invalid while waiting).
	Subnet netip.Prefix
}

// Settle does what the last Apply left for later and nobody waits for:
// the iptables runner's read-back of the chains it wrote. The keeper calls
// it after reporting; without it the next Apply or Status does it first.
func (m *Manager) Settle() {
	if s, ok := m.fw.(settler); ok {
		m.do(s.Settle)
	}
}

// Apply makes the system match Options. The ledger's "cleared" mark is
// removed: an explicit apply re-enables NAT.
func (m *Manager) Apply() (res Result, err error) {
	m.do(func() { res, err = m.apply() })
	return res, err
}

func (m *Manager) apply() (Result, error) {
	var res Result
	led, lerr := LoadLedger(m.opts.StateDir)
	if m.opts.ClusterInterface == "" {
		// The daemon has not chosen the cluster side, or no longer has
		// one (it turned out to be a LAN): nothing is added anywhere, and
		// when it was given up, an address we had added goes, so that a
		// LAN never keeps ours. (At start, before the first choice, an
		// address from the last run stays: the nodes keep their gateway
		// across a restart.)
		res.Waiting = append(res.Waiting, "no cluster interface chosen yet")
		if old, err := netip.ParsePrefix(led.AddressAdded); m.released && lerr == nil && err == nil {
			ch, err := gateway.RemoveAddress(m.h, led.AddressInterface, old)
			res.Changes = append(res.Changes, ch...)
			if err != nil {
				return res, err
			}
			led.AddressAdded, led.AddressInterface = "", ""
			if err := led.Save(m.opts.StateDir); err != nil {
				return res, fmt.Errorf("save state: %w", err)
			}
		}
		return res, nil
	}
	if lerr != nil {
		// A damaged ledger must not stop NAT; we only lose the record of
		// what to undo on clear, which we say.
		res.Waiting = append(res.Waiting, fmt.Sprintf("state file unreadable, starting a new one: %v", lerr))
	}
	before := led

	changed, err := m.fwd.Enable()
	if err != nil {
		return res, err
	}
	if changed {
		led.ForwardingChanged = true
		res.Changes = append(res.Changes, change.Change{Kind: change.Forwarding, Text: "enabled IPv4 forwarding"})
	}

	cluster, err := links.Read(m.h, m.opts.ClusterInterface)
	if err != nil {
		return res, fmt.Errorf("read %s: %w", m.opts.ClusterInterface, err)
	}
	subnet := m.opts.ClusterAddress.Masked()
	if !cluster.Exists {
		res.Waiting = append(res.Waiting, fmt.Sprintf("cluster interface %s does not exist yet", m.opts.ClusterInterface))
	} else if m.opts.Hold && m.opts.ClusterAddress.IsValid() {
		res.Waiting = append(res.Waiting, fmt.Sprintf("%s is being checked before our address goes on it", m.opts.ClusterInterface))
	} else if m.opts.ClusterAddress.IsValid() {
		ch, err := m.ensureClusterAddress(&led)
		res.Changes = append(res.Changes, ch...)
		if err != nil {
			return res, err
		}
	}
	if !subnet.IsValid() {
		if a, ok := cluster.Address(); ok {
			subnet = a.Masked()
		} else if cluster.Exists {
			res.Waiting = append(res.Waiting, fmt.Sprintf("cluster interface %s has no IPv4 address to take the subnet from", m.opts.ClusterInterface))
		}
	}
	if subnet.IsValid() {
		res.Subnet = subnet
		changes, err := m.fw.Apply(m.spec(subnet))
		res.Changes = append(res.Changes, changes...)
		if err != nil {
			return res, err
		}
	}
	led.Cleared = false
	if led != before || lerr != nil {
		if err := led.Save(m.opts.StateDir); err != nil {
			return res, fmt.Errorf("save state: %w", err)
		}
	}
	return res, nil
}

func (m *Manager) spec(subnet netip.Prefix) firewall.Spec {
	return firewall.Spec{ClusterInterface: m.opts.ClusterInterface, Subnet: subnet}
}

// ensureClusterAddress puts the configured address on the cluster
// interface and brings the interface up. If an earlier configuration had
// us add a different address there, that one is removed. The ledger
// follows what was done.
func (m *Manager) ensureClusterAddress(led *Ledger) ([]change.Change, error) {
	var ours netip.Prefix
	var changes []change.Change
	if led.AddressInterface == m.opts.ClusterInterface {
		ours, _ = netip.ParsePrefix(led.AddressAdded)
	} else if old, err := netip.ParsePrefix(led.AddressAdded); err == nil {
		// The cluster moved to another interface: what we had added on
		// the old one goes.
		ch, err := gateway.RemoveAddress(m.h, led.AddressInterface, old)
		changes = append(changes, ch...)
		if err != nil {
			return changes, err
		}
		led.AddressAdded, led.AddressInterface = "", ""
	}
	r, err := gateway.EnsureAddress(m.h, m.opts.ClusterInterface, m.opts.ClusterAddress, ours)
	if r.RemovedOld {
		led.AddressAdded, led.AddressInterface = "", ""
	}
	if r.Added {
		led.AddressAdded, led.AddressInterface = m.opts.ClusterAddress.String(), m.opts.ClusterInterface
	}
	return append(changes, r.Changes...), err
}

// Status is a read-only report of the network setup.
type Status struct {
	Backend      firewall.Backend `json:"backend"`
	Forwarding   bool             `json:"forwarding"`
	Rules        firewall.Status  `json:"rules"`
	RulesPresent bool             `json:"rules_present"`
	Subnet       string           `json:"subnet,omitempty"`
	Cluster      links.State      `json:"cluster"`
	Uplink       links.State      `json:"uplink"`
	Cleared      bool             `json:"cleared"`
	Waiting      []string         `json:"waiting,omitempty"`
}

// Status reads the current state without changing anything.
func (m *Manager) Status() (st Status, err error) {
	m.do(func() { st, err = m.status() })
	return st, err
}

func (m *Manager) status() (Status, error) {
	st := Status{Backend: m.fw.Backend()}
	var errs []error
	var err error
	if st.Forwarding, err = m.fwd.Enabled(); err != nil {
		errs = append(errs, err)
	}
	led, _ := LoadLedger(m.opts.StateDir)
	st.Cleared = led.Cleared
	for _, l := range []struct {
		name string
		st   *links.State
	}{{m.opts.ClusterInterface, &st.Cluster}, {m.opts.UplinkInterface, &st.Uplink}} {
		if l.name == "" {
			st.Waiting = append(st.Waiting, "no interface chosen yet")
			continue
		}
		if *l.st, err = links.Read(m.h, l.name); err != nil {
			errs = append(errs, err)
		}
	}
	for _, l := range []links.State{st.Cluster, st.Uplink} {
		if !l.Exists && l.Name != "" {
			st.Waiting = append(st.Waiting, fmt.Sprintf("interface %s does not exist yet", l.Name))
		}
	}
	subnet := m.opts.ClusterAddress.Masked()
	if !subnet.IsValid() {
		if a, ok := st.Cluster.Address(); ok {
			subnet = a.Masked()
		}
	}
	if subnet.IsValid() {
		st.Subnet = subnet.String()
		st.Rules, err = m.fw.Check(m.spec(subnet))
		if err != nil {
			errs = append(errs, err)
		}
		st.RulesPresent = st.Rules.Present()
	}
	return st, errors.Join(errs...)
}

// Clear removes everything the ledger says we added: our rules and chains,
// the cluster address, and IPv4 forwarding unless another program (Docker,
// k3s, Tailscale, ...) uses it. The ledger then records "cleared", which
// keeps the daemon from re-applying until `nat apply`.
func (m *Manager) Clear() (changes []change.Change, err error) {
	m.do(func() { changes, err = m.clear() })
	return changes, err
}

func (m *Manager) clear() ([]change.Change, error) {
	led, lerr := LoadLedger(m.opts.StateDir)
	var errs []error
	if lerr != nil {
		errs = append(errs, lerr)
	}
	changes, err := m.fw.Clear()
	if err != nil {
		errs = append(errs, err)
	}
	subnet := m.opts.ClusterAddress.Masked()
	if led.AddressAdded != "" {
		if p, err := netip.ParsePrefix(led.AddressAdded); err == nil {
			if !subnet.IsValid() {
				subnet = p.Masked()
			}
			ch, err := gateway.RemoveAddress(m.h, led.AddressInterface, p)
			changes = append(changes, ch...)
			if err != nil {
				errs = append(errs, err)
			}
		}
		led.AddressAdded, led.AddressInterface = "", ""
	}
	if subnet.IsValid() {
		if err := m.flushConntrack(subnet); err == nil {
			changes = append(changes, change.Change{Kind: change.Conntrack, Text: "flushed conntrack entries from " + subnet.String()})
		}
	}
	if led.ForwardingChanged {
		ls, err := netlinksafe.LinkList(m.h)
		var names []string
		for _, l := range ls {
			names = append(names, l.Attrs().Name)
		}
		sort.Strings(names)
		if err != nil {
			errs = append(errs, err)
		} else if other := gateway.OtherForwarder(names); other != "" {
			changes = append(changes, change.Change{Kind: change.Forwarding, Text: fmt.Sprintf("left IPv4 forwarding on: %s (another program) needs it", other)})
			led.ForwardingChanged = false
		} else if err := m.fwd.Disable(); err != nil {
			errs = append(errs, err)
		} else {
			changes = append(changes, change.Change{Kind: change.Forwarding, Text: "disabled IPv4 forwarding (we had enabled it)"})
			led.ForwardingChanged = false
		}
	}
	led.Cleared = true
	if err := led.Save(m.opts.StateDir); err != nil {
		errs = append(errs, fmt.Errorf("save state: %w", err))
	}
	return changes, errors.Join(errs...)
}
