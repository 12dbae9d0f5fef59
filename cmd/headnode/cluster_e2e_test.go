package main

// A cluster for the monitoring end-to-end tests: the head with its uplink
// and a bridge of Ethernet nodes, each node a namespace of its own whose
// link follows its emulated power:
//
//	outside (out0 10.99.0.1) -- eth1 (10.99.0.2) [head] br0 (192.168.50.1)
//	                                                 | cn1 -- eth0 p1 (192.168.50.11)
//	                                                 | cn2 -- eth0 p2 (192.168.50.12)
//
// The head runs on the emulated ClusterHAT of [hardware] backend = "sim"
// (p1-p4); only the nodes given get a namespace.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
	"github.com/headnode/headnode/netcfg/sandbox"
	"github.com/headnode/headnode/netcfg/sandbox/sandboxtest"
)

type cluster struct {
	*topo
	nodes []*sandbox.NS // p1, p2, ...
	sock  string
}

// newCluster builds the head, the outside and n node namespaces.
func newCluster(t *testing.T, n int) *cluster {
	t.Helper()
	tp := newTopo(t, false)
	c := &cluster{topo: tp, sock: filepath.Join(tp.dir, "control.sock")}
	prefix := strings.TrimSuffix(tp.head.Name, "head")
	must(t, sandbox.Veth(tp.head, "eth1", tp.outside, "out0"))
	must(t, tp.head.AddAddr("eth1", "10.99.0.2/24"))
	must(t, tp.outside.AddAddr("out0", "10.99.0.1/24"))
	for i := 1; i <= n; i++ {
		ns, err := sandbox.New(fmt.Sprintf("%sp%d", prefix, i))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ns.Close() })
		must(t, sandbox.Veth(tp.head, fmt.Sprintf("cn%d", i), ns, "eth0"))
		must(t, ns.AddAddr("eth0", fmt.Sprintf("192.168.50.%d/24", 10+i)))
		must(t, ns.DefaultRoute("192.168.50.1"))
		// Off until powered on.
		must(t, tp.head.Down(fmt.Sprintf("cn%d", i)))
		c.nodes = append(c.nodes, ns)
	}
	return c
}

// config writes the daemon's configuration: the bridge of cnN ports on
// the emulated ClusterHAT, quick probing, no LCD or LED unless extra
// turns them on.
func (c *cluster) config(t *testing.T, extra string) string {
	t.Helper()
	path := filepath.Join(c.dir, "config.toml")
	text := fmt.Sprintf(`[network]
cluster_interface = "br0"
cluster_address = "192.168.50.1/24"
uplink_interface = "eth1"

[bridge]
enabled = true
ports = ["cn*"]

[dhcp]
probe = "0s"

[power]
stagger = "100ms"
boot_grace = "3s"
probe_interval = "200ms"
down_after = "600ms"

[hardware]
backend = "sim"

[control]
socket = %q

[daemon]
state_dir = %q
%s`, c.sock, filepath.Join(c.dir, "state"), extra)
	if !strings.Contains(extra, "[lcd]") {
		text += "\n[lcd]\nenabled = false\n"
	}
	if !strings.Contains(extra, "[led]") {
		text += "\n[led]\nenabled = false\n"
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// followPower makes each node's link follow its power, read back from the
// emulated board, as a powered-off Pi drops off the network.
func (c *cluster) followPower(t *testing.T, d *daemonProc) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			d.client.Watch(ctx, func(s *api.Status) bool {
				for i := range c.nodes {
					name := fmt.Sprintf("p%d", i+1)
					link := fmt.Sprintf("cn%d", i+1)
					if n := nodeOf(s, name); n.Powered != nil && *n.Powered {
						c.head.Up(link)
					} else {
						c.head.Down(link)
					}
				}
				return true
			})
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
}

// powerOn powers the named nodes on through the CLI and waits until they
// are up.
func (c *cluster) powerOn(t *testing.T, d *daemonProc, nodes ...string) {
	t.Helper()
	if out, errOut, code := run(t, nil, append([]string{"on", "--socket", c.sock}, nodes...)...); code != 0 {
		t.Fatalf("on %v: exit %d %s%s", nodes, code, out, errOut)
	}
	d.waitFor(t, strings.Join(nodes, ", ")+" up", func(s *api.Status) bool {
		for _, n := range nodes {
			if nodeOf(s, n).State != api.NodeUp {
				return false
			}
		}
		return true
	})
}

// silence makes a node stop answering, as a hung node does: its link
// stays, nothing comes back. heal undoes it.
func silence(t *testing.T, ns *sandbox.NS) {
	t.Helper()
	for _, chain := range []string{"INPUT", "OUTPUT"} {
		if _, err := ns.Run("iptables", "-A", chain, "-j", "DROP"); err != nil {
			t.Fatal(err)
		}
	}
}

func heal(t *testing.T, ns *sandbox.NS) {
	t.Helper()
	if _, err := ns.Run("iptables", "-F"); err != nil {
		t.Fatal(err)
	}
}

// background starts a long-running program in ns, stopped (SIGTERM, then
// SIGKILL) when the test ends; its output is logged if the test failed.
type process struct {
	cmd    *exec.Cmd
	log    *sandboxtest.Output
	exited chan struct{}
}

func background(t *testing.T, ns *sandbox.NS, name string, args ...string) *process {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed: %v", name, err)
	}
	p := &process{log: &sandboxtest.Output{}, exited: make(chan struct{})}
	p.cmd = ns.Command(path, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(5 * time.Second):
			p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("%s in %s (the last 60 lines):\n%s", name, ns.Name, tail(p.log.String(), 60))
		}
	})
	return p
}
