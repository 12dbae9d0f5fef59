package main

// End-to-end tests of the headnode binary, run as a user would run it, in
// throwaway network namespaces:
//
//	inside (in0 192.168.50.2) -- eth0 [head] eth1 (10.99.0.2) -- (out0 10.99.0.1) outside
//
// outside has no route back to 192.168.50.0/24: a reply only arrives if the
// head NATed the connection.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
	"github.com/headnode/headnode/netcfg/sandbox"
	"github.com/headnode/headnode/netcfg/sandbox/sandboxtest"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "headnode-e2e")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "headnode")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building headnode: %v\n%s", err, out)
		os.Exit(1)
	}
	code := sandboxtest.Run(m) // and fail when a test left a process running
	os.RemoveAll(dir)
	os.Exit(code)
}

type topo struct {
	inside, head, outside *sandbox.NS
	dir                   string
}

var nsSeq sync.Mutex
var nsCount int

// newTopo builds the three namespaces. withLinks false leaves head without
// interfaces (they "come later").
func newTopo(t *testing.T, withLinks bool) *topo {
	t.Helper()
	sandboxtest.Need(t)
	nsSeq.Lock()
	nsCount++
	prefix := fmt.Sprintf("hne%d-%d", os.Getpid(), nsCount)
	nsSeq.Unlock()
	tp := &topo{dir: t.TempDir()}
	for _, p := range []struct {
		ns   **sandbox.NS
		role string
	}{{&tp.inside, "in"}, {&tp.head, "head"}, {&tp.outside, "out"}} {
		ns, err := sandbox.New(prefix + p.role)
		if err != nil {
			t.Fatal(err)
		}
		*p.ns = ns
		t.Cleanup(func() { ns.Close() })
	}
	if withLinks {
		tp.addLinks(t)
	}
	return tp
}

func (tp *topo) addLinks(t *testing.T) {
	t.Helper()
	for _, err := range []error{
		sandbox.Veth(tp.head, "eth0", tp.inside, "in0"),
		sandbox.Veth(tp.head, "eth1", tp.outside, "out0"),
		tp.head.AddAddr("eth1", "10.99.0.2/24"),
		tp.outside.AddAddr("out0", "10.99.0.1/24"),
		tp.inside.AddAddr("in0", "192.168.50.2/24"),
		tp.inside.DefaultRoute("192.168.50.1"),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// config writes a configuration for the daemon in head and returns its
// path.
func (tp *topo) config(t *testing.T, extra string) string {
	t.Helper()
	path := filepath.Join(tp.dir, "config.toml")
	text := fmt.Sprintf(`[network]
cluster_interface = "eth0"
cluster_address = "192.168.50.1/24"
uplink_interface = "eth1"
%s
[control]
socket = %q

[daemon]
state_dir = %q

# No LCD or LED on the test machine: their absence would make health
# "degraded" (display_e2e_test.go covers them, emulated).
[lcd]
enabled = false

[led]
enabled = false
`, extra, filepath.Join(tp.dir, "control.sock"), filepath.Join(tp.dir, "state"))
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

type daemonProc struct {
	cmd    *exec.Cmd
	client *api.Client
	log    *sandboxtest.Output
	exited chan struct{}
}

// startDaemon runs `headnode daemon` in head and waits until its status
// says ready. env is added to the daemon's environment.
func (tp *topo) startDaemon(t *testing.T, cfg string, env ...string) *daemonProc {
	t.Helper()
	d := &daemonProc{log: &sandboxtest.Output{}, exited: make(chan struct{})}
	d.cmd = tp.head.Command(binary, "daemon", "--config", cfg)
	d.cmd.Env = append(os.Environ(), env...)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.cmd.Wait(); close(d.exited) }()
	t.Cleanup(func() {
		d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.exited:
		case <-time.After(5 * time.Second):
			d.cmd.Process.Kill()
			<-d.exited
		}
		if t.Failed() {
			t.Logf("daemon log (the last 200 lines):\n%s", tail(d.log.String(), 200))
		}
	})
	d.client = api.NewClient(filepath.Join(tp.dir, "control.sock"))
	d.waitFor(t, "ready", func(s *api.Status) bool { return s.Ready })
	return d
}

// logged reports whether the daemon's log contains s, waiting up to 2 s:
// the log arrives through a pipe, after the status that reports the same
// event may already have been seen.
func (d *daemonProc) logged(s string) bool {
	deadline := time.Now().Add(2 * time.Second)
	for {
		if strings.Contains(d.log.String(), s) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits for the daemon to exit.
func (d *daemonProc) stop(t *testing.T) {
	t.Helper()
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(5 * time.Second):
		t.Fatal("daemon did not stop on SIGTERM")
	}
}

// waitFor watches the daemon's status stream until cond holds (5 s at most)
// and returns the matching status and when it arrived.
func (d *daemonProc) waitFor(t *testing.T, what string, cond func(*api.Status) bool) (*api.Status, time.Time) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		var got *api.Status
		var at time.Time
		err := d.client.Watch(ctx, func(s *api.Status) bool {
			if cond(s) {
				got, at = s, time.Now()
				return false
			}
			return true
		})
		cancel()
		if got != nil {
			return got, at
		}
		select {
		case <-d.exited:
			t.Fatalf("daemon exited while waiting for %s:\n%s", what, d.log.String())
		default:
		}
		if time.Now().After(deadline) {
			s, _ := d.client.Status(context.Background())
			t.Fatalf("daemon not %s within 5 s (last error %v); status %+v", what, err, s)
		}
		time.Sleep(20 * time.Millisecond) // socket not there yet
	}
}

