package firewall

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/headnode/headnode/netcfg/change"
)

// IPTablesRunner is the firewall backend that runs the iptables program: it
// installs, checks and removes our forwarding and masquerading rules. It
// reads the ruleset with one iptables-save and writes with one
// iptables-restore --noflush, so that a rewrite of our chains is one
// transaction: there is never a moment in which our chain is empty, or
// half-written, while the kernel forwards packets. Its methods serialize
// on a mutex; the daemon calls them from a single goroutine anyway
// (nat.Keeper).
type IPTablesRunner struct {
	ipt     IPTables
	backend Backend
	// FlushConntrack deletes conntrack entries originating in subnet. It
	// runs after the masquerade rule is (re)installed, so that flows that
	// started before it (and would otherwise keep leaving un-NATed) are
	// NATed from their next packet on.
	FlushConntrack func(subnet netip.Prefix) error

	mu sync.Mutex
	// canonical holds, per chain, the listing read back after we last wrote
	// it. iptables versions print rules differently from how they were
	// given; comparing against what this iptables printed keeps reconcile
	// from rewriting a correct chain forever.
	canonical map[string]printed
	// unlearned is what the last Apply wrote and has not been read back
	// yet (see Settle); nil when nothing is waiting.
	unlearned *written
}

// written is one Apply's rewrite, for learning its listing later.
type written struct {
	spec   Spec
	chains []ownedChain
}

// printed pairs our spelling of a chain's rules with iptables' listing of
// them; the listing only stands in for the spelling it was written from.
type printed struct {
	ours, listed []string
}

// NewIPTablesRunner returns a runner driving ipt, which is the given
// backend, without conntrack flushing.
func NewIPTablesRunner(ipt IPTables, backend Backend) *IPTablesRunner {
	return &IPTablesRunner{ipt: ipt, backend: backend, canonical: map[string]printed{}}
}

// OpenIPTablesRunner finds the iptables program for choice (see
// OpenIPTables) and returns a runner for it.
func OpenIPTablesRunner(choice string) (*IPTablesRunner, error) {
	ipt, backend, err := OpenIPTables(choice)
	if err != nil {
		return nil, err
	}
	return NewIPTablesRunner(ipt, backend), nil
}

// Backend reports which iptables it is (nf_tables or legacy).
func (n *IPTablesRunner) Backend() Backend { return n.backend }

// IPTables is the iptables the runner drives.
func (n *IPTablesRunner) IPTables() IPTables { return n.ipt }

