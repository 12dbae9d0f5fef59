package firewall

import (
	"errors"
	"maps"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/headnode/headnode/netcfg/change"
)

var testSpec = Spec{ClusterInterface: "eth0", Subnet: netip.MustParsePrefix("192.168.50.0/24")}

// goldenRules is what our rules look like in `iptables -S` on a system
// where nothing else is installed, for testSpec. The kernel tests (package
// nat) check the same file against real iptables (nft and legacy).
var goldenRules = func() string {
	b, err := os.ReadFile("testdata/rules.golden")
	if err != nil {
		panic(err)
	}
	return string(b)
}()

func TestApplyInstallsOurRulesAndIsIdempotent(t *testing.T) {
	f := newFakeIPTables()
	n := NewIPTablesRunner(f, BackendIPTablesNFT)
	flushed := 0
	n.FlushConntrack = func(p netip.Prefix) error {
		if p != testSpec.Subnet {
			t.Errorf("conntrack flushed for %v, want %v", p, testSpec.Subnet)
		}
		flushed++
		return nil
	}
	changes, err := n.Apply(testSpec)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) == 0 {
		t.Fatal("first apply reported no changes")
	}
	if diff := cmp.Diff(goldenRules, f.Dump()); diff != "" {
		t.Fatalf("rules after apply (-want +got):\n%s", diff)
	}
	if flushed != 1 {
		t.Errorf("conntrack flushed %d times on install, want 1", flushed)
	}

	n.Settle() // as the keeper does after its report
	before := f.Execs()
	changes, err = n.Apply(testSpec)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 0 {
		t.Errorf("second apply changed %v", changes)
	}
	if got := f.Execs() - before; got != 1 {
		t.Errorf("second apply ran %d iptables processes, want 1 (iptables-save)", got)
	}
	if diff := cmp.Diff(goldenRules, f.Dump()); diff != "" {
		t.Fatalf("rules after second apply (-want +got):\n%s", diff)
	}
	if flushed != 1 {
		t.Errorf("conntrack flushed again although nothing changed")
	}
}

func TestApplyRepairsFlushedTables(t *testing.T) {
	f := newFakeIPTables()
	n := NewIPTablesRunner(f, BackendIPTablesNFT)
	n.FlushConntrack = func(netip.Prefix) error { return nil }
	if _, err := n.Apply(testSpec); err != nil {
		t.Fatal(err)
	}
	f.SetPolicy("filter", "FORWARD", "DROP")
	f.Flush("filter")
	f.Flush("nat")
	st, err := n.Check(testSpec)
	if err != nil {
		t.Fatal(err)
	}
	if st.Present() || !slices.Equal(st.Missing(), []string{"filter chain HEADNODE-FWD", "FORWARD jump", "nat chain HEADNODE-POSTRT", "POSTROUTING jump"}) {
		t.Errorf("check after flush: %+v missing %v", st, st.Missing())
	}
	changes, err := n.Apply(testSpec)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []change.Kind
	for _, c := range changes {
		kinds = append(kinds, c.Kind)
	}
	if !slices.Contains(kinds, change.Rules) || !slices.Contains(kinds, change.Conntrack) {
		t.Errorf("repair changes %v lack a rules change or the conntrack flush", changes)
	}
	want := strings.Replace(goldenRules, "-P FORWARD ACCEPT\n-P OUTPUT", "-P FORWARD DROP\n-P OUTPUT", 1)
	if diff := cmp.Diff(want, f.Dump()); diff != "" {
		t.Fatalf("rules after repair (-want +got); the policy must stay DROP:\n%s", diff)
	}
	if st, _ := n.Check(testSpec); !st.Present() || st.Policy != "DROP" {
		t.Errorf("check after repair: %+v", st)
	}
}

func TestApplyRepairsDeletedChain(t *testing.T) {
	f := newFakeIPTables()
	n := NewIPTablesRunner(f, BackendIPTablesNFT)
	if _, err := n.Apply(testSpec); err != nil {
		t.Fatal(err)
	}
	// Someone removes the jump, flushes and deletes our nat chain.
	if err := f.DeleteById("nat", "POSTROUTING", 1); err != nil {
		t.Fatal(err)
	}
	if err := f.ClearChain("nat", NATChain); err != nil {
		t.Fatal(err)
	}
	if err := f.DeleteChain("nat", NATChain); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Apply(testSpec); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(goldenRules, f.Dump()); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
}