// run runs the headnode CLI in ns and returns stdout, stderr and the exit
// code.
func run(t *testing.T, ns *sandbox.NS, args ...string) (string, string, int) {
	t.Helper()
	var cmd *exec.Cmd
	if ns != nil {
		cmd = ns.Command(binary, args...)
	} else {
		cmd = exec.Command(binary, args...)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), code
}

var dial = sandboxtest.SourceSeen

var port = struct {
	sync.Mutex
	n int
}{n: 20000}

// nextAddr returns a fresh port on host, so that no test waits for a
// previous listener's TIME_WAIT.
func nextAddr(host string) string {
	port.Lock()
	defer port.Unlock()
	port.n++
	return fmt.Sprintf("%s:%d", host, port.n)
}

// 1 and 2: connections from the cluster get out, NATed; new connections
// from the uplink do not get in.
func TestE2ENATOutboundAndInbound(t *testing.T) {
	tp := newTopo(t, true)
	d := tp.startDaemon(t, tp.config(t, ""))
	s, _ := d.waitFor(t, "NAT ok", func(s *api.Status) bool { return s.NAT.State == api.NATOK })
	if s.Uplink.Address != "10.99.0.2/24" {
		t.Errorf("uplink address %q, want 10.99.0.2/24", s.Uplink.Address)
	}
	src, err := dial(tp.inside, tp.outside, nextAddr("10.99.0.1"), 2*time.Second)
	if err != nil {
		t.Fatalf("inside -> outside: %v", err)
	}
	if src != "10.99.0.2" {
		t.Errorf("outside saw %s, want the head's uplink address 10.99.0.2", src)
	}
	// Give outside a route to the cluster, so that only our rules can stop
	// a new inbound connection.
	if err := tp.outside.Route("192.168.50.0/24", "10.99.0.2"); err != nil {
		t.Fatal(err)
	}
	if src, err := dial(tp.outside, tp.inside, nextAddr("192.168.50.2"), 500*time.Millisecond); err == nil {
		t.Errorf("a new connection from the uplink reached a node (it saw %s)", src)
	}
}

