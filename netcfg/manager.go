package netcfg

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Options says what the cluster network looks like.
type Options struct {
	ClusterInterface string
	UplinkInterface  string
	// ClusterAddress is put on the cluster interface (e.g. 192.168.50.1/24).
	// The zero value leaves the interface alone; the NATed subnet is then
	// whatever the interface's own address is in.
	ClusterAddress netip.Prefix
	// IPTables is the backend choice: "auto", "nft", "legacy" or a path.
	IPTables string
	// StateDir holds the ledger of what we changed.
	StateDir string
	// ProcSys overrides /proc/sys (tests).
	ProcSys string
	// Namespace, when set, is the network namespace to manage instead of
	// the process's own (tests and the simulator).
	Namespace *netns.NsHandle
	// IPT replaces the iptables runner (tests); Backend then names it.
	IPT     IPTables
	Backend Backend
}

// Manager applies and removes the head node's network setup: IPv4
// forwarding, the cluster address and the NAT rules. Apply is idempotent;
// Clear is its inverse and touches only what the ledger says we changed.
type Manager struct {
	opts    Options
	ipt     IPTables
	backend Backend
	nat     *NAT
	fwd     Forwarding
	h       *netlink.Handle
	thread  *nsThread // nil: work in the caller's namespace
}

// NewManager opens iptables and netlink. It fails with ErrNoIPTables when
// iptables is not installed.
func NewManager(o Options) (*Manager, error) {
	m := &Manager{opts: o, ipt: o.IPT, backend: o.Backend, fwd: Forwarding{ProcSys: o.ProcSys}}
	if m.ipt == nil {
		ipt, backend, err := OpenIPTables(o.IPTables)
		if err != nil {
			return nil, err
		}
		m.ipt, m.backend = ipt, backend
	}
	var err error
	if o.Namespace != nil {
		if m.thread, err = newNSThread(*o.Namespace); err != nil {
			return nil, fmt.Errorf("enter network namespace: %w", err)
		}
	}
	if m.h, err = newHandle(o.Namespace); err != nil {
		m.Close()
		return nil, fmt.Errorf("netlink: %w", err)
	}
	m.nat = NewNAT(m.ipt)
	m.nat.FlushConntrack = func(p netip.Prefix) error { return flushConntrack(m.h, p) }
	return m, nil
}