// iptables versions differ in how they print a rule. Apply must converge
// on whatever this iptables prints instead of rewriting forever.
func TestApplyConvergesWhenListingDiffersFromSpec(t *testing.T) {
	f := newFakeIPTables()
	f.Canonical = func(spec []string) []string {
		// Print the comment match last, after the target.
		var rest, comment []string
		for i := 0; i < len(spec); i++ {
			if spec[i] == "-m" && i+3 < len(spec) && spec[i+1] == "comment" {
				comment = spec[i : i+4]
				i += 3
				continue
			}
			rest = append(rest, spec[i])
		}
		return append(rest, comment...)
	}
	n := NewIPTablesRunner(f, BackendIPTablesNFT)
	if _, err := n.Apply(testSpec); err != nil {
		t.Fatal(err)
	}
	// A daemon restart loses the learned spelling: the first check
	// rewrites once, then it is stable.
	n = NewIPTablesRunner(f, BackendIPTablesNFT)
	for i := range 3 {
		changes, err := n.Apply(testSpec)
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 && len(changes) != 0 {
			t.Fatalf("apply #%d after restart changed %v", i+1, changes)
		}
	}
}

func TestApplyRemovesDuplicateJumps(t *testing.T) {
	f := newFakeIPTables()
	n := NewIPTablesRunner(f, BackendIPTablesNFT)
	if _, err := n.Apply(testSpec); err != nil {
		t.Fatal(err)
	}
	// A boot script from before headnode adds our jump again, twice.
	for range 2 {
		if err := f.Append("filter", "FORWARD", "-j", FilterChain); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := n.Apply(testSpec); err != nil {
		t.Fatal(err)
	}
	lines, _ := f.List("filter", "FORWARD")
	if got := len(jumpLines(lines, "FORWARD", FilterChain)); got != 1 {
		t.Errorf("%d jumps to %s after apply, want 1: %q", got, FilterChain, lines)
	}
}

// dockerLike sets up what Docker leaves behind: FORWARD policy DROP and
// its own chains jumped to first.
func dockerLike(t *testing.T, f *fakeIPTables) {
	t.Helper()
	f.SetPolicy("filter", "FORWARD", "DROP")
	for _, c := range []string{"DOCKER-USER", "DOCKER-FORWARD"} {
		if err := f.NewChain("filter", c); err != nil {
			t.Fatal(err)
		}
	}
	must(t, f.Append("filter", "DOCKER-USER", "-j", "RETURN"))
	must(t, f.Append("filter", "FORWARD", "-j", "DOCKER-USER"))
	must(t, f.Append("filter", "FORWARD", "-j", "DOCKER-FORWARD"))
	must(t, f.Append("nat", "POSTROUTING", "-s", "172.17.0.0/16", "!", "-o", "docker0", "-j", "MASQUERADE"))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestApplyAndClearLeaveOtherRulesAlone(t *testing.T) {
	f := newFakeIPTables()
	dockerLike(t, f)
	baseline := f.Dump()
	n := NewIPTablesRunner(f, BackendIPTablesNFT)
	if _, err := n.Apply(testSpec); err != nil {
		t.Fatal(err)
	}
	fwd, _ := f.List("filter", "FORWARD")
	want := []string{
		"-P FORWARD DROP",
		"-A FORWARD -m comment --comment headnode -j HEADNODE-FWD",
		"-A FORWARD -j DOCKER-USER",
		"-A FORWARD -j DOCKER-FORWARD",
	}
	if diff := cmp.Diff(want, fwd); diff != "" {
		t.Errorf("FORWARD after apply (-want +got):\n%s", diff)
	}
	// Docker re-inserts DOCKER-USER at position 1 on network changes; we
	// must not fight over position.
	must(t, f.DeleteById("filter", "FORWARD", 2))
	must(t, f.Insert("filter", "FORWARD", 1, "-j", "DOCKER-USER"))
	if changes, err := n.Apply(testSpec); err != nil || len(changes) != 0 {
		t.Errorf("apply after Docker reordered FORWARD: changes %v, err %v", changes, err)
	}
	if _, err := n.Clear(); err != nil {
		t.Fatal(err)
	}
	after := f.Dump()
	// Docker's reordering is the only difference from the baseline.
	if strings.Count(after, "DOCKER-USER") != strings.Count(baseline, "DOCKER-USER") || strings.Contains(after, "headnode") || strings.Contains(after, "HEADNODE") {
		t.Errorf("clear left our traces or removed Docker's:\n%s", after)
	}
	if changes, err := n.Clear(); err != nil || len(changes) != 0 {
		t.Errorf("second clear: changes %v, err %v", changes, err)
	}
}

func TestClearRestoresBaselineExactly(t *testing.T) {
	f := newFakeIPTables()
	dockerLike(t, f)
	baseline := f.Dump()
	n := NewIPTablesRunner(f, BackendIPTablesNFT)
	if _, err := n.Apply(testSpec); err != nil {
		t.Fatal(err)
	}
	// A copy of our jump somewhere else, tagged by us, is also ours.
	must(t, f.Append("filter", "DOCKER-USER", "-m", "comment", "--comment", "headnode", "-j", "ACCEPT"))
	if _, err := n.Clear(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(baseline, f.Dump()); diff != "" {
		t.Errorf("after clear (-baseline +got):\n%s", diff)
	}
}

// The cluster moves to another interface or subnet (a renumbering at run
// time): one transaction replaces the rules, and nothing of the old spec
// stays.
func TestApplyFollowsSpecChanges(t *testing.T) {
	f := newFakeIPTables()
	n := NewIPTablesRunner(f, BackendIPTablesNFT)
	if _, err := n.Apply(testSpec); err != nil {
		t.Fatal(err)
	}
	n.Settle()
	moved := Spec{ClusterInterface: "br0", Subnet: netip.MustParsePrefix("10.151.0.0/24")}
	before := f.Execs()
	changes, err := n.Apply(moved)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) == 0 {
		t.Fatal("changing the cluster side changed nothing")
	}
	// Save and one restore of both chains; then, off the caller's wait,
	// the read-back that learns how iptables prints the new rules.
	if got := f.Execs() - before; got != 2 {
		t.Errorf("the change took %d iptables processes, want 2", got)
	}
	n.Settle()
	if got := f.Execs() - before; got != 3 {
		t.Errorf("the change and its read-back took %d iptables processes, want 3", got)
	}
	n.Settle()
	if got := f.Execs() - before; got != 3 {
		t.Errorf("a second Settle ran iptables again (%d processes in all)", got)
	}
	all := f.Dump()
	if strings.Contains(all, "eth0") || strings.Contains(all, "192.168.50.") || !strings.Contains(all, "! -i br0 -o br0") || !strings.Contains(all, "-s 10.151.0.0/24 ! -o br0") {
		t.Errorf("rules still mention the old cluster side, or lack the new:\n%s", all)
	}
}

func TestApplyReportsIPTablesFailure(t *testing.T) {
	f := newFakeIPTables()
	f.Fail = func(op, table, chain string) error {
		if op == "append" && table == "nat" {
			return errors.New("iptables: Couldn't load target `MASQUERADE'")
		}
		return nil
	}
	n := NewIPTablesRunner(f, BackendIPTablesNFT)
	_, err := n.Apply(testSpec)
	if err == nil || !strings.Contains(err.Error(), "MASQUERADE") {
		t.Fatalf("apply error = %v, want the iptables failure", err)
	}
	f.Fail = nil
	if _, err := n.Apply(testSpec); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(goldenRules, f.Dump()); diff != "" {
		t.Fatalf("rules after recovering (-want +got):\n%s", diff)
	}
}

func TestApplyRejectsIncompleteSpec(t *testing.T) {
	n := NewIPTablesRunner(newFakeIPTables(), BackendIPTablesNFT)
	if _, err := n.Apply(Spec{ClusterInterface: "eth0"}); err == nil {
		t.Error("apply without a subnet succeeded")
	}
	if _, err := n.Apply(Spec{Subnet: testSpec.Subnet}); err == nil {
		t.Error("apply without a cluster interface succeeded")
	}
}

// iptables 1.8.11's -C ignores -i/-o, so a check built on -C would accept a
// rule that differs only in its interfaces. Chains are compared by listing
// instead; a rule with the wrong interface is found and rewritten.
func TestApplyNoticesRuleDifferingOnlyInInterface(t *testing.T) {
	f := newFakeIPTables()
	n := NewIPTablesRunner(f, BackendIPTablesNFT)
	if _, err := n.Apply(testSpec); err != nil {
		t.Fatal(err)
	}
	must(t, f.ClearChain("filter", FilterChain))
	for _, r := range testSpec.rules(FilterChain) {
		r = slices.Clone(r)
		for i := range r {
			if r[i] == "eth0" {
				r[i] = "eth9"
			}
		}
		must(t, f.Append("filter", FilterChain, r...))
	}
	st, err := n.Check(testSpec)
	if err != nil || st.FilterChain {
		t.Fatalf("check accepted rules on the wrong interface: %+v, %v", st, err)
	}
	if _, err := n.Apply(testSpec); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(goldenRules, f.Dump()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// A repair is one iptables-save and one iptables-restore, whatever was
// wrong: the chain is never empty or half-written in between, because
// there is no in between.
func TestRepairIsOneTransaction(t *testing.T) {
	f := newFakeIPTables()
	n := NewIPTablesRunner(f, BackendIPTablesNFT)
	if _, err := n.Apply(testSpec); err != nil {
		t.Fatal(err)
	}
	n.Settle()
	restores := 0
	f.AfterRestore = func() { restores++ }
	for _, tamper := range []func(){
		func() { f.Flush("filter"); f.Flush("nat") },
		func() { must(t, f.Insert("filter", FilterChain, 1, "-j", "ACCEPT")) },
		func() { must(t, f.DeleteById("filter", FilterChain, 3)) },
		func() { must(t, f.Append("filter", "FORWARD", "-j", FilterChain)) },
	} {
		tamper()
		before, r := f.Execs(), restores
		if _, err := n.Apply(testSpec); err != nil {
			t.Fatal(err)
		}
		if got := f.Execs() - before; got != 2 || restores-r != 1 {
			t.Errorf("repair took %d processes (%d restores), want iptables-save and one iptables-restore", got, restores-r)
		}
		n.Settle()
		if diff := cmp.Diff(goldenRules, f.Dump()); diff != "" {
			t.Fatalf("(-want +got):\n%s", diff)
		}
	}
}

// Another program adds a rule to our chain the moment after our
// transaction, before we read the chain back to learn how iptables prints
// it. The listing then holds more than we wrote, so it must not become the
// expected listing: the next check repairs the chain.
func TestForeignRuleRightAfterOurWriteIsNotLearned(t *testing.T) {
	for _, restart := range []bool{false, true} {
		f := newFakeIPTables()
		n := NewIPTablesRunner(f, BackendIPTablesNFT)
		if restart {
			// Learned already; then our chain is tampered with and the
			// daemon restarts, so the repair has to learn again.
			if _, err := n.Apply(testSpec); err != nil {
				t.Fatal(err)
			}
			f.Flush("filter")
			n = NewIPTablesRunner(f, BackendIPTablesNFT)
		}
		once := false
		f.AfterRestore = func() {
			if !once {
				once = true
				must(t, f.Append("filter", FilterChain, "-s", "203.0.113.7/32", "-j", "ACCEPT"))
			}
		}
		if _, err := n.Apply(testSpec); err != nil {
			t.Fatal(err)
		}
		if !once {
			t.Fatal("the test's foreign insert did not run")
		}
		if st, err := n.Check(testSpec); err != nil || st.FilterChain {
			t.Errorf("restart %v: check accepts our chain with a foreign rule in it: %+v, %v", restart, st, err)
		}
		changes, err := n.Apply(testSpec)
		if err != nil || len(changes) == 0 {
			t.Fatalf("restart %v: the foreign rule was not repaired: %v, %v", restart, changes, err)
		}
		if diff := cmp.Diff(goldenRules, f.Dump()); diff != "" {
			t.Fatalf("restart %v: (-want +got):\n%s", restart, diff)
		}
		if changes, err := n.Apply(testSpec); err != nil || len(changes) != 0 {
			t.Errorf("restart %v: apply after the repair changed %v, %v", restart, changes, err)
		}
	}
}

// What iptables versions print differently (the order of the matches, a
// host's /32, the long option names) is still a printing of our rule; a
// copy of it with our comment but another interface or subnet is not.
func TestOnlyOursComparesInterfacesAndAddresses(t *testing.T) {
	mine := []string{"-A HEADNODE-FWD -s 192.168.50.0/24 ! -o eth0 -m comment --comment headnode -j ACCEPT"}
	for _, c := range []struct {
		listed string
		ours   bool
	}{
		{"-A HEADNODE-FWD ! -o eth0 -s 192.168.50.0/24 -m comment --comment \"headnode\" -j ACCEPT", true},
		{"-A HEADNODE-FWD --source 192.168.50.0/24 ! --out-interface eth0 -m comment --comment headnode -j ACCEPT", true},
		{"-A HEADNODE-FWD -s 192.168.50.0/24 ! -o eth9 -m comment --comment headnode -j ACCEPT", false},
		{"-A HEADNODE-FWD -s 192.168.50.0/24 -o eth0 -m comment --comment headnode -j ACCEPT", false},
		{"-A HEADNODE-FWD -s 0.0.0.0/0 ! -o eth0 -m comment --comment headnode -j ACCEPT", false},
		{"-A HEADNODE-FWD ! -o eth0 -m comment --comment headnode -j ACCEPT", false},
		{"-A HEADNODE-FWD -s 192.168.50.0/24 ! -o eth0 -d 10.0.0.1 -m comment --comment headnode -j ACCEPT", false},
		{"-A HEADNODE-FWD -s 192.168.50.0/24 ! -o eth0 -j ACCEPT", false},
		{"-A HEADNODE-FWD -s 192.168.50.0/24 ! -o eth0 -m comment --comment headnode -j DROP", false},
	} {
		if got := onlyOurs([]string{c.listed}, mine); got != c.ours {
			t.Errorf("onlyOurs(%q) = %v, want %v", c.listed, got, c.ours)
		}
	}
	if !maps.Equal(endpoints("-A X -d 10.0.0.1 -j ACCEPT"), endpoints("-A X -d 10.0.0.1/32 -j ACCEPT")) {
		t.Error("a host address and its /32 differ")
	}
}