// 3: with FORWARD policy DROP, another program flushes both tables; the
// running daemon restores connectivity within 2 s.
func TestE2ERepairsFlushWithin2s(t *testing.T) {
	for _, backend := range []string{"nft", "legacy"} {
		t.Run(backend, func(t *testing.T) {
			tp := newTopo(t, true)
			iptables := "iptables-" + backend
			if _, err := tp.head.Run(iptables, "-P", "FORWARD", "DROP"); err != nil {
				t.Fatal(err)
			}
			d := tp.startDaemon(t, tp.config(t, fmt.Sprintf("iptables = %q\n", backend)))
			d.waitFor(t, "NAT ok", func(s *api.Status) bool { return s.NAT.State == api.NATOK })
			if _, err := dial(tp.inside, tp.outside, nextAddr("10.99.0.1"), 2*time.Second); err != nil {
				t.Fatalf("before the flush: %v", err)
			}
			if _, err := tp.head.Run(iptables, "-F"); err != nil {
				t.Fatal(err)
			}
			if _, err := tp.head.Run(iptables, "-t", "nat", "-F"); err != nil {
				t.Fatal(err)
			}
			flushed := time.Now()
			broken := false
			for {
				_, err := dial(tp.inside, tp.outside, nextAddr("10.99.0.1"), 150*time.Millisecond)
				if err == nil {
					break
				}
				broken = true
				if time.Since(flushed) > 2*time.Second {
					t.Fatalf("connectivity not back 2 s after the flush: %v", err)
				}
			}
			t.Logf("%s: connectivity back %v after the flush (was broken in between: %v)", backend, time.Since(flushed).Round(time.Millisecond), broken)
			s, _ := d.waitFor(t, "a repair counted", func(s *api.Status) bool { return s.NAT.Repairs == 1 })
			if s.NAT.State != api.NATOK {
				t.Errorf("NAT state after repair: %+v", s.NAT)
			}
			if !d.logged("restored") {
				t.Errorf("the repair was not logged:\n%s", d.log.String())
			}
			out, _, _ := run(t, tp.head, "nat", "status", "--config", tp.config(t, fmt.Sprintf("iptables = %q\n", backend)))
			if !regexp.MustCompile(`repairs\s+1\n`).MatchString(out) {
				t.Errorf("nat status does not show the repair:\n%s", out)
			}
		})
	}
}

// Whole-table rewrites: ufw reload, firewalld reload and k3s-killall all
// restore a saved ruleset that does not contain our rules (iptables-restore
// without --noflush). The daemon puts them back, beside ufw's own chains and
// its FORWARD policy DROP, and leaves those alone.
func TestE2ERepairsAfterTableRewrite(t *testing.T) {
	tp := newTopo(t, true)
	ufw := `*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:ufw-before-forward - [0:0]
:ufw-reject-forward - [0:0]
-A FORWARD -j ufw-before-forward
-A FORWARD -j ufw-reject-forward
-A INPUT -i lo -j ACCEPT
-A ufw-before-forward -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-POSTROUTING - [0:0]
-A POSTROUTING -j KUBE-POSTROUTING
COMMIT
`
	restore := func() {
		t.Helper()
		c := tp.head.Command("iptables-restore")
		c.Stdin = strings.NewReader(ufw)
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("iptables-restore: %v\n%s", err, out)
		}
	}
	restore()
	d := tp.startDaemon(t, tp.config(t, ""))
	d.waitFor(t, "NAT ok", func(s *api.Status) bool { return s.NAT.State == api.NATOK })
	if src, err := dial(tp.inside, tp.outside, nextAddr("10.99.0.1"), 2*time.Second); err != nil || src != "10.99.0.2" {
		t.Fatalf("beside ufw: %q, %v", src, err)
	}
	restore() // "ufw reload"
	rewritten := time.Now()
	for {
		if _, err := dial(tp.inside, tp.outside, nextAddr("10.99.0.1"), 150*time.Millisecond); err == nil {
			break
		}
		if time.Since(rewritten) > 2*time.Second {
			t.Fatal("connectivity not back 2 s after the table rewrite")
		}
	}
	t.Logf("connectivity back %v after the rewrite", time.Since(rewritten).Round(time.Millisecond))
	d.waitFor(t, "the repair counted", func(s *api.Status) bool { return s.NAT.Repairs >= 1 })
	save := iptablesSave(t, tp.head)
	for _, want := range []string{":FORWARD DROP", "-A FORWARD -j ufw-before-forward", "-A POSTROUTING -j KUBE-POSTROUTING", ":INPUT DROP"} {
		if !strings.Contains(save, want) {
			t.Errorf("ufw/k3s state changed: %q missing from\n%s", want, save)
		}
	}
}