// Apply makes the firewall match spec: our chains exist with exactly our
// rules, and each is jumped to exactly once from its built-in chain. With
// everything in place it only reads (one iptables-save), so it doubles as
// the tamper check; otherwise it writes everything that is wrong in one
// iptables-restore. It never touches rules or policies that are not ours.
func (n *IPTablesRunner) Apply(spec Spec) ([]change.Change, error) {
	if err := spec.validate(); err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.settle()
	out, err := n.ipt.Save()
	if err != nil {
		return nil, err
	}
	tables := parseSave(out)
	var script strings.Builder
	var changes []change.Change
	var rewritten []ownedChain
	natChanged := false
	for _, oc := range ownedChains {
		t := tables[oc.table]
		want := spec.rules(oc.chain)
		have := t.chain(oc.chain)
		rewrite := !t.has(oc.chain) || !slices.Equal(have, n.expected(oc.chain, want))
		jumps := jumpLines(t.chain(oc.builtin), oc.builtin, oc.chain)
		if !rewrite && len(jumps) == 1 {
			continue
		}
		fmt.Fprintf(&script, "*%s\n", oc.table)
		if rewrite {
			// With --noflush, declaring a chain creates it, or flushes it
			// if it exists, within this table's transaction.
			fmt.Fprintf(&script, ":%s - [0:0]\n", oc.chain)
			for _, l := range ourListing(oc.chain, want) {
				script.WriteString(l + "\n")
			}
			rewritten = append(rewritten, oc)
			if t.has(oc.chain) {
				changes = append(changes, change.Rulesf("rewrote chain %s %s (%d rules found, %d expected)", oc.table, oc.chain, len(have), len(want)))
			} else {
				changes = append(changes, change.Rulesf("created chain %s %s with %d rules", oc.table, oc.chain, len(want)))
			}
		}
		switch {
		case len(jumps) == 0:
			fmt.Fprintf(&script, "-I %s 1 %s\n", oc.builtin, strings.Join(jumpSpec(oc.chain), " "))
			changes = append(changes, change.Rulesf("inserted jump %s %s -> %s", oc.table, oc.builtin, oc.chain))
		case len(jumps) > 1:
			// Deleted by their listing, not by number, so that a rule
			// another program inserted meanwhile cannot shift the
			// numbers onto the wrong rule: if a listed rule has gone,
			// the whole transaction fails instead.
			for _, l := range jumps[1:] {
				script.WriteString("-D" + strings.TrimPrefix(l, "-A") + "\n")
			}
			changes = append(changes, change.Rulesf("removed %d duplicate jumps %s %s -> %s", len(jumps)-1, oc.table, oc.builtin, oc.chain))
		}
		// A jump we had to insert makes the masquerade rule newly
		// effective too; duplicates removed change nothing.
		natChanged = natChanged || (oc.table == "nat" && (rewrite || len(jumps) == 0))
		script.WriteString("COMMIT\n")
	}
	if script.Len() == 0 {
		return nil, nil
	}
	if err := n.ipt.Restore(script.String()); err != nil {
		return nil, fmt.Errorf("rewrite our rules: %w", err)
	}
	if len(rewritten) > 0 {
		n.unlearned = &written{spec, rewritten}
	}
	if natChanged && n.FlushConntrack != nil {
		if err := n.FlushConntrack(spec.Subnet); err != nil {
			// Not fatal: new flows are NATed; only flows that began
			// before the rule keep their old (un-NATed) mapping.
			changes = append(changes, change.Change{Kind: change.Conntrack, Text: fmt.Sprintf("conntrack flush for %s failed: %v", spec.Subnet, err)})
		} else {
			changes = append(changes, change.Change{Kind: change.Conntrack, Text: "flushed conntrack entries from " + spec.Subnet.String()})
		}
	}
	return changes, nil
}

// Settle reads back what the last Apply wrote, to learn how this iptables
// prints it (see learn). Apply returns as soon as the rules are in place
// and leaves this read-back, one more iptables-save, to Settle, so that
// whoever waits for the rules (READY at start, a repair's report) does not
// wait for it too; the keeper calls it right after its report. Apply and
// Check settle first if it was not called, so nothing is compared against
// a listing that was never learned.
func (n *IPTablesRunner) Settle() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.settle()
}

func (n *IPTablesRunner) settle() {
	if w := n.unlearned; w != nil {
		n.unlearned = nil
		n.learn(w.spec, w.chains)
	}
}

// learn records how this iptables prints the chains just written, when it
// does not know yet. It reads them back, and accepts the listing only if it
// can only be our own rules: as many as we wrote, each carrying our
// comment and jumping where ours do. Anything else (a rule another program
// added to our chain the moment after our transaction) is not learned, so
// the next check still sees it as foreign and repairs it.
func (n *IPTablesRunner) learn(spec Spec, chains []ownedChain) {
	var unknown []ownedChain
	for _, oc := range chains {
		mine := ourListing(oc.chain, spec.rules(oc.chain))
		if c, ok := n.canonical[oc.chain]; !ok || !slices.Equal(c.ours, mine) {
			unknown = append(unknown, oc)
		}
	}
	if len(unknown) == 0 {
		return
	}
	out, err := n.ipt.Save()
	if err != nil {
		return
	}
	tables := parseSave(out)
	for _, oc := range unknown {
		mine := ourListing(oc.chain, spec.rules(oc.chain))
		listed := tables[oc.table].chain(oc.chain)
		if onlyOurs(listed, mine) {
			n.canonical[oc.chain] = printed{ours: mine, listed: listed}
		}
	}
}

// onlyOurs reports whether listed can be nothing but mine, printed by some
// iptables: the same number of rules, each tagged by us, with the same
// target as ours at its position and matching the same interfaces and
// addresses. (What iptables versions print differently is the order of
// the matches, the implied modules and the spelling of states; a copy of
// our rule with another interface or subnet is not a printing of it.)
func onlyOurs(listed, mine []string) bool {
	if len(listed) != len(mine) {
		return false
	}
	for i := range listed {
		if !hasOurComment(listed[i]) || jumpTarget(listed[i]) != jumpTarget(mine[i]) ||
			!maps.Equal(endpoints(listed[i]), endpoints(mine[i])) {
			return false
		}
	}
	return true
}

