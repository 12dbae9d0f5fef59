package nat

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The daemon's steps on a cluster side it has not checked yet: no
// interface at all changes nothing; Hold puts the rules in place but not
// the address; then the address; and giving the side up (a LAN after all)
// takes our address off it again. Each step applied twice changes nothing
// the second time.
func TestKernelHoldAndRelease(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			tp := newTopo(t)
			m := tp.manager(t, backend)
			addr := netip.MustParsePrefix("192.168.50.1/24")
			apply := func(what string) Result {
				t.Helper()
				res, err := m.Apply()
				if err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				again, err := m.Apply()
				if err != nil || len(again.Changes) != 0 {
					t.Fatalf("%s applied twice: %+v, %v", what, again.Changes, err)
				}
				return res
			}
			eth0 := func() string { out, _ := tp.head.Run("ip", "-4", "addr", "show", "eth0"); return out }

			m.SetDesired(Desired{ClusterAddress: addr})
			res := apply("no cluster interface")
			if len(res.Changes) != 0 || res.Subnet.IsValid() || !strings.Contains(strings.Join(res.Waiting, "|"), "no cluster interface chosen yet") {
				t.Errorf("with no cluster interface: %+v", res)
			}
			if r := ours(t, tp.head, backend); strings.Contains(r, "headnode") || forwarding(t, tp.head) != "0" {
				t.Errorf("something changed with no cluster interface: rules %q, forwarding %s", ours(t, tp.head, backend), forwarding(t, tp.head))
			}

			m.SetDesired(Desired{ClusterInterface: "eth0", ClusterAddress: addr, Hold: true})
			res = apply("held")
			if res.Subnet != addr.Masked() || strings.Contains(eth0(), "192.168.50.1/24") {
				t.Errorf("held: subnet %v, eth0:\n%s", res.Subnet, eth0())
			}
			if diff := cmp.Diff(golden(backend), ours(t, tp.head, backend)); diff != "" {
				t.Errorf("rules while held (-golden +got):\n%s", diff)
			}

			m.SetDesired(Desired{ClusterInterface: "eth0", ClusterAddress: addr})
			apply("taken")
			if !strings.Contains(eth0(), "192.168.50.1/24") {
				t.Errorf("taken, eth0 lacks our address:\n%s", eth0())
			}

			m.SetDesired(Desired{ClusterAddress: addr})
			res = apply("given up")
			if strings.Contains(eth0(), "192.168.50.1/24") || len(res.Changes) != 1 || !strings.Contains(res.Changes[0].Text, "removed 192.168.50.1/24 from eth0") {
				t.Errorf("given up: changes %+v, eth0:\n%s", res.Changes, eth0())
			}
		})
	}
}

// A request is not kept waiting behind a debounce: at start the cluster
// interface's first snapshot kicks the keeper just before the roles part
// claims the cluster side, and the claim (and so READY) waited out the
// whole debounce. Here the debounce is far longer than the test allows
// for the claim.
func TestKernelRequestEndsTheDebounce(t *testing.T) {
	tp := newTopo(t)
	k := NewKeeper(tp.manager(t, "netlink"), KeeperOptions{Debounce: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { k.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	if _, err := k.Status(ctx); err != nil { // the first check is done
		t.Fatal(err)
	}
	k.Kick()
	for len(k.kick) > 0 { // taken: the keeper is in its debounce
		time.Sleep(time.Millisecond)
	}
	claim, cancelClaim := context.WithTimeout(ctx, 10*time.Second)
	defer cancelClaim()
	res, err := k.SetDesired(claim, Desired{ClusterInterface: "eth0", ClusterAddress: netip.MustParsePrefix("192.168.50.1/24")})
	if err != nil || res.Subnet.String() != "192.168.50.0/24" {
		t.Fatalf("claim during a debounce: %+v, %v", res, err)
	}
	st, err := k.Status(claim)
	if err != nil || !st.RulesPresent {
		t.Fatalf("after the claim: rules present %v, %v", st.RulesPresent, err)
	}
}
