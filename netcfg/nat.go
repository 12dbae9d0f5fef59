package netcfg

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
)

// Names of what we own in the firewall. Chain names avoid the substrings
// that other tools delete wholesale (KUBE-, CNI-, flannel, DOCKER, ts-).
const (
	FilterChain = "HEADNODE-FWD"
	NATChain    = "HEADNODE-POSTRT"
	// Comment tags every rule we add, so that cleanup and a human reading
	// `iptables -S` can find them.
	Comment = "headnode"
)

// NATSpec is what the NAT must do: forward and masquerade Subnet from
// ClusterInterface out of UplinkInterface.
type NATSpec struct {
	ClusterInterface string
	UplinkInterface  string
	Subnet           netip.Prefix // masked, e.g. 192.168.50.0/24
}

func (s NATSpec) validate() error {
	if s.ClusterInterface == "" || s.UplinkInterface == "" || !s.Subnet.IsValid() || !s.Subnet.Addr().Is4() {
		return fmt.Errorf("incomplete NAT spec: cluster %q, uplink %q, subnet %v", s.ClusterInterface, s.UplinkInterface, s.Subnet)
	}
	return nil
}

type ownedChain struct {
	table, chain string
	builtin      string // the built-in chain that jumps to it
}

var ownedChains = []ownedChain{
	{table: "filter", chain: FilterChain, builtin: "FORWARD"},
	{table: "nat", chain: NATChain, builtin: "POSTROUTING"},
}

