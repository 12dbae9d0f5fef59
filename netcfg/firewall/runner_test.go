package firewall

import (
	"errors"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/headnode/headnode/netcfg/change"
)

var testSpec = Spec{ClusterInterface: "eth0", UplinkInterface: "eth1", Subnet: netip.MustParsePrefix("192.168.50.0/24")}

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
	n := NewIPTablesRunner(f)
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
	if diff := cmp.Diff(goldenRules, f.Save()); diff != "" {
		t.Fatalf("rules after apply (-want +got):\n%s", diff)
	}
	if flushed != 1 {
		t.Errorf("conntrack flushed %d times on install, want 1", flushed)
	}

	before := f.Execs()
	changes, err = n.Apply(testSpec)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 0 {
		t.Errorf("second apply changed %v", changes)
	}
	if got := f.Execs() - before; got != 4 {
		t.Errorf("second apply ran %d iptables calls, want 4 listings", got)
	}
	if diff := cmp.Diff(goldenRules, f.Save()); diff != "" {
		t.Fatalf("rules after second apply (-want +got):\n%s", diff)
	}
	if flushed != 1 {
		t.Errorf("conntrack flushed again although nothing changed")
	}
}

func TestApplyRepairsFlushedTables(t *testing.T) {
	f := newFakeIPTables()
	n := NewIPTablesRunner(f)
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
	if diff := cmp.Diff(want, f.Save()); diff != "" {
		t.Fatalf("rules after repair (-want +got); the policy must stay DROP:\n%s", diff)
	}
	if st, _ := n.Check(testSpec); !st.Present() || st.Policy != "DROP" {
		t.Errorf("check after repair: %+v", st)
	}
}

func TestApplyRepairsDeletedChain(t *testing.T) {
	f := newFakeIPTables()
	n := NewIPTablesRunner(f)
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
	if diff := cmp.Diff(goldenRules, f.Save()); diff != "" {
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
	n := NewIPTablesRunner(f)
	if _, err := n.Apply(testSpec); err != nil {
		t.Fatal(err)
	}
	// A daemon restart loses the learned spelling: the first check
	// rewrites once, then it is stable.
	n = NewIPTablesRunner(f)
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
	n := NewIPTablesRunner(f)
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
	if got := len(jumpRuleIDs(lines, "FORWARD", FilterChain)); got != 1 {
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
	baseline := f.Save()
	n := NewIPTablesRunner(f)
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
	after := f.Save()
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
	baseline := f.Save()
	n := NewIPTablesRunner(f)
	if _, err := n.Apply(testSpec); err != nil {
		t.Fatal(err)
	}
	// A copy of our jump somewhere else, tagged by us, is also ours.
	must(t, f.Append("filter", "DOCKER-USER", "-m", "comment", "--comment", "headnode", "-j", "ACCEPT"))
	if _, err := n.Clear(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(baseline, f.Save()); diff != "" {
		t.Errorf("after clear (-baseline +got):\n%s", diff)
	}
}

func TestApplyFollowsSpecChanges(t *testing.T) {
	f := newFakeIPTables()
	n := NewIPTablesRunner(f)
	if _, err := n.Apply(testSpec); err != nil {
		t.Fatal(err)
	}
	wifi := testSpec
	wifi.UplinkInterface = "wlan0"
	changes, err := n.Apply(wifi)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) == 0 {
		t.Fatal("changing the uplink changed nothing")
	}
	all := f.Save()
	if strings.Contains(all, "eth1") || !strings.Contains(all, "-o wlan0") {
		t.Errorf("rules still mention the old uplink:\n%s", all)
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
	n := NewIPTablesRunner(f)
	_, err := n.Apply(testSpec)
	if err == nil || !strings.Contains(err.Error(), "MASQUERADE") {
		t.Fatalf("apply error = %v, want the iptables failure", err)
	}
	f.Fail = nil
	if _, err := n.Apply(testSpec); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(goldenRules, f.Save()); diff != "" {
		t.Fatalf("rules after recovering (-want +got):\n%s", diff)
	}
}

func TestApplyRejectsIncompleteSpec(t *testing.T) {
	n := NewIPTablesRunner(newFakeIPTables())
	if _, err := n.Apply(Spec{ClusterInterface: "eth0", UplinkInterface: "eth1"}); err == nil {
		t.Error("apply without a subnet succeeded")
	}
}

// iptables 1.8.11's -C ignores -i/-o, so a check built on -C would accept a
// rule that differs only in its interfaces. Chains are compared by listing
// instead; a rule with the wrong interface is found and rewritten.
func TestApplyNoticesRuleDifferingOnlyInInterface(t *testing.T) {
	f := newFakeIPTables()
	n := NewIPTablesRunner(f)
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
	if diff := cmp.Diff(goldenRules, f.Save()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
