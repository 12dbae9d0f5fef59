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
	if spec := os.Getenv(hostileEnv); spec != "" {
		os.Exit(hostileMain(spec)) // a hostile client (hostile_test.go), not the tests
	}
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
	if !strings.Contains(extra, "[dhcp]") {
		// Nothing else serves DHCP on these cluster sides: no window
		// holding the cluster address back while the daemon checks
		// (roles_e2e_test.go and dhcp_e2e_test.go test the check).
		text += "\n[dhcp]\nprobe = \"0s\"\n"
	}
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
	return tp.startDaemonCmd(t, tp.head.Command(binary, "daemon", "--config", cfg), env...)
}

// startDaemonCmd is startDaemon for a daemon started by cmd.
func (tp *topo) startDaemonCmd(t *testing.T, cmd *exec.Cmd, env ...string) *daemonProc {
	t.Helper()
	d := &daemonProc{log: &sandboxtest.Output{}, exited: make(chan struct{})}
	d.cmd = cmd
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
