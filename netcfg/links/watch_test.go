package links

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/headnode/headnode/netcfg/sandbox"
	"github.com/headnode/headnode/netcfg/sandbox/sandboxtest"
)

// newHead builds a head namespace whose uplink eth1 (10.99.0.2/24) is a
// veth pair to a second namespace, as the uplink of the NAT tests is.
func newHead(t *testing.T) *sandbox.NS {
	t.Helper()
	sandboxtest.Need(t)
	// Unique per process: go test runs packages in parallel, and other
	// packages build namespaces too.
	prefix := fmt.Sprintf("hnl%d", os.Getpid())
	var nss []*sandbox.NS
	for _, role := range []string{"head", "out"} {
		ns, err := sandbox.New(prefix + role)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ns.Close() })
		nss = append(nss, ns)
	}
	head, outside := nss[0], nss[1]
	must(t, sandbox.Veth(head, "eth1", outside, "out0"))
	must(t, head.AddAddr("eth1", "10.99.0.2/24"))
	return head
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// watch runs a Watcher on ns and returns a function that waits until a
// published snapshot satisfies cond, returning when it was published.
func watch(t *testing.T, ns *sandbox.NS, o WatchOptions) (*Watcher, func(what string, cond func(map[string]State) bool) time.Time) {
	t.Helper()
	h := ns.Handle
	o.Namespace = &h
	w, err := NewWatcher(o)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	type snap struct {
		at    time.Time
		links map[string]State
	}
	var snaps []snap
	wake := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		w.Run(ctx, func(l map[string]State) {
			mu.Lock()
			snaps = append(snaps, snap{time.Now(), l})
			mu.Unlock()
			select {
			case wake <- struct{}{}:
			default:
			}
		})
		close(done)
	}()
	t.Cleanup(func() { cancel(); <-done; w.Close() })
	next := 0
	return w, func(what string, cond func(map[string]State) bool) time.Time {
		t.Helper()
		deadline := time.After(5 * time.Second)
		for {
			mu.Lock()
			for ; next < len(snaps); next++ {
				if cond(snaps[next].links) {
					at := snaps[next].at
					next++
					mu.Unlock()
					return at
				}
			}
			mu.Unlock()
			select {
			case <-wake:
			case <-deadline:
				t.Fatalf("no snapshot with %s within 5 s", what)
			}
		}
	}
}

func uplinkIs(addr string) func(map[string]State) bool {
	return func(l map[string]State) bool {
		a, ok := l["eth1"].Address()
		if addr == "" {
			return !ok
		}
		return ok && a == netip.MustParsePrefix(addr)
	}
}

func TestKernelWatcherFollowsUplinkAddress(t *testing.T) {
	head := newHead(t)
	_, await := watch(t, head, WatchOptions{})
	await("the initial address", uplinkIs("10.99.0.2/24"))

	// A DHCP server hands out a new lease: the client adds the new address
	// and deletes the old one. With promote_secondaries=0 (the default),
	// deleting the old primary also deletes the new same-subnet address,
	// so a client re-adds it: the address is briefly gone.
	for i, step := range []struct {
		do   func() error
		want string
	}{
		{func() error { return head.DelAddr("eth1", "10.99.0.2/24") }, ""},
		{func() error { return head.AddAddr("eth1", "10.99.0.7/24") }, "10.99.0.7/24"},
		{func() error { return head.AddAddr("eth1", "172.16.5.9/16") }, "10.99.0.7/24"},
	} {
		start := time.Now()
		if err := step.do(); err != nil {
			t.Fatal(err)
		}
		at := await(fmt.Sprintf("uplink %q (step %d)", step.want, i), uplinkIs(step.want))
		lat := at.Sub(start)
		t.Logf("step %d: published %q after %v", i, step.want, lat)
		if lat > 100*time.Millisecond {
			t.Errorf("step %d took %v to publish, want under 100 ms", i, lat)
		}
	}
}

func TestKernelWatcherIgnoresLinkLocalAndSecondary(t *testing.T) {
	head := newHead(t)
	_, await := watch(t, head, WatchOptions{})
	await("the initial address", uplinkIs("10.99.0.2/24"))
	// An IPv4LL fallback and a secondary in the same subnet must not
	// replace the primary.
	must(t, head.AddAddr("eth1", "169.254.3.4/16"))
	must(t, head.AddAddr("eth1", "10.99.0.9/24"))
	must(t, head.DelAddr("eth1", "10.99.0.2/24"))
	// With the primary gone, the secondary is deleted too (no promotion)
	// and only the link-local address remains: no usable address.
	await("no usable address", func(l map[string]State) bool {
		return l["eth1"].Exists && len(l["eth1"].IPv4) == 0
	})
}

func TestKernelWatcherSurvivesOverflow(t *testing.T) {
	sandboxtest.Need(t)
	ns, err := sandbox.New(fmt.Sprintf("hnc%dovf", os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	must(t, ns.Bridge("eth1"))
	// A tiny buffer and a burst of addresses: the kernel drops events
	// (ENOBUFS), the subscription dies, and only resubscribing and
	// relisting can get the state right.
	w, await := watch(t, ns, WatchOptions{ReceiveBuffer: 2048})
	await("eth1", func(l map[string]State) bool { return l["eth1"].Exists })
	for i := range 400 {
		must(t, ns.AddAddr("eth1", fmt.Sprintf("10.%d.%d.1/24", 100+i/200, i%200)))
	}
	must(t, ns.AddAddr("eth1", "10.250.0.1/24"))
	await("all 401 addresses", func(l map[string]State) bool { return len(l["eth1"].IPv4) == 401 })
	if w.Resubscribes() == 0 {
		t.Error("the burst did not overflow the subscription; the test proves nothing about recovery")
	}
	t.Logf("resubscribed %d times", w.Resubscribes())
}