// 4: the uplink gets a new address; the daemon publishes it within 100 ms
// and new connections leave with it.
func TestE2EUplinkAddressChange(t *testing.T) {
	tp := newTopo(t, true)
	d := tp.startDaemon(t, tp.config(t, ""))
	d.waitFor(t, "NAT ok", func(s *api.Status) bool { return s.NAT.State == api.NATOK })

	// Watch the stream from before the change, so the measurement is
	// event -> published, not polling.
	got := make(chan time.Time, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watching := make(chan struct{})
	go d.client.Watch(ctx, func(s *api.Status) bool {
		select {
		case <-watching:
		default:
			close(watching)
		}
		if s.Uplink.Address == "10.99.0.7/24" {
			got <- time.Now()
			return false
		}
		return true
	})
	<-watching
	changed := time.Now()
	tp.renumberUplink(t)
	select {
	case at := <-got:
		lat := at.Sub(changed)
		t.Logf("new uplink address published %v after the change", lat)
		if lat > 100*time.Millisecond {
			t.Errorf("published after %v, want within 100 ms", lat)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("new address never published")
	}
	src, err := dial(tp.inside, tp.outside, nextAddr("10.99.0.1"), 2*time.Second)
	if err != nil {
		t.Fatalf("inside -> outside after the change: %v", err)
	}
	if src != "10.99.0.7" {
		t.Errorf("outside saw %s, want the new address 10.99.0.7", src)
	}
}

// renumberUplink moves the head's uplink from 10.99.0.2/24 to
// 10.99.0.7/24, as a DHCP client does: the new address first, then the old
// one deleted.
func (tp *topo) renumberUplink(t *testing.T) {
	t.Helper()
	must(t, tp.head.AddAddr("eth1", "10.99.0.7/24"))
	must(t, tp.head.DelAddr("eth1", "10.99.0.2/24"))
	// promote_secondaries=0: deleting the old primary took the new
	// address with it, as a DHCP client's renumbering does; it re-adds.
	if out, _ := tp.head.Run("ip", "-4", "addr", "show", "eth1"); !strings.Contains(out, "10.99.0.7") {
		must(t, tp.head.AddAddr("eth1", "10.99.0.7/24"))
	}
}

var commentLine = regexp.MustCompile(`(?m)^#.*\n`)
var counter = regexp.MustCompile(`\[\d+:\d+\]`)

func iptablesSave(t *testing.T, ns *sandbox.NS) string {
	t.Helper()
	out, err := ns.Run("iptables-save")
	if err != nil {
		t.Fatal(err)
	}
	return counter.ReplaceAllString(commentLine.ReplaceAllString(out, ""), "[0:0]")
}

// 5 and 6: without a daemon, `nat apply` twice gives byte-identical
// iptables-save, and `nat clear` returns to the baseline, with Docker's
// state (policy DROP, DOCKER-USER jumped to first) present throughout.
func TestE2EApplyTwiceAndClearBesideDocker(t *testing.T) {
	tp := newTopo(t, true)
	for _, args := range [][]string{
		{"-P", "FORWARD", "DROP"},
		{"-N", "DOCKER-USER"},
		{"-N", "DOCKER-FORWARD"},
		{"-A", "DOCKER-USER", "-j", "RETURN"},
		{"-A", "FORWARD", "-j", "DOCKER-USER"},
		{"-A", "FORWARD", "-j", "DOCKER-FORWARD"},
		{"-t", "nat", "-A", "POSTROUTING", "-s", "172.17.0.0/16", "!", "-o", "docker0", "-j", "MASQUERADE"},
	} {
		if _, err := tp.head.Run("iptables", args...); err != nil {
			t.Fatal(err)
		}
	}
	baseline := iptablesSave(t, tp.head)
	cfg := tp.config(t, "")
	out, errOut, code := run(t, tp.head, "nat", "apply", "--config", cfg)
	if code != 0 {
		t.Fatalf("nat apply: exit %d: %s", code, errOut)
	}
	t.Logf("first apply:\n%s", out)
	first := iptablesSave(t, tp.head)
	out, _, code = run(t, tp.head, "nat", "apply", "--config", cfg)
	if code != 0 || strings.TrimSpace(out) != "nothing to change" {
		t.Errorf("second apply: exit %d, output %q", code, out)
	}
	if second := iptablesSave(t, tp.head); second != first {
		t.Errorf("iptables-save differs after the second apply:\nfirst:\n%s\nsecond:\n%s", first, second)
	}
	// Docker's jump keeps working beside ours, and NAT works despite DROP.
	src, err := dial(tp.inside, tp.outside, nextAddr("10.99.0.1"), 2*time.Second)
	if err != nil || src != "10.99.0.2" {
		t.Errorf("inside -> outside beside Docker: %q, %v", src, err)
	}
	out, _, code = run(t, tp.head, "nat", "status", "--config", cfg)
	for _, want := range []string{"state", "ok", "nf_tables", "forwarding      on", "present", "FORWARD policy  DROP", "10.99.0.2/24", "unknown (daemon not running)"} {
		if !strings.Contains(out, want) {
			t.Errorf("nat status lacks %q:\n%s", want, out)
		}
	}
	if code != 0 {
		t.Errorf("nat status exit %d", code)
	}
	_, errOut, code = run(t, tp.head, "nat", "clear", "--config", cfg)
	if code != 0 {
		t.Fatalf("nat clear: exit %d: %s", code, errOut)
	}
	if after := iptablesSave(t, tp.head); after != baseline {
		t.Errorf("iptables-save after clear differs from the baseline:\nbaseline:\n%s\nafter:\n%s", baseline, after)
	}
	if out, _ := tp.head.Run("cat", "/proc/sys/net/ipv4/ip_forward"); strings.TrimSpace(out) != "0" {
		t.Errorf("ip_forward after clear = %q, want 0 (we had turned it on)", out)
	}
}

// A daemon started beside Docker's state: NAT works, Docker's chains and
// policy are untouched, and stopping the daemon keeps the rules.
func TestE2EDaemonBesideDockerKeepsRulesOnStop(t *testing.T) {
	tp := newTopo(t, true)
	for _, args := range [][]string{
		{"-P", "FORWARD", "DROP"},
		{"-N", "DOCKER-USER"},
		{"-A", "DOCKER-USER", "-j", "RETURN"},
		{"-I", "FORWARD", "1", "-j", "DOCKER-USER"},
	} {
		if _, err := tp.head.Run("iptables", args...); err != nil {
			t.Fatal(err)
		}
	}
	cfg := tp.config(t, "")
	d := tp.startDaemon(t, cfg)
	d.waitFor(t, "NAT ok", func(s *api.Status) bool { return s.NAT.State == api.NATOK })
	if src, err := dial(tp.inside, tp.outside, nextAddr("10.99.0.1"), 2*time.Second); err != nil || src != "10.99.0.2" {
		t.Fatalf("inside -> outside: %q, %v", src, err)
	}
	out, _ := tp.head.Run("iptables", "-S", "FORWARD")
	if !strings.Contains(out, "-P FORWARD DROP") || !strings.Contains(out, "-j DOCKER-USER") {
		t.Errorf("Docker's FORWARD state changed:\n%s", out)
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(5 * time.Second):
		t.Fatal("daemon did not stop on SIGTERM")
	}
	if code := d.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("daemon exit code %d after SIGTERM", code)
	}
	if src, err := dial(tp.inside, tp.outside, nextAddr("10.99.0.1"), 2*time.Second); err != nil {
		t.Errorf("after the daemon stopped, NAT is gone (%q, %v); it must stay", src, err)
	}
}

// 7: interfaces that do not exist yet (USB Ethernet comes late) are waited
// for and reported, never a crash.
func TestE2EMissingInterfacesAreWaitedFor(t *testing.T) {
	tp := newTopo(t, false)
	cfg := tp.config(t, "")
	d := tp.startDaemon(t, cfg)
	s, _ := d.waitFor(t, "NAT ok", func(s *api.Status) bool { return s.NAT.State == api.NATOK })
	if s.Health.State != api.HealthFailed || s.Health.Class != 4 || !strings.Contains(strings.Join(s.Health.Reasons, "|"), "eth1 missing") {
		t.Errorf("health without interfaces: %+v", s.Health)
	}
	out, _, code := run(t, nil, "status", "--socket", filepath.Join(tp.dir, "control.sock"))
	if code != 0 || !strings.Contains(out, "eth1: missing") || !strings.Contains(out, "eth0: missing") {
		t.Errorf("status (exit %d):\n%s", code, out)
	}
	out, _, _ = run(t, tp.head, "nat", "status", "--config", cfg)
	if !strings.Contains(out, "cluster interface eth0 does not exist yet") {
		t.Errorf("nat status does not say what it waits for:\n%s", out)
	}
	tp.addLinks(t)
	d.waitFor(t, "the interfaces", func(s *api.Status) bool {
		return s.Uplink.Address == "10.99.0.2/24" && s.Cluster.Address == "192.168.50.1/24" && s.Health.State == api.HealthOK
	})
	if src, err := dial(tp.inside, tp.outside, nextAddr("10.99.0.1"), 2*time.Second); err != nil || src != "10.99.0.2" {
		t.Errorf("inside -> outside once the interfaces exist: %q, %v", src, err)
	}
}

// 7: bad configuration: one line per problem naming file, line, key and
// what is valid; exit 2; the daemon does not start.
func TestE2EBadConfig(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("[network]\nuplink_interface = \"eth1\"\ncluster_addres = \"10.0.0.1/24\"\n\n[power]\nstagger = \"soon\"\n"), 0o644)
	for _, args := range [][]string{{"config", "check", "--config", bad}, {"daemon", "--config", bad}, {"--config", bad, "nat", "apply"}} {
		_, errOut, code := run(t, nil, args...)
		if code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
		want := bad + `:3: unknown key "network.cluster_addres"`
		if !strings.Contains(errOut, want) {
			t.Errorf("%v: stderr %q lacks %q", args, errOut, want)
		}
	}
	bad2 := filepath.Join(dir, "bad2.toml")
	os.WriteFile(bad2, []byte("[power]\nstagger = \"soon\"\nboot = \"sometimes\"\n"), 0o644)
	_, errOut, code := run(t, nil, "config", "check", "--config", bad2)
	wantLines := []string{
		bad2 + `:2: power.stagger: "soon" is not a duration; write it like "1s" or "500ms"`,
		bad2 + `:3: power.boot: "sometimes" is not valid; use "off", "on" or "restore"`,
	}
	for _, w := range wantLines {
		if !strings.Contains(errOut, "headnode: "+w+"\n") {
			t.Errorf("stderr lacks %q:\n%s", w, errOut)
		}
	}
	if code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	_, errOut, code = run(t, nil, "config", "check", "--config", filepath.Join(dir, "absent.toml"))
	if code == 0 || !strings.Contains(errOut, "absent.toml") {
		t.Errorf("a named file that does not exist: exit %d, %q", code, errOut)
	}
	out, _, code := run(t, nil, "config", "default")
	if code != 0 {
		t.Fatal("config default failed")
	}
	good := filepath.Join(dir, "good.toml")
	os.WriteFile(good, []byte(out), 0o644)
	if out, errOut, code := run(t, nil, "config", "check", "--config", good); code != 0 || !strings.Contains(out, "ok") {
		t.Errorf("the default config does not check: %d %s %s", code, out, errOut)
	}
}

