// Package sim runs the whole daemon without any hardware: in a sandbox of
// network namespaces (the user's network, the head node, one namespace per
// cluster node) it starts `headnode daemon` on the head and shows live what
// the daemon does: the uplink address, NAT, and whether each node reaches
// the outside.
package sim

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
	"github.com/headnode/headnode/netcfg/sandbox"
)

// Options configures a simulation.
type Options struct {
	Nodes    int           // cluster nodes, p1..pN
	Duration time.Duration // 0: until interrupted
	Out      io.Writer
	// Binary is the headnode executable to run as the daemon.
	Binary string
}

// Addresses of the sandbox. The "internet" is a server in the uplink
// namespace; nothing leaves the machine.
const (
	uplinkGateway = "10.99.0.1"
	headUplink    = "10.99.0.2/24"
	internetAddr  = "10.99.0.1:8080"
	clusterPrefix = "192.168.50."
)

// Run builds the sandbox, runs the daemon in it and reports until ctx ends
// or the duration passes. It removes everything it created on the way out.
func Run(ctx context.Context, o Options) error {
	if err := sandbox.Check(); err != nil {
		return fmt.Errorf("sim builds network namespaces and %v; run it with sudo", err)
	}
	if o.Nodes < 1 || o.Nodes > 32 {
		return fmt.Errorf("--nodes %d is out of range: use 1-32", o.Nodes)
	}
	if o.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Duration)
		defer cancel()
	}
	sb, err := build(o.Nodes)
	if err != nil {
		return err
	}
	defer sb.close()

	dir, err := os.MkdirTemp("", "headnode-sim")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg := filepath.Join(dir, "config.toml")
	sock := filepath.Join(dir, "control.sock")
	text := fmt.Sprintf(`# written by headnode sim
[network]
cluster_interface = "br0"
cluster_address = "%s1/24"
uplink_interface = "eth1"

[control]
socket = %q

[daemon]
state_dir = %q

[hardware]
backend = "sim"
`, clusterPrefix, sock, filepath.Join(dir, "state"))
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(dir, "daemon.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	d := sb.head.Command(o.Binary, "daemon", "--config", cfg)
	d.Stdout, d.Stderr = logf, logf
	if err := d.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- d.Wait() }()
	defer func() {
		d.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			d.Process.Kill()
		}
	}()

	fmt.Fprintf(o.Out, "headnode sim: head node with %d cluster nodes in network namespaces %s-*\n", o.Nodes, sb.prefix)
	fmt.Fprintf(o.Out, "  the user's network: 10.99.0.0/24 (gateway %s); the cluster: %s0/24 on br0\n", uplinkGateway, clusterPrefix)
	fmt.Fprintf(o.Out, "  try: sudo %s status --socket %s\n", o.Binary, sock)
	fmt.Fprintf(o.Out, "  daemon log: %s (removed on exit); Ctrl-C stops\n\n", logf.Name())

	stopInternet, err := sb.serveInternet()
	if err != nil {
		return err
	}
	defer stopInternet()

	client := api.NewClient(sock)
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	last := ""
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(o.Out, "stopping")
			return nil
		case err := <-exited:
			b, _ := os.ReadFile(logf.Name())
			return fmt.Errorf("the daemon exited (%v):\n%s", err, b)
		case <-tick.C:
		}
		s, err := client.Status(ctx)
		if err != nil {
			continue
		}
		line := sb.report(s)
		if line != last {
			fmt.Fprintf(o.Out, "%s  %s\n", time.Now().Format("15:04:05"), line)
			last = line
		}
	}
}

type sandboxNet struct {
	prefix   string
	uplink   *sandbox.NS
	head     *sandbox.NS
	nodes    []*sandbox.NS
	internet net.Listener
}

func build(n int) (*sandboxNet, error) {
	sb := &sandboxNet{prefix: "hnsim"}
	var err error
	fail := func(e error) (*sandboxNet, error) { sb.close(); return nil, e }
	if sb.uplink, err = sandbox.New(sb.prefix + "-uplink"); err != nil {
		return fail(err)
	}
	if sb.head, err = sandbox.New(sb.prefix + "-head"); err != nil {
		return fail(err)
	}
	steps := []error{
		sandbox.Veth(sb.head, "eth1", sb.uplink, "lan0"),
		sb.uplink.AddAddr("lan0", uplinkGateway+"/24"),
		sb.head.AddAddr("eth1", headUplink),
		sb.head.DefaultRoute(uplinkGateway),
		sb.head.Bridge("br0"),
	}
	for _, e := range steps {
		if e != nil {
			return fail(e)
		}
	}
	for i := 1; i <= n; i++ {
		ns, err := sandbox.New(fmt.Sprintf("%s-p%d", sb.prefix, i))
		if err != nil {
			return fail(err)
		}
		sb.nodes = append(sb.nodes, ns)
		ifname := fmt.Sprintf("ethpi%d", i)
		for _, e := range []error{
			sandbox.Veth(sb.head, ifname, ns, "eth0"),
			sb.head.Enslave(ifname, "br0"),
			ns.AddAddr("eth0", fmt.Sprintf("%s%d/24", clusterPrefix, 10+i)),
			ns.DefaultRoute(clusterPrefix + "1"),
		} {
			if e != nil {
				return fail(e)
			}
		}
	}
	return sb, nil
}

func (sb *sandboxNet) close() {
	for _, ns := range append([]*sandbox.NS{sb.uplink, sb.head}, sb.nodes...) {
		if ns != nil {
			ns.Close()
		}
	}
}

// serveInternet runs a TCP server in the uplink namespace that answers
// with the address it sees the client as: for a node behind the head,
// that is the head's uplink address.
func (sb *sandboxNet) serveInternet() (func(), error) {
	l, err := sb.uplink.Listen(internetAddr)
	if err != nil {
		return nil, err
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "%s\n", c.RemoteAddr().(*net.TCPAddr).IP)
			c.Close()
		}
	}()
	return func() { l.Close() }, nil
}

// report probes every node's way out and formats one status line.
func (sb *sandboxNet) report(s *api.Status) string {
	res := make([]string, len(sb.nodes))
	var wg sync.WaitGroup
	for i, ns := range sb.nodes {
		wg.Go(func() {
			c, err := ns.Dial(internetAddr, net.Dialer{Timeout: time.Second})
			if err != nil {
				res[i] = fmt.Sprintf("p%d: no way out", i+1)
				return
			}
			defer c.Close()
			c.SetReadDeadline(time.Now().Add(time.Second))
			b := make([]byte, 64)
			k, _ := c.Read(b)
			res[i] = fmt.Sprintf("p%d: out as %s", i+1, strings.TrimSpace(string(b[:k])))
		})
	}
	wg.Wait()
	uplink := s.Uplink.Address
	if uplink == "" {
		uplink = "none"
	}
	return fmt.Sprintf("%s | uplink %s | NAT %s | %s", s.Health.State, uplink, s.NAT.State, strings.Join(res, ", "))
}

// Self returns the path of the running executable, to start the daemon.
func Self() (string, error) {
	p, err := os.Executable()
	if err != nil {
		return "", err
	}
	if _, err := exec.LookPath(p); err != nil {
		return "", err
	}
	return p, nil
}
