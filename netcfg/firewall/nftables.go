package firewall

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/headnode/headnode/netcfg/change"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Names of what NFTablesRunner owns: one table of its own, with one base
// chain per hook. Another program's accept (in its own table) does not
// stop our drop, and our accept does not stop a drop in another table's
// base chain: every base chain on a hook sees the packet, and a drop in
// any of them is final. So ours drops what must never reach the cluster,
// whatever else is installed, and accepts only for its own chain.
const (
	NFTTable            = "headnode"
	NFTForwardChain     = "forward"
	NFTPostroutingChain = "postrouting"
)

// NFTablesRunner is the firewall backend that programs nf_tables directly
// over netlink, with no iptables program: table ip headnode, with
//
//	chain forward { type filter hook forward priority filter; policy accept;
//		iifname CLUSTER ip saddr SUBNET accept
//		oifname CLUSTER ct state established,related accept
//		iifname != CLUSTER oifname CLUSTER drop }
//	chain postrouting { type nat hook postrouting priority srcnat; policy accept;
//		oifname != CLUSTER ip saddr SUBNET masquerade }
//
// (the same rules as IPTablesRunner's chains, as nft(8) would print them).
// Every write replaces the whole table in one netlink batch, which the
// kernel commits as one transaction: no moment without the drop. Every
// rule carries the comment "headnode" (nftables' rule user data, which nft
// shows as comment "headnode").
type NFTablesRunner struct {
	// FlushConntrack deletes conntrack entries originating in subnet,
	// after the masquerade rule was (re)installed; see IPTablesRunner.
	FlushConntrack func(subnet netip.Prefix) error

	ns *netns.NsHandle
	mu sync.Mutex
	// c is the netlink socket, kept open between calls (nil until the
	// first, and after a failure): closing a NETLINK_NETFILTER socket
	// takes the kernel 7-11 ms on the test machine, most of a cold apply,
	// where opening one takes 0.2-0.5 ms.
	c *nftables.Conn
	// canonical is, per chain, how the kernel returned our rules after we
	// last wrote them (learned only from a read-back holding exactly our
	// rules), against our own rendering of the rules written.
	canonical map[string]printed
}

// NewNFTablesRunner returns a runner for the network namespace ns (nil: the
// caller's).
func NewNFTablesRunner(ns *netns.NsHandle) *NFTablesRunner {
	return &NFTablesRunner{ns: ns, canonical: map[string]printed{}}
}

// Backend reports BackendNetlink.
func (n *NFTablesRunner) Backend() Backend { return BackendNetlink }

// conn returns the runner's netlink socket (mu held), opening it if
// there is none: one lasting socket (AsLasting) for every call, since
// without it each message would open its own, which in another namespace
// costs a thread switch into it each time.
func (n *NFTablesRunner) conn() (*nftables.Conn, error) {
	if n.c != nil {
		return n.c, nil
	}
	opts := []nftables.ConnOption{nftables.AsLasting()}
	if n.ns != nil {
		opts = append(opts, nftables.WithNetNSFd(int(*n.ns)))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("nftables netlink: %w", err)
	}
	n.c = c
	return c, nil
}

// keep keeps the socket after a call that went well; after a failure it
// is closed, and the next call opens a new one (a socket whose receive
// queue overflowed, say, is not trusted again).
func (n *NFTablesRunner) keep(err error) {
	if err != nil && n.c != nil {
		n.c.CloseLasting()
		n.c = nil
	}
}

// Close closes the netlink socket; a later call opens a new one.
func (n *NFTablesRunner) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.c == nil {
		return nil
	}
	err := n.c.CloseLasting()
	n.c = nil
	return err
}

var nftTable = &nftables.Table{Name: NFTTable, Family: nftables.TableFamilyIPv4}

// nftChains are our base chains.
func nftChains() []*nftables.Chain {
	accept := nftables.ChainPolicyAccept
	return []*nftables.Chain{
		{Name: NFTForwardChain, Table: nftTable, Type: nftables.ChainTypeFilter, Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &accept},
		{Name: NFTPostroutingChain, Table: nftTable, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource, Policy: &accept},
	}
}

// nftRules returns the expressions of our rules in chain, in order.
func (s Spec) nftRules(chain string) [][]expr.Any {
	iif := func(op expr.CmpOp) []expr.Any {
		return []expr.Any{&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1}, &expr.Cmp{Op: op, Register: 1, Data: ifname(s.ClusterInterface)}}
	}
	oif := func(op expr.CmpOp) []expr.Any {
		return []expr.Any{&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1}, &expr.Cmp{Op: op, Register: 1, Data: ifname(s.ClusterInterface)}}
	}
	mask := netipMask(s.Subnet)
	saddr := []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: s.Subnet.Addr().AsSlice()},
	}
	established := []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: binary.NativeEndian.AppendUint32(nil, expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}
	verdict := func(k expr.VerdictKind) expr.Any { return &expr.Verdict{Kind: k} }
	cat := func(parts ...[]expr.Any) []expr.Any { return slices.Concat(parts...) }
	switch chain {
	case NFTForwardChain:
		return [][]expr.Any{
			cat(iif(expr.CmpOpEq), saddr, []expr.Any{verdict(expr.VerdictAccept)}),
			cat(oif(expr.CmpOpEq), established, []expr.Any{verdict(expr.VerdictAccept)}),
			cat(iif(expr.CmpOpNeq), oif(expr.CmpOpEq), []expr.Any{verdict(expr.VerdictDrop)}),
		}
	case NFTPostroutingChain:
		return [][]expr.Any{
			cat(oif(expr.CmpOpNeq), saddr, []expr.Any{&expr.Masq{}}),
		}
	}
	return nil
}

