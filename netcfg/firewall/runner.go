package firewall

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/headnode/headnode/netcfg/change"
)

// IPTablesRunner is the firewall backend that runs the iptables program: it
// installs, checks and removes our forwarding and masquerading rules. Its
// methods serialize on a mutex; the daemon calls them from a single
// goroutine anyway (nat.Keeper).
type IPTablesRunner struct {
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

// NewIPTablesRunner returns a runner driving ipt, without conntrack
// flushing.
func NewIPTablesRunner(ipt IPTables) *IPTablesRunner {
	return &IPTablesRunner{ipt: ipt, canonical: map[string]printed{}}
}

// IPTables is the iptables the runner drives.
func (n *IPTablesRunner) IPTables() IPTables { return n.ipt }

// Apply makes the firewall match spec: our chains exist with exactly our
// rules, and each is jumped to exactly once from its built-in chain. It
// changes nothing when everything is in place (then it runs four `iptables
// -S`), so it doubles as the tamper check. It never touches rules or
// policies that are not ours.
func (n *IPTablesRunner) Apply(spec Spec) ([]change.Change, error) {
	if err := spec.validate(); err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	var changes []change.Change
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
			changes = append(changes, change.Change{Kind: change.Conntrack, Text: fmt.Sprintf("conntrack flush for %s failed: %v", spec.Subnet, err)})
		} else {
			changes = append(changes, change.Change{Kind: change.Conntrack, Text: "flushed conntrack entries from " + spec.Subnet.String()})
		}
	}
	return changes, nil
}

func (n *IPTablesRunner) ensureChain(oc ownedChain, spec Spec, changes *[]change.Change) (bool, error) {
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
		*changes = append(*changes, change.Rulesf("created chain %s %s with %d rules", oc.table, oc.chain, len(want)))
	} else {
		*changes = append(*changes, change.Rulesf("rewrote chain %s %s (%d rules found, %d expected)", oc.table, oc.chain, len(have)-1, len(want)))
	}
	return true, nil
}

// listOwn lists one of our chains. A missing chain is reported as
// missing, not as an error. iptables says "missing" in several ways
// ("No chain/target/match by that name", or on nf_tables 1.8.9 "chain ...
// is incompatible, use 'nft' tool"), so after any error the chain list of
// the table decides.
func (n *IPTablesRunner) listOwn(oc ownedChain) (lines []string, missing bool, err error) {
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
func (n *IPTablesRunner) expected(chain string, want [][]string) []string {
	mine := ourListing(chain, want)
	if c, ok := n.canonical[chain]; ok && slices.Equal(c.ours, mine) {
		return c.listed
	}
	return mine
}

func (n *IPTablesRunner) ensureJump(oc ownedChain, changes *[]change.Change) (bool, error) {
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
		*changes = append(*changes, change.Rulesf("inserted jump %s %s -> %s", oc.table, oc.builtin, oc.chain))
		return true, nil
	default:
		// Delete extras from the bottom so the remaining ids stay valid.
		for i := len(ids) - 1; i >= 1; i-- {
			if err := n.ipt.DeleteById(oc.table, oc.builtin, ids[i]); err != nil {
				return false, fmt.Errorf("delete duplicate jump %s %s #%d: %w", oc.table, oc.builtin, ids[i], err)
			}
		}
		*changes = append(*changes, change.Rulesf("removed %d duplicate jumps %s %s -> %s", len(ids)-1, oc.table, oc.builtin, oc.chain))
		return false, nil
	}
}

// Check reports what is in place without changing anything.
func (n *IPTablesRunner) Check(spec Spec) (Status, error) {
	if err := spec.validate(); err != nil {
		return Status{}, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	var st Status
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
func (n *IPTablesRunner) Clear() ([]change.Change, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var changes []change.Change
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
				changes = append(changes, change.Rulesf("removed %d rule(s) from %s %s", len(ids), oc.table, c))
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
		changes = append(changes, change.Rulesf("deleted chain %s %s", oc.table, oc.chain))
	}
	return changes, errors.Join(errs...)
}