// endpointOptions maps the interface and address options, long or short,
// to their short names.
var endpointOptions = map[string]string{"-i": "-i", "--in-interface": "-i", "-o": "-o", "--out-interface": "-o",
	"-s": "-s", "--source": "-s", "-d": "-d", "--destination": "-d"}

// endpoints returns a rule's interface and address matches (-i, -o, -s, -d
// and their negations), addresses as prefixes, whatever order they are
// listed in: iptables-save prints a host address with /32.
func endpoints(rule string) map[string]string {
	out := map[string]string{}
	f := strings.Fields(rule)
	for i := 0; i < len(f); i++ {
		neg := ""
		if f[i] == "!" && i+1 < len(f) {
			neg = "!"
			i++
		}
		opt, ok := endpointOptions[f[i]]
		if !ok || i+1 >= len(f) {
			continue
		}
		i++
		v := f[i]
		if opt == "-s" || opt == "-d" {
			if a, err := netip.ParseAddr(v); err == nil {
				v = netip.PrefixFrom(a, a.BitLen()).String()
			} else if p, err := netip.ParsePrefix(v); err == nil {
				v = p.Masked().String()
			}
		}
		out[neg+opt] = v
	}
	return out
}

// expected is the listing we compare against: what iptables printed after
// our last write of the same rules, else our own spelling.
func (n *IPTablesRunner) expected(chain string, want [][]string) []string {
	mine := ourListing(chain, want)
	if c, ok := n.canonical[chain]; ok && slices.Equal(c.ours, mine) {
		return c.listed
	}
	return mine
}

// Check reports what is in place without changing anything.
func (n *IPTablesRunner) Check(spec Spec) (Status, error) {
	if err := spec.validate(); err != nil {
		return Status{}, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.settle()
	out, err := n.ipt.Save()
	if err != nil {
		return Status{}, err
	}
	tables := parseSave(out)
	st := Status{Where: "filter " + FilterChain + ", nat " + NATChain, names: iptablesNames}
	for _, oc := range ownedChains {
		t := tables[oc.table]
		ok := t.has(oc.chain) && slices.Equal(t.chain(oc.chain), n.expected(oc.chain, spec.rules(oc.chain)))
		jump := len(jumpLines(t.chain(oc.builtin), oc.builtin, oc.chain)) == 1
		if oc.table == "filter" {
			st.FilterChain, st.FilterJump = ok, jump
			if t != nil {
				st.Policy = t.policies["FORWARD"]
			}
		} else {
			st.NATChain, st.NATJump = ok, jump
		}
	}
	return st, nil
}

// Clear removes every rule and chain we added, and nothing else: all jumps
// to our chains (however many copies), then the chains, in one
// iptables-restore. Rules elsewhere carrying our comment are removed too,
// since only we write that tag. Clearing when nothing is installed is not
// an error.
func (n *IPTablesRunner) Clear() ([]change.Change, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.unlearned = nil // what it wrote is about to go
	out, err := n.ipt.Save()
	if err != nil {
		return nil, err
	}
	tables := parseSave(out)
	var script strings.Builder
	var changes []change.Change
	for _, oc := range ownedChains {
		t := tables[oc.table]
		if t == nil {
			continue
		}
		var body strings.Builder
		for _, c := range t.chains {
			if c == FilterChain || c == NATChain {
				continue
			}
			ours := ourLines(t.chain(c), c)
			for _, l := range ours {
				body.WriteString("-D" + strings.TrimPrefix(l, "-A") + "\n")
			}
			if len(ours) > 0 {
				changes = append(changes, change.Rulesf("removed %d rule(s) from %s %s", len(ours), oc.table, c))
			}
		}
		if t.has(oc.chain) {
			fmt.Fprintf(&body, "-F %s\n-X %s\n", oc.chain, oc.chain)
			changes = append(changes, change.Rulesf("deleted chain %s %s", oc.table, oc.chain))
		}
		if body.Len() > 0 {
			fmt.Fprintf(&script, "*%s\n%sCOMMIT\n", oc.table, body.String())
		}
	}
	if script.Len() == 0 {
		return nil, nil
	}
	if err := n.ipt.Restore(script.String()); err != nil {
		return nil, fmt.Errorf("remove our rules: %w", err)
	}
	clear(n.canonical)
	return changes, nil
}