// ifname is an interface name as nf_tables compares it: IFNAMSIZ bytes,
// NUL-padded, which matches the whole name and nothing longer.
func ifname(name string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return b
}

func netipMask(p netip.Prefix) []byte {
	m := make([]byte, 4)
	binary.BigEndian.PutUint32(m, ^uint32(0)<<(32-p.Bits()))
	return m
}

var nftComment = userdata.AppendString(nil, userdata.TypeComment, Comment)

// render prints a rule's expressions, one line per rule, for comparison.
func render(exprs []expr.Any) string {
	var parts []string
	for _, e := range exprs {
		parts = append(parts, fmt.Sprintf("%T%+v", e, e))
	}
	return strings.Join(parts, " ")
}

func renderRules(rules [][]expr.Any) []string {
	out := make([]string, len(rules))
	for i, r := range rules {
		out[i] = render(r)
	}
	return out
}

// nftState is what the kernel has of our table.
type nftState struct {
	chains map[string]*nftables.Chain // every chain in table ip headnode
	rules  map[string][]*nftables.Rule
}

func (n *NFTablesRunner) read(c *nftables.Conn) (nftState, error) {
	st := nftState{chains: map[string]*nftables.Chain{}, rules: map[string][]*nftables.Rule{}}
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return st, fmt.Errorf("list nftables chains: %w", err)
	}
	for _, ch := range chains {
		if ch.Table.Name == NFTTable {
			st.chains[ch.Name] = ch
		}
	}
	for _, want := range nftChains() {
		if st.chains[want.Name] == nil {
			continue
		}
		rules, err := c.GetRules(nftTable, want)
		if err != nil {
			return st, fmt.Errorf("list rules of table ip %s chain %s: %w", NFTTable, want.Name, err)
		}
		st.rules[want.Name] = rules
	}
	return st, nil
}

func (st nftState) rendered(chain string) []string {
	var out []string
	for _, r := range st.rules[chain] {
		out = append(out, render(r.Exprs))
	}
	return out
}

// chainOK: the chain exists hooked as ours is, with exactly our rules.
func (n *NFTablesRunner) chainOK(st nftState, want *nftables.Chain, spec Spec) (hooked, rules bool) {
	have := st.chains[want.Name]
	if have == nil {
		return false, false
	}
	hooked = have.Type == want.Type && have.Hooknum != nil && *have.Hooknum == *want.Hooknum &&
		have.Priority != nil && *have.Priority == *want.Priority &&
		have.Policy != nil && *have.Policy == *want.Policy
	for _, r := range st.rules[want.Name] {
		if !slices.Equal(r.UserData, nftComment) {
			return hooked, false
		}
	}
	return hooked, slices.Equal(st.rendered(want.Name), n.expected(want.Name, spec))
}

func (n *NFTablesRunner) expected(chain string, spec Spec) []string {
	mine := renderRules(spec.nftRules(chain))
	if c, ok := n.canonical[chain]; ok && slices.Equal(c.ours, mine) {
		return c.listed
	}
	return mine
}

// Apply makes table ip headnode hold exactly our chains and rules. With
// everything in place it only reads (three netlink dumps); otherwise it
// writes in one batch: when only rules are wrong, it flushes and refills
// those chains; else it replaces the table: add it (a no-op if it
// exists), delete it with whatever is in it, add it again with our chains
// and rules.
func (n *NFTablesRunner) Apply(spec Spec) ([]change.Change, error) {
	if err := spec.validate(); err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	c, err := n.conn()
	if err != nil {
		return nil, err
	}
	changes, err := n.apply(c, spec)
	n.keep(err)
	return changes, err
}

