// Package probelab builds the network namespaces that probe tests and
// benchmarks run in: a head and a node joined by a veth pair. Addresses
// put on the node answer; other addresses of 10.77.0.0/16 get no ARP
// answer, like a node that is off. No packet leaves the namespaces.
package probelab

import (
	"fmt"
	"os"
	"sync/atomic"
	"testing"

	"github.com/headnode/headnode/netcfg/sandbox"
	"github.com/headnode/headnode/netcfg/sandbox/sandboxtest"
	"github.com/headnode/headnode/power/probe"
)

var seq atomic.Int32

// Lab is the two namespaces.
type Lab struct {
	Head, Node *sandbox.NS
}

// New builds a lab (head 10.77.0.1/16 on v0, node 10.77.0.2/16 on v1),
// removed when the test ends. It skips without root unless
// HEADNODE_REQUIRE_NETNS is set.
func New(t testing.TB) *Lab {
	t.Helper()
	sandboxtest.Need(t)
	id := fmt.Sprintf("hnp%d-%d", os.Getpid(), seq.Add(1))
	l := &Lab{}
	for _, p := range []struct {
		ns   **sandbox.NS
		name string
	}{{&l.Head, id + "h"}, {&l.Node, id + "n"}} {
		ns, err := sandbox.New(p.name)
		if err != nil {
			t.Fatal(err)
		}
		*p.ns = ns
		t.Cleanup(func() { ns.Close() })
		if err := ns.Up("lo"); err != nil {
			t.Fatal(err)
		}
	}
	for _, err := range []error{
		sandbox.Veth(l.Head, "v0", l.Node, "v1"),
		l.Head.AddAddr("v0", "10.77.0.1/16"),
		l.Node.AddAddr("v1", "10.77.0.2/16"),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return l
}

// Prober opens a prober ("icmp", "tcp:22") in the head namespace.
func (l *Lab) Prober(t testing.TB, setting string) probe.Prober {
	t.Helper()
	var p probe.Prober
	err := l.Head.Do(func() error {
		var err error
		p, err = probe.New(setting)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}