// 7: without iptables, `nat apply` names the Debian package and fails; the
// daemon keeps running and reports NAT as failed.
func TestE2EMissingIPTables(t *testing.T) {
	tp := newTopo(t, true)
	cfg := tp.config(t, "")
	// Hide every iptables binary: a private mount namespace with an empty
	// /usr/sbin (on Debian /sbin is a link to it).
	hide := func(args ...string) *exec.Cmd {
		script := `mount -t tmpfs none /usr/sbin && exec "$@"`
		return tp.head.Command("unshare", append([]string{"-m", "--propagation", "private", "sh", "-c", script, "sh", binary}, args...)...)
	}
	var stdout, stderr bytes.Buffer
	c := hide("nat", "apply", "--config", cfg)
	c.Stdout, c.Stderr = &stdout, &stderr
	err := c.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	want := `headnode: iptables is not installed: install the Debian package "iptables" (apt install iptables)` + "\n"
	if code != 1 || stderr.String() != want {
		t.Errorf("nat apply without iptables: exit %d, stderr %q; want exit 1 and %q", code, stderr.String(), want)
	}

	d := &daemonProc{log: &sandboxtest.Output{}, exited: make(chan struct{})}
	d.cmd = hide("daemon", "--config", cfg)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.cmd.Wait(); close(d.exited) }()
	defer func() { d.cmd.Process.Signal(syscall.SIGTERM); <-d.exited }()
	d.client = api.NewClient(filepath.Join(tp.dir, "control.sock"))
	s, _ := d.waitFor(t, "NAT failed", func(s *api.Status) bool { return s.Ready && s.NAT.State == api.NATFailed })
	if !strings.Contains(s.NAT.Error, `Debian package "iptables"`) || s.Health.State != api.HealthFailed || s.Health.Class != 2 {
		t.Errorf("status without iptables: NAT %+v, health %+v", s.NAT, s.Health)
	}
}

