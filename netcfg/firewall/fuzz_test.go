package firewall

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzListing parses what iptables-save prints, as another program may
// have left it: quoted comments, odd spacing, other tools' rules. What is
// picked as ours must be lines of that chain, in their order, that jump to
// our chains or carry our comment.
func FuzzListing(f *testing.F) {
	f.Add("-P FORWARD DROP\n-A FORWARD -j DOCKER-USER\n-A FORWARD -m comment --comment headnode -j HEADNODE-FWD\n-A FORWARD -j HEADNODE-FWD")
	f.Add(":HEADNODE-FWD - [0:0]\n-A HEADNODE-FWD -s 192.168.50.0/24 -i eth0 -m comment --comment \"headnode\" -j ACCEPT")
	f.Add("-A FORWARD -m comment --comment \"headnode rule\" -j ACCEPT\n-A FORWARD -g HEADNODE-FWD\n-A FORWARD -j")
	f.Add("-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE\n-A POSTROUTING -m comment --comment headnode -j HEADNODE-POSTRT")
	f.Fuzz(func(t *testing.T, listing string) {
		lines := strings.Split(listing, "\n")
		for _, chain := range []string{"FORWARD", "POSTROUTING"} {
			var inChain []string
			for _, l := range lines {
				if strings.HasPrefix(l, "-A "+chain+" ") {
					inChain = append(inChain, l)
				}
			}
			for _, picked := range [][]string{jumpLines(lines, chain, FilterChain), ourLines(lines, chain)} {
				at := 0
				for _, l := range picked {
					i := slices.Index(inChain[at:], l)
					if i < 0 {
						t.Fatalf("picked %q, not a rule of %s after position %d", l, chain, at)
					}
					at += i + 1
					if tg := jumpTarget(l); tg != FilterChain && tg != NATChain && !hasOurComment(l) {
						t.Fatalf("picked %q, which is not ours", l)
					}
				}
			}
		}
	})
}

// FuzzApplyOverForeignChain fills our own chain with whatever someone put
// there; Apply must restore exactly our rules and then stay quiet.
func FuzzApplyOverForeignChain(f *testing.F) {
	f.Add("-j ACCEPT\n-i eth9 -o eth1 -j DROP")
	f.Add("-s 192.168.50.0/24 -i eth0 -o eth1 -m comment --comment headnode -j ACCEPT")
	f.Add("-j HEADNODE-FWD")
	f.Add("")
	f.Fuzz(func(t *testing.T, rules string) {
		ipt := newFakeIPTables()
		n := NewIPTablesRunner(ipt, BackendIPTablesNFT)
		if _, err := n.Apply(testSpec); err != nil {
			t.Fatal(err)
		}
		must(t, ipt.ClearChain("filter", FilterChain))
		for _, r := range strings.Split(rules, "\n") {
			if f := strings.Fields(r); len(f) > 0 {
				ipt.Append("filter", FilterChain, f...) // refused specs are fine
			}
		}
		if _, err := n.Apply(testSpec); err != nil {
			t.Fatalf("apply over %q: %v", rules, err)
		}
		if diff := cmp.Diff(goldenRules, ipt.Dump()); diff != "" {
			t.Fatalf("after apply over %q (-want +got):\n%s", rules, diff)
		}
		if changes, err := n.Apply(testSpec); err != nil || len(changes) != 0 {
			t.Fatalf("second apply: %v %v", changes, err)
		}
	})
}