func (n *NFTablesRunner) apply(c *nftables.Conn, spec Spec) ([]change.Change, error) {
	st, err := n.read(c)
	if err != nil {
		return nil, err
	}
	var wrong []string
	natChanged := false
	allHooked := len(st.chains) == len(nftChains())
	for _, ch := range nftChains() {
		hooked, rules := n.chainOK(st, ch, spec)
		allHooked = allHooked && hooked
		if !hooked || !rules {
			wrong = append(wrong, ch.Name)
			natChanged = natChanged || ch.Name == NFTPostroutingChain
		}
	}
	if len(st.chains) != len(nftChains()) && len(wrong) == 0 {
		wrong = append(wrong, "foreign chains")
	}
	if len(wrong) == 0 {
		return nil, nil
	}
	if allHooked {
		// Only rules are wrong: flush and refill those chains, which
		// leaves the hooks registered (cheaper for the kernel than
		// replacing the table, and just as atomic).
		for _, ch := range nftChains() {
			if slices.Contains(wrong, ch.Name) {
				c.FlushChain(ch)
				n.addRules(c, ch, spec)
			}
		}
	} else {
		c.AddTable(nftTable)
		c.DelTable(nftTable)
		c.AddTable(nftTable)
		for _, ch := range nftChains() {
			c.AddChain(ch)
			n.addRules(c, ch, spec)
		}
	}
	if err := c.Flush(); err != nil {
		return nil, fmt.Errorf("write table ip %s: %w", NFTTable, err)
	}
	var changes []change.Change
	if len(st.chains) == 0 {
		changes = append(changes, change.Rulesf("created table ip %s", NFTTable))
	} else {
		changes = append(changes, change.Rulesf("rewrote table ip %s (%s not as expected)", NFTTable, strings.Join(wrong, ", ")))
	}
	n.learn(c, spec)
	if natChanged && n.FlushConntrack != nil {
		if err := n.FlushConntrack(spec.Subnet); err != nil {
			changes = append(changes, change.Change{Kind: change.Conntrack, Text: fmt.Sprintf("conntrack flush for %s failed: %v", spec.Subnet, err)})
		} else {
			changes = append(changes, change.Change{Kind: change.Conntrack, Text: "flushed conntrack entries from " + spec.Subnet.String()})
		}
	}
	return changes, nil
}

func (n *NFTablesRunner) addRules(c *nftables.Conn, ch *nftables.Chain, spec Spec) {
	for _, r := range spec.nftRules(ch.Name) {
		c.AddRule(&nftables.Rule{Table: nftTable, Chain: ch, Exprs: r, UserData: nftComment})
	}
}

// learn records how the kernel returns the rules just written, from a
// read-back that holds exactly as many rules as we wrote, each tagged by
// us (see IPTablesRunner.learn for why).
func (n *NFTablesRunner) learn(c *nftables.Conn, spec Spec) {
	st, err := n.read(c)
	if err != nil {
		return
	}
	for _, ch := range nftChains() {
		mine := renderRules(spec.nftRules(ch.Name))
		if k, ok := n.canonical[ch.Name]; ok && slices.Equal(k.ours, mine) {
			continue
		}
		rules := st.rules[ch.Name]
		if len(rules) != len(mine) {
			continue
		}
		tagged := true
		for _, r := range rules {
			tagged = tagged && slices.Equal(r.UserData, nftComment)
		}
		if tagged {
			n.canonical[ch.Name] = printed{ours: mine, listed: st.rendered(ch.Name)}
		}
	}
}

// Check reports what is in place without changing anything.
func (n *NFTablesRunner) Check(spec Spec) (Status, error) {
	if err := spec.validate(); err != nil {
		return Status{}, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	s := Status{Where: "table ip " + NFTTable, names: partNames{
		filterChain: "table ip " + NFTTable + " chain " + NFTForwardChain,
		filterJump:  "hook of chain " + NFTForwardChain,
		natChain:    "table ip " + NFTTable + " chain " + NFTPostroutingChain,
		natJump:     "hook of chain " + NFTPostroutingChain,
	}}
	c, err := n.conn()
	if err != nil {
		return s, err
	}
	st, err := n.read(c)
	n.keep(err)
	if err != nil {
		return s, err
	}
	ch := nftChains()
	s.FilterJump, s.FilterChain = n.chainOK(st, ch[0], spec)
	s.NATJump, s.NATChain = n.chainOK(st, ch[1], spec)
	return s, nil
}

// Clear deletes table ip headnode, which holds everything we made and
// nothing else. Clearing when it does not exist is not an error.
func (n *NFTablesRunner) Clear() ([]change.Change, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	present, err := n.present()
	if err != nil || !present {
		return nil, err
	}
	c, err := n.conn()
	if err != nil {
		return nil, err
	}
	c.DelTable(nftTable)
	err = c.Flush()
	n.keep(err)
	if err != nil {
		return nil, fmt.Errorf("delete table ip %s: %w", NFTTable, err)
	}
	clear(n.canonical)
	return []change.Change{change.Rulesf("deleted table ip %s", NFTTable)}, nil
}

// Present reports whether table ip headnode exists.
func (n *NFTablesRunner) Present() (bool, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.present()
}

func (n *NFTablesRunner) present() (bool, error) {
	c, err := n.conn()
	if err != nil {
		return false, err
	}
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyIPv4)
	n.keep(err)
	if err != nil {
		return false, fmt.Errorf("list nftables tables: %w", err)
	}
	return slices.ContainsFunc(tables, func(t *nftables.Table) bool { return t.Name == NFTTable }), nil
}