// The CLI without a daemon: exit 3 and a message saying so.
func TestE2EDaemonNotRunning(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	_, errOut, code := run(t, nil, "status", "--socket", sock)
	if code != 3 || !strings.Contains(errOut, "the headnode daemon is not running") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
	_, errOut, code = run(t, nil, "frobnicate")
	if code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: exit %d, stderr %q", code, errOut)
	}
	_, errOut, code = run(t, nil, "status", "--jsn")
	if code != 2 || !strings.Contains(errOut, `unknown flag "--jsn": valid flags here are --json`) {
		t.Errorf("unknown flag: exit %d, stderr %q", code, errOut)
	}
}

// `nat clear` with a daemon running goes through the daemon, which then
// leaves NAT off (also across a restart) until `nat apply`.
func TestE2EClearThroughDaemonStaysCleared(t *testing.T) {
	tp := newTopo(t, true)
	cfg := tp.config(t, "")
	d := tp.startDaemon(t, cfg)
	d.waitFor(t, "NAT ok", func(s *api.Status) bool { return s.NAT.State == api.NATOK })
	out, errOut, code := run(t, tp.head, "nat", "clear", "--config", cfg)
	if code != 0 || !strings.Contains(out, "deleted chain filter HEADNODE-FWD") {
		t.Fatalf("nat clear: exit %d\n%s%s", code, out, errOut)
	}
	d.waitFor(t, "NAT cleared", func(s *api.Status) bool { return s.NAT.State == api.NATCleared })
	time.Sleep(300 * time.Millisecond) // a keeper that re-applied would have done so by now
	if save := iptablesSave(t, tp.head); strings.Contains(save, "HEADNODE") {
		t.Errorf("rules came back after clear:\n%s", save)
	}
	if _, err := dial(tp.inside, tp.outside, nextAddr("10.99.0.1"), 300*time.Millisecond); err == nil {
		t.Error("NAT still works after clear")
	}
	_, _, code = run(t, tp.head, "nat", "apply", "--config", cfg)
	if code != 0 {
		t.Fatal("nat apply failed")
	}
	d.waitFor(t, "NAT ok again", func(s *api.Status) bool { return s.NAT.State == api.NATOK })
	if _, err := dial(tp.inside, tp.outside, nextAddr("10.99.0.1"), 2*time.Second); err != nil {
		t.Errorf("NAT not back after apply: %v", err)
	}
}

// [network] nat = false: another tool owns forwarding and the firewall;
// headnode touches neither, is ready at once and still follows the uplink.
func TestE2ENATDisabledTouchesNothing(t *testing.T) {
	tp := newTopo(t, true)
	before := iptablesSave(t, tp.head)
	d := tp.startDaemon(t, tp.config(t, "nat = false\n"))
	s, _ := d.waitFor(t, "the uplink", func(s *api.Status) bool { return s.Uplink.Address == "10.99.0.2/24" })
	if s.NAT.State != api.NATDisabled || s.Health.State != api.HealthOK {
		t.Errorf("NAT %q health %+v", s.NAT.State, s.Health)
	}
	if after := iptablesSave(t, tp.head); after != before {
		t.Errorf("iptables changed with nat = false:\n%s", after)
	}
	if out, _ := tp.head.Run("cat", "/proc/sys/net/ipv4/ip_forward"); strings.TrimSpace(out) != "0" {
		t.Errorf("ip_forward turned on with nat = false")
	}
	out, _, _ := run(t, nil, "status", "--socket", filepath.Join(tp.dir, "control.sock"))
	if !strings.Contains(out, "not managed ([network] nat = false)") {
		t.Errorf("status:\n%s", out)
	}
}