// rules returns the rule specs of one of our chains, in the order and
// spelling `iptables -S` prints them (source/destination, then interfaces,
// then matches), so that a fresh listing compares equal without rewriting.
//
// Every interface match lives inside our own chains. The jumps into them
// carry no interface match, because iptables 1.8.11's -C ignores -i/-o and
// we never rely on -C anyway: chains are compared by listing.
func (s NATSpec) rules(chain string) [][]string {
	subnet := s.Subnet.String()
	tag := []string{"-m", "comment", "--comment", Comment}
	with := func(r ...string) []string {
		// Insert the comment before the target, where iptables prints it.
		n := len(r) - 2
		return append(append(slices.Clone(r[:n]), tag...), r[n:]...)
	}
	switch chain {
	case FilterChain:
		return [][]string{
			// The cluster may reach the uplink.
			with("-s", subnet, "-i", s.ClusterInterface, "-o", s.UplinkInterface, "-j", "ACCEPT"),
			// Replies may come back.
			with("-d", subnet, "-i", s.UplinkInterface, "-o", s.ClusterInterface, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"),
			// Nothing new from the uplink reaches a node, whatever the
			// FORWARD policy is. This touches only uplink→cluster traffic,
			// which is ours; all other traffic returns to the caller.
			with("-i", s.UplinkInterface, "-o", s.ClusterInterface, "-j", "DROP"),
		}
	case NATChain:
		return [][]string{
			with("-s", subnet, "-o", s.UplinkInterface, "-j", "MASQUERADE"),
		}
	}
	return nil
}

func jumpSpec(chain string) []string {
	return []string{"-m", "comment", "--comment", Comment, "-j", chain}
}

func listingLine(chain string, spec []string) string {
	return "-A " + chain + " " + strings.Join(spec, " ")
}

// NAT installs, checks and removes our forwarding and masquerading rules.
// Its methods are not safe for concurrent use; the daemon calls them from a
// single goroutine (Keeper).
type NAT struct {
	ipt IPTables
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
}

// printed pairs our spelling of a chain's rules with iptables' listing of
// them; the listing only stands in for the spelling it was written from.
type printed struct {
	ours, listed []string
}

// NewNAT returns a NAT driving ipt, without conntrack flushing.
func NewNAT(ipt IPTables) *NAT {
	return &NAT{ipt: ipt, canonical: map[string]printed{}}
}

// Change describes one thing Apply or Clear did.
type Change struct {
	Kind ChangeKind
	Text string // in words, for the log
}

func (c Change) String() string { return c.Text }

// ChangeKind sorts changes for counting repairs: conntrack flushes are a
// consequence, not something that was missing.
type ChangeKind int

const (
	ChangeRules ChangeKind = iota
	ChangeForwarding
	ChangeAddress
	ChangeConntrack
	ChangeBridge
)

func rulesChange(format string, args ...any) Change {
	return Change{Kind: ChangeRules, Text: fmt.Sprintf(format, args...)}
}

// Apply makes the firewall match spec: our chains exist with exactly our
// rules, and each is jumped to exactly once from its built-in chain. It
// changes nothing when everything is in place (then it runs four `iptables
// -S`), so it doubles as the tamper check. It never touches rules or
// policies that are not ours.
func (n *NAT) Apply(spec NATSpec) ([]Change, error) {
	if err := spec.validate(); err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	var changes []Change
	natChanged := false
	for _, oc := range ownedChains {
		changed, err := n.ensureChain(oc, spec, &changes)
		if err != nil {
			return changes, err
		}
		natChanged = natChanged || (changed && oc.table == "nat")
	}
	for _, oc := range ownedChains {
		changed, err := n.ensureJump(oc, &changes)
		if err != nil {
			return changes, err
		}
		natChanged = natChanged || (changed && oc.table == "nat")
	}
	if natChanged && n.FlushConntrack != nil {
		if err := n.FlushConntrack(spec.Subnet); err != nil {
			// Not fatal: new flows are NATed; only flows that began
			// before the rule keep their old (un-NATed) mapping.
			changes = append(changes, Change{Kind: ChangeConntrack, Text: fmt.Sprintf("conntrack flush for %s failed: %v", spec.Subnet, err)})
		} else {
			changes = append(changes, Change{Kind: ChangeConntrack, Text: "flushed conntrack entries from " + spec.Subnet.String()})
		}
	}
	return changes, nil
}

func (n *NAT) ensureChain(oc ownedChain, spec NATSpec, changes *[]Change) (bool, error) {
	want := spec.rules(oc.chain)
	have, missing, err := n.listOwn(oc)
	if err != nil {
		return false, err
	}
	if !missing {
		if slices.Equal(have[1:], n.expected(oc.chain, want)) {
			return false, nil
		}
	}
	// Rewrite the whole chain: create or flush it, then put the rules back
	// in order. Simpler to reason about than patching single rules, and
	// immune to iptables -C bugs.
	if missing {
		err = n.ipt.NewChain(oc.table, oc.chain)
	} else {
		err = n.ipt.ClearChain(oc.table, oc.chain)
	}
	if err != nil {
		return false, fmt.Errorf("create %s %s: %w", oc.table, oc.chain, err)
	}
	for _, r := range want {
		if err := n.ipt.Append(oc.table, oc.chain, r...); err != nil {
			return true, fmt.Errorf("append to %s %s: %w", oc.table, oc.chain, err)
		}
	}
	if after, err := n.ipt.List(oc.table, oc.chain); err == nil {
		n.canonical[oc.chain] = printed{ours: ourListing(oc.chain, want), listed: after[1:]}
	}
	if missing {
		*changes = append(*changes, rulesChange("created chain %s %s with %d rules", oc.table, oc.chain, len(want)))
	} else {
		*changes = append(*changes, rulesChange("rewrote chain %s %s (%d rules found, %d expected)", oc.table, oc.chain, len(have)-1, len(want)))
	}
	return true, nil
}

// listOwn lists one of our chains. A missing chain is reported as
// missing, not as an error. iptables says "missing" in several ways
// ("No chain/target/match by that name", or on nf_tables 1.8.9 "chain ...
// is incompatible, use 'nft' tool"), so after any error the chain list of
// the table decides.
func (n *NAT) listOwn(oc ownedChain) (lines []string, missing bool, err error) {
	lines, err = n.ipt.List(oc.table, oc.chain)
	if err == nil {
		return lines, false, nil
	}
	chains, lerr := n.ipt.ListChains(oc.table)
	if lerr != nil {
		return nil, false, fmt.Errorf("list %s %s: %w", oc.table, oc.chain, err)
	}
	if !slices.Contains(chains, oc.chain) {
		return nil, true, nil
	}
	return nil, false, fmt.Errorf("list %s %s: %w", oc.table, oc.chain, err)
}

// expected is the listing we compare against: what iptables printed after
// our last write of the same rules, else our own spelling.
func (n *NAT) expected(chain string, want [][]string) []string {
	mine := ourListing(chain, want)
	if c, ok := n.canonical[chain]; ok && slices.Equal(c.ours, mine) {
		return c.listed
	}
	return mine
}

func ourListing(chain string, rules [][]string) []string {
	out := make([]string, len(rules))
	for i, r := range rules {
		out[i] = listingLine(chain, r)
	}
	return out
}

func (n *NAT) ensureJump(oc ownedChain, changes *[]Change) (bool, error) {
	lines, err := n.ipt.List(oc.table, oc.builtin)
	if err != nil {
		return false, fmt.Errorf("list %s %s: %w", oc.table, oc.builtin, err)
	}
	ids := jumpRuleIDs(lines, oc.builtin, oc.chain)
	switch {
	case len(ids) == 1:
		// Present. We deliberately do not force it back to position 1:
		// Docker keeps DOCKER-USER first and re-inserts it on network
		// changes; fighting over position helps no one, and our chain
		// only ACCEPTs or DROPs traffic that is ours.
		return false, nil
	case len(ids) == 0:
		if err := n.ipt.Insert(oc.table, oc.builtin, 1, jumpSpec(oc.chain)...); err != nil {
			return false, fmt.Errorf("insert jump %s %s -> %s: %w", oc.table, oc.builtin, oc.chain, err)
		}
		*changes = append(*changes, rulesChange("inserted jump %s %s -> %s", oc.table, oc.builtin, oc.chain))
		return true, nil
	default:
		// Delete extras from the bottom so the remaining ids stay valid.
		for i := len(ids) - 1; i >= 1; i-- {
			if err := n.ipt.DeleteById(oc.table, oc.builtin, ids[i]); err != nil {
				return false, fmt.Errorf("delete duplicate jump %s %s #%d: %w", oc.table, oc.builtin, ids[i], err)
			}
		}
		*changes = append(*changes, rulesChange("removed %d duplicate jumps %s %s -> %s", len(ids)-1, oc.table, oc.builtin, oc.chain))
		return false, nil
	}
}

// jumpRuleIDs returns the 1-based rule numbers in builtin that jump to
// chain, whatever else the rule says: a jump someone copied without our
// comment is still ours to count (and to remove on cleanup).
func jumpRuleIDs(lines []string, builtin, chain string) []int {
	var ids []int
	id := 0
	for _, l := range lines {
		if !strings.HasPrefix(l, "-A "+builtin+" ") {
			continue
		}
		id++
		if jumpTarget(l) == chain {
			ids = append(ids, id)
		}
	}
	return ids
}

// NATStatus is a read-only view of our rules.
type NATStatus struct {
	FilterChain bool   `json:"filter_chain"` // our filter chain has exactly our rules
	NATChain    bool   `json:"nat_chain"`    // our nat chain has exactly our rules
	FilterJump  bool   `json:"filter_jump"`  // FORWARD jumps to it
	NATJump     bool   `json:"nat_jump"`     // POSTROUTING jumps to it
	Policy      string `json:"forward_policy"`
}

// Present reports whether every piece is in place.
func (s NATStatus) Present() bool {
	return s.FilterChain && s.NATChain && s.FilterJump && s.NATJump
}

// Missing lists what is not in place, for status lines.
func (s NATStatus) Missing() []string {
	var m []string
	if !s.FilterChain {
		m = append(m, "filter chain "+FilterChain)
	}
	if !s.FilterJump {
		m = append(m, "FORWARD jump")
	}
	if !s.NATChain {
		m = append(m, "nat chain "+NATChain)
	}
	if !s.NATJump {
		m = append(m, "POSTROUTING jump")
	}
	return m
}

// Check reports what is in place without changing anything.
func (n *NAT) Check(spec NATSpec) (NATStatus, error) {
	if err := spec.validate(); err != nil {
		return NATStatus{}, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	var st NATStatus
	for _, oc := range ownedChains {
		have, missing, err := n.listOwn(oc)
		if err != nil {
			return st, err
		}
		ok := !missing && slices.Equal(have[1:], n.expected(oc.chain, spec.rules(oc.chain)))
		lines, err := n.ipt.List(oc.table, oc.builtin)
		if err != nil {
			return st, fmt.Errorf("list %s %s: %w", oc.table, oc.builtin, err)
		}
		jump := len(jumpRuleIDs(lines, oc.builtin, oc.chain)) == 1
		if oc.table == "filter" {
			st.FilterChain, st.FilterJump = ok, jump
			if len(lines) > 0 && strings.HasPrefix(lines[0], "-P ") {
				if f := strings.Fields(lines[0]); len(f) == 3 {
					st.Policy = f[2]
				}
			}
		} else {
			st.NATChain, st.NATJump = ok, jump
		}
	}
	return st, nil
}

// Clear removes every rule and chain we added, and nothing else: all jumps
// to our chains (however many copies), then the chains. Rules elsewhere
// carrying our comment are removed too, since only we write that tag.
// Clearing when nothing is installed is not an error.
func (n *NAT) Clear() ([]Change, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var changes []Change
	var errs []error
	for _, oc := range ownedChains {
		chains, err := n.ipt.ListChains(oc.table)
		if err != nil {
			errs = append(errs, fmt.Errorf("list chains of %s: %w", oc.table, err))
			continue
		}
		for _, c := range chains {
			if c == oc.chain {
				continue
			}
			lines, err := n.ipt.List(oc.table, c)
			if err != nil {
				errs = append(errs, fmt.Errorf("list %s %s: %w", oc.table, c, err))
				continue
			}
			ids := ourRuleIDs(lines, c)
			for i := len(ids) - 1; i >= 0; i-- {
				if err := n.ipt.DeleteById(oc.table, c, ids[i]); err != nil {
					errs = append(errs, fmt.Errorf("delete %s %s #%d: %w", oc.table, c, ids[i], err))
				}
			}
			if len(ids) > 0 {
				changes = append(changes, rulesChange("removed %d rule(s) from %s %s", len(ids), oc.table, c))
			}
		}
		if !slices.Contains(chains, oc.chain) {
			continue
		}
		if err := n.ipt.ClearChain(oc.table, oc.chain); err != nil {
			errs = append(errs, fmt.Errorf("flush %s %s: %w", oc.table, oc.chain, err))
			continue
		}
		if err := n.ipt.DeleteChain(oc.table, oc.chain); err != nil {
			errs = append(errs, fmt.Errorf("delete chain %s %s: %w", oc.table, oc.chain, err))
			continue
		}
		delete(n.canonical, oc.chain)
		changes = append(changes, rulesChange("deleted chain %s %s", oc.table, oc.chain))
	}
	return changes, errors.Join(errs...)
}

// ourRuleIDs returns the rule numbers in chain that jump to one of our
// chains or carry our comment.
func ourRuleIDs(lines []string, chain string) []int {
	var ids []int
	id := 0
	for _, l := range lines {
		if !strings.HasPrefix(l, "-A "+chain+" ") {
			continue
		}
		id++
		t := jumpTarget(l)
		if t == FilterChain || t == NATChain || hasOurComment(l) {
			ids = append(ids, id)
		}
	}
	return ids
}

func hasOurComment(line string) bool {
	f := strings.Fields(line)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "--comment" && strings.Trim(f[i+1], `"`) == Comment {
			return true
		}
	}
	return false
}
