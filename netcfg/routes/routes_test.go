package routes

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/headnode/headnode/netcfg/sandbox"
	"github.com/headnode/headnode/netcfg/sandbox/sandboxtest"
)

func TestMain(m *testing.M) { os.Exit(sandboxtest.Run(m)) }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestWatchFollowsDefaultRoutes: a head with two uplinks; the default
// route appears on one, a second with a lower metric is added on the
// other, and the first is removed; each change is published.
func TestWatchFollowsDefaultRoutes(t *testing.T) {
	sandboxtest.Need(t)
	prefix := fmt.Sprintf("hnr%d", os.Getpid())
	var nss []*sandbox.NS
	for _, role := range []string{"head", "a", "b"} {
		ns, err := sandbox.New(prefix + role)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ns.Close() })
		nss = append(nss, ns)
	}
	head := nss[0]
	must(t, sandbox.Veth(head, "eth1", nss[1], "lan0"))
	must(t, sandbox.Veth(head, "wlan0", nss[2], "lan0"))
	must(t, head.AddAddr("eth1", "10.99.0.2/24"))
	must(t, head.AddAddr("wlan0", "10.98.0.2/24"))

	got := make(chan []Default, 16)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	h := head.Handle
	go func() { defer close(done); Watch(ctx, WatchOptions{Namespace: &h}, func(d []Default) { got <- d }) }()
	t.Cleanup(func() { cancel(); <-done })
	want := func(what string, ok func([]Default) bool) {
		t.Helper()
		deadline := time.After(5 * time.Second)
		for {
			select {
			case d := <-got:
				if ok(d) {
					return
				}
			case <-deadline:
				t.Fatalf("no publish with %s", what)
			}
		}
	}
	want("no default route", func(d []Default) bool { return len(d) == 0 })
	if _, err := head.Run("ip", "route", "add", "default", "via", "10.99.0.1", "dev", "eth1", "metric", "600"); err != nil {
		t.Fatal(err)
	}
	want("eth1", func(d []Default) bool {
		return len(d) == 1 && d[0].Interface == "eth1" && d[0].Metric == 600 && d[0].Gateway == "10.99.0.1"
	})
	if _, err := head.Run("ip", "route", "add", "default", "via", "10.98.0.1", "dev", "wlan0", "metric", "100"); err != nil {
		t.Fatal(err)
	}
	want("wlan0 first", func(d []Default) bool { return len(d) == 2 && d[0].Interface == "wlan0" && d[1].Interface == "eth1" })
	must(t, head.Down("wlan0"))
	want("wlan0 gone with its link", func(d []Default) bool { return len(d) == 1 && d[0].Interface == "eth1" })
}