// Close releases the netlink handle and the namespace thread.
func (m *Manager) Close() {
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

// Namespace returns the managed namespace, nil for the process's own.
func (m *Manager) Namespace() *netns.NsHandle { return m.opts.Namespace }

// Backend reports the iptables backend in use.
func (m *Manager) Backend() Backend { return m.backend }

// IPTables returns the runner, for counting executions.
func (m *Manager) IPTables() IPTables { return m.ipt }

// SetFlushConntrack replaces the conntrack flush (tests, and namespaces the
// process is not in).
func (m *Manager) SetFlushConntrack(f func(netip.Prefix) error) { m.nat.FlushConntrack = f }

// Result says what Apply did and what it is still waiting for.
type Result struct {
	Changes []Change
	// Waiting lists what could not be done yet and why, in words: a
	// missing interface is a normal state at boot, not an error.
	Waiting []string
	// Subnet is the cluster subnet being NATed (invalid while waiting).
	Subnet netip.Prefix
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
		res.Changes = append(res.Changes, Change{Kind: ChangeForwarding, Text: "enabled IPv4 forwarding"})
	}

	cluster, err := readLink(m.h, m.opts.ClusterInterface)
	if err != nil {
		return res, fmt.Errorf("read %s: %w", m.opts.ClusterInterface, err)
	}
	subnet := m.opts.ClusterAddress.Masked()
	if !cluster.Exists {
		res.Waiting = append(res.Waiting, fmt.Sprintf("cluster interface %s does not exist yet", m.opts.ClusterInterface))
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
		changes, err := m.nat.Apply(NATSpec{ClusterInterface: m.opts.ClusterInterface, UplinkInterface: m.opts.UplinkInterface, Subnet: subnet})
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

// ensureClusterAddress puts the configured address on the cluster
// interface and brings the interface up. If an earlier configuration had
// us add a different address there, that one is removed.
func (m *Manager) ensureClusterAddress(led *Ledger) ([]Change, error) {
	var changes []Change
	link, err := linkByName(m.h, m.opts.ClusterInterface)
	if err != nil || link == nil {
		return nil, err
	}
	want := m.opts.ClusterAddress
	addrs, err := addrList(m.h, link, netlink.FAMILY_V4)
	if err != nil {
		return nil, err
	}
	present := false
	for _, a := range addrs {
		p, ok := prefixOf(a)
		if !ok {
			continue
		}
		if p == want {
			present = true
			continue
		}
		if led.AddressAdded == p.String() && led.AddressInterface == m.opts.ClusterInterface {
			if err := m.h.AddrDel(link, &a); err != nil {
				return changes, fmt.Errorf("remove old cluster address %s from %s: %w", p, m.opts.ClusterInterface, err)
			}
			changes = append(changes, Change{Kind: ChangeAddress, Text: fmt.Sprintf("removed %s from %s (no longer configured)", p, m.opts.ClusterInterface)})
			led.AddressAdded, led.AddressInterface = "", ""
		}
	}
	if !present {
		a := &netlink.Addr{IPNet: &net.IPNet{IP: want.Addr().AsSlice(), Mask: net.CIDRMask(want.Bits(), 32)}}
		if err := m.h.AddrReplace(link, a); err != nil {
			return changes, fmt.Errorf("add %s to %s: %w", want, m.opts.ClusterInterface, err)
		}
		led.AddressAdded, led.AddressInterface = want.String(), m.opts.ClusterInterface
		changes = append(changes, Change{Kind: ChangeAddress, Text: fmt.Sprintf("added %s to %s", want, m.opts.ClusterInterface)})
	}
	if link.Attrs().Flags&net.FlagUp == 0 {
		if err := m.h.LinkSetUp(link); err != nil {
			return changes, fmt.Errorf("set %s up: %w", m.opts.ClusterInterface, err)
		}
		changes = append(changes, Change{Kind: ChangeAddress, Text: fmt.Sprintf("set %s up", m.opts.ClusterInterface)})
	}
	return changes, nil
}

func prefixOf(a netlink.Addr) (netip.Prefix, bool) {
	if a.IPNet == nil {
		return netip.Prefix{}, false
	}
	ip, ok := netip.AddrFromSlice(a.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := a.Mask.Size()
	return netip.PrefixFrom(ip.Unmap(), ones), true
}

// Status is a read-only report of the network setup.
type Status struct {
	Backend      Backend   `json:"backend"`
	Forwarding   bool      `json:"forwarding"`
	Rules        NATStatus `json:"rules"`
	RulesPresent bool      `json:"rules_present"`
	Subnet       string    `json:"subnet,omitempty"`
	Cluster      LinkState `json:"cluster"`
	Uplink       LinkState `json:"uplink"`
	Cleared      bool      `json:"cleared"`
	Waiting      []string  `json:"waiting,omitempty"`
}

// Status reads the current state without changing anything.
func (m *Manager) Status() (st Status, err error) {
	m.do(func() { st, err = m.status() })
	return st, err
}

func (m *Manager) status() (Status, error) {
	st := Status{Backend: m.backend}
	var errs []error
	var err error
	if st.Forwarding, err = m.fwd.Enabled(); err != nil {
		errs = append(errs, err)
	}
	led, _ := LoadLedger(m.opts.StateDir)
	st.Cleared = led.Cleared
	if st.Cluster, err = readLink(m.h, m.opts.ClusterInterface); err != nil {
		errs = append(errs, err)
	}
	if st.Uplink, err = readLink(m.h, m.opts.UplinkInterface); err != nil {
		errs = append(errs, err)
	}
	for _, l := range []LinkState{st.Cluster, st.Uplink} {
		if !l.Exists {
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
		st.Rules, err = m.nat.Check(NATSpec{ClusterInterface: m.opts.ClusterInterface, UplinkInterface: m.opts.UplinkInterface, Subnet: subnet})
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
func (m *Manager) Clear() (changes []Change, err error) {
	m.do(func() { changes, err = m.clear() })
	return changes, err
}

func (m *Manager) clear() ([]Change, error) {
	led, lerr := LoadLedger(m.opts.StateDir)
	var errs []error
	if lerr != nil {
		errs = append(errs, lerr)
	}
	changes, err := m.nat.Clear()
	if err != nil {
		errs = append(errs, err)
	}
	subnet := m.opts.ClusterAddress.Masked()
	if led.AddressAdded != "" {
		if p, err := netip.ParsePrefix(led.AddressAdded); err == nil {
			if !subnet.IsValid() {
				subnet = p.Masked()
			}
			link, err := linkByName(m.h, led.AddressInterface)
			if err != nil {
				errs = append(errs, err)
			} else if link != nil {
				a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 32)}}
				if err := m.h.AddrDel(link, a); err != nil && !isNoSuchAddress(err) {
					errs = append(errs, fmt.Errorf("remove %s from %s: %w", p, led.AddressInterface, err))
				} else if err == nil {
					changes = append(changes, Change{Kind: ChangeAddress, Text: fmt.Sprintf("removed %s from %s", p, led.AddressInterface)})
				}
			}
		}
		led.AddressAdded, led.AddressInterface = "", ""
	}
	if subnet.IsValid() && m.nat.FlushConntrack != nil {
		if err := m.nat.FlushConntrack(subnet); err == nil {
			changes = append(changes, Change{Kind: ChangeConntrack, Text: "flushed conntrack entries from " + subnet.String()})
		}
	}
	if led.ForwardingChanged {
		links, err := linkList(m.h)
		var names []string
		for _, l := range links {
			names = append(names, l.Attrs().Name)
		}
		sort.Strings(names)
		if err != nil {
			errs = append(errs, err)
		} else if other := otherForwarder(names); other != "" {
			changes = append(changes, Change{Kind: ChangeForwarding, Text: fmt.Sprintf("left IPv4 forwarding on: %s (another program) needs it", other)})
			led.ForwardingChanged = false
		} else if err := m.fwd.Disable(); err != nil {
			errs = append(errs, err)
		} else {
			changes = append(changes, Change{Kind: ChangeForwarding, Text: "disabled IPv4 forwarding (we had enabled it)"})
			led.ForwardingChanged = false
		}
	}
	led.Cleared = true
	if err := led.Save(m.opts.StateDir); err != nil {
		errs = append(errs, fmt.Errorf("save state: %w", err))
	}
	return changes, errors.Join(errs...)
}

func isNoSuchAddress(err error) bool { return errors.Is(err, unix.EADDRNOTAVAIL) }
