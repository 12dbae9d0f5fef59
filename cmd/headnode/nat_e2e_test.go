package main

// End-to-end NAT tests, each against every firewall backend:
//
//   - nft: the iptables program over nf_tables ([network] firewall =
//     "iptables-nft");
//   - legacy: the iptables program over x_tables (the older key,
//     [network] iptables = "legacy", which still chooses it);
//   - netlink: no iptables program at all, as on Raspberry Pi OS Lite: the
//     daemon and CLI run in a private mount namespace with an empty
//     /usr/sbin (which also hides nft), and the default firewall = "auto"
//     has to find that out and program nf_tables over netlink.
//
// The tests' own tampering runs outside that mount namespace, as another
// program installed beside headnode would.

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
	"github.com/headnode/headnode/netcfg/sandbox"
	"github.com/headnode/headnode/netcfg/sandbox/sandboxtest"
)

var natBackends = []string{"nft", "legacy", "netlink"}

// forBackends runs f as a subtest per backend.
func forBackends(t *testing.T, f func(t *testing.T, b backend)) {
	for _, name := range natBackends {
		t.Run(name, func(t *testing.T) { f(t, backend(name)) })
	}
}

type backend string

// config is the [network] line that picks the backend ("" for netlink:
// the default, auto).
func (b backend) config() string {
	switch b {
	case "nft":
		return "firewall = \"iptables-nft\"\n"
	case "legacy":
		return "iptables = \"legacy\"\n"
	}
	return ""
}

// status is the backend as status reports it.
func (b backend) status() string {
	if b == "netlink" {
		return "nftables-netlink"
	}
	return "iptables-" + string(b)
}

// ipt is the iptables program other programs use beside this backend.
func (b backend) ipt() string {
	if b == "netlink" {
		return "iptables-nft"
	}
	return "iptables-" + string(b)
}

// headnode returns a command running the headnode binary in head, with the
// iptables programs hidden for netlink.
func (tp *topo) headnode(b backend, args ...string) *exec.Cmd {
	if b != "netlink" {
		return tp.head.Command(binary, args...)
	}
	return tp.hidden(args...)
}

// hidden runs headnode in head in a private mount namespace with an empty
// /usr/sbin (on Debian /sbin is a link to it): no iptables, no nft.
func (tp *topo) hidden(args ...string) *exec.Cmd {
	script := `mount -t tmpfs none /usr/sbin && exec "$@"`
	return tp.head.Command("unshare", append([]string{"-m", "--propagation", "private", "sh", "-c", script, "sh", binary}, args...)...)
}

// startNATDaemon starts the daemon for backend with the configuration
// lines extra.
func (tp *topo) startNATDaemon(t *testing.T, b backend, extra string) (*daemonProc, string) {
	t.Helper()
	cfg := tp.config(t, b.config()+extra)
	return tp.startDaemonCmd(t, tp.headnode(b, "daemon", "--config", cfg)), cfg
}

// cli runs the headnode CLI in head for backend and returns stdout,
// stderr and the exit code.
func (tp *topo) cli(t *testing.T, b backend, args ...string) (string, string, int) {
	t.Helper()
	cmd := tp.headnode(b, args...)
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

var commentLine = regexp.MustCompile(`(?m)^#.*\n`)
var counter = regexp.MustCompile(`\[\d+:\d+\]`)

func iptablesSave(t *testing.T, ns *sandbox.NS) string {
	t.Helper()
	return saveWith(t, ns, "iptables-save")
}

func saveWith(t *testing.T, ns *sandbox.NS, prog string) string {
	t.Helper()
	out, err := ns.Run(prog)
	if err != nil {
		t.Fatal(err)
	}
	return counter.ReplaceAllString(commentLine.ReplaceAllString(out, ""), "[0:0]")
}

// ruleset is the whole firewall as the backend's tools show it:
// iptables-save for the iptables backends, `nft list ruleset` for netlink
// (every table, iptables-nft's included).
func (b backend) ruleset(t *testing.T, ns *sandbox.NS) string {
	t.Helper()
	if b == "netlink" {
		out, err := ns.Run("nft", "list", "ruleset")
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	return saveWith(t, ns, b.ipt()+"-save")
}

// 1 and 2: connections from the cluster get out, NATed; new connections
// from the uplink do not get in.
func TestE2ENATOutboundAndInbound(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		tp := newTopo(t, true)
		d, _ := tp.startNATDaemon(t, b, "")
		s, _ := d.waitFor(t, "NAT ok", func(s *api.Status) bool { return s.NAT.State == api.NATOK })
		if s.Uplink.Address != "10.99.0.2/24" || s.NAT.Backend != b.status() {
			t.Errorf("uplink address %q, backend %q; want 10.99.0.2/24 and %s", s.Uplink.Address, s.NAT.Backend, b.status())
		}
		src, err := dial(tp.inside, tp.outside, nextAddr("10.99.0.1"), 2*time.Second)
		if err != nil {
			t.Fatalf("inside -> outside: %v", err)
		}
		if src != "10.99.0.2" {
			t.Errorf("outside saw %s, want the head's uplink address 10.99.0.2", src)
		}
		// Give outside a route to the cluster, so that only our rules can
		// stop a new inbound connection.
		must(t, tp.outside.Route("192.168.50.0/24", "10.99.0.2"))
		if src, err := dial(tp.outside, tp.inside, nextAddr("192.168.50.2"), 500*time.Millisecond); err == nil {
			t.Errorf("a new connection from the uplink reached a node (it saw %s)", src)
		}
	})
}

// 3: another program removes our rules (iptables -F of both tables with
// FORWARD policy DROP; for netlink `nft flush ruleset`, and another
// program deleting our table); the running daemon restores connectivity
// within 2 s.
func TestE2ERepairsFlushWithin2s(t *testing.T) {
	type tc struct {
		name  string
		b     backend
		flush [][]string
	}
	cases := []tc{
		{"nft", "nft", [][]string{{"iptables-nft", "-F"}, {"iptables-nft", "-t", "nat", "-F"}}},
		{"legacy", "legacy", [][]string{{"iptables-legacy", "-F"}, {"iptables-legacy", "-t", "nat", "-F"}}},
		{"netlink", "netlink", [][]string{{"nft", "flush", "ruleset"}}},
		{"netlink-delete-table", "netlink", [][]string{{"nft", "delete", "table", "ip", "headnode"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := c.b
			tp := newTopo(t, true)
			if b != "netlink" {
				// Without our rules nothing is forwarded at all. (With
				// netlink, a policy DROP in iptables' own table would drop
				// our traffic whatever our table says; without our
				// masquerade nothing comes back either.)
				mustRun(t, tp.head, b.ipt(), "-P", "FORWARD", "DROP")
			}
			d, cfg := tp.startNATDaemon(t, b, "")
			d.waitFor(t, "NAT ok", func(s *api.Status) bool { return s.NAT.State == api.NATOK })
			if _, err := dial(tp.inside, tp.outside, nextAddr("10.99.0.1"), 2*time.Second); err != nil {
				t.Fatalf("before the flush: %v", err)
			}
			for _, f := range c.flush {
				mustRun(t, tp.head, f[0], f[1:]...)
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
			t.Logf("%s: connectivity back %v after the flush (was broken in between: %v)", c.name, time.Since(flushed).Round(time.Millisecond), broken)
			s, _ := d.waitFor(t, "a repair counted", func(s *api.Status) bool { return s.NAT.Repairs >= 1 })
			if s.NAT.State != api.NATOK || s.NAT.Backend != b.status() {
				t.Errorf("NAT after repair: %+v", s.NAT)
			}
			if !d.logged("restored") {
				t.Errorf("the repair was not logged:\n%s", d.log.String())
			}
			out, _, _ := tp.cli(t, b, "nat", "status", "--config", cfg)
			if !regexp.MustCompile(`repairs\s+[1-9]\d*\n`).MatchString(out) || !strings.Contains(out, b.status()) {
				t.Errorf("nat status does not show the repair and the backend:\n%s", out)
			}
		})
	}
}

// Whole-ruleset rewrites: ufw reload, firewalld reload and k3s-killall
// restore a saved ruleset that does not contain our rules
// (iptables-restore without --noflush); on a system without iptables,
// nftables.service reloading /etc/nftables.conf starts with `flush
// ruleset`. The daemon puts our rules back, beside the other program's own
// chains and policy, and leaves those alone.
func TestE2ERepairsAfterTableRewrite(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		tp := newTopo(t, true)
		prog, rules := b.ipt()+"-restore", `*filter
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
		want := []string{":FORWARD DROP", "-A FORWARD -j ufw-before-forward", "-A POSTROUTING -j KUBE-POSTROUTING", ":INPUT DROP"}
		if b == "netlink" {
			prog, rules = "nft", `flush ruleset
table inet filter {
	chain input {
		type filter hook input priority filter; policy drop;
		iif "lo" accept
		ct state established,related accept
	}
}
`
			want = []string{"table inet filter", "policy drop", `iif "lo" accept`}
		}
		restore := func() {
			t.Helper()
			c := tp.head.Command(prog)
			if b == "netlink" {
				c = tp.head.Command("nft", "-f", "-")
			}
			c.Stdin = strings.NewReader(rules)
			if out, err := c.CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", prog, err, out)
			}
		}
		restore()
		d, _ := tp.startNATDaemon(t, b, "")
		d.waitFor(t, "NAT ok", func(s *api.Status) bool { return s.NAT.State == api.NATOK })
		if src, err := dial(tp.inside, tp.outside, nextAddr("10.99.0.1"), 2*time.Second); err != nil || src != "10.99.0.2" {
			t.Fatalf("beside the other firewall: %q, %v", src, err)
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
		rs := b.ruleset(t, tp.head)
		for _, w := range want {
			if !strings.Contains(rs, w) {
				t.Errorf("the other program's state changed: %q missing from\n%s", w, rs)
			}
		}
	})
}

// 4: the uplink gets a new address; the daemon publishes it within 100 ms
// and new connections leave with it.
func TestE2EUplinkAddressChange(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		tp := newTopo(t, true)
		d, _ := tp.startNATDaemon(t, b, "")
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
	})
}

// foreign installs another program's firewall state: Docker's (policy
// DROP, DOCKER-USER and DOCKER-FORWARD jumped to, its masquerade) for the
// iptables backends; for netlink, an nftables user's own table (Docker
// cannot be there without iptables).
func (b backend) foreign(t *testing.T, ns *sandbox.NS) {
	t.Helper()
	if b == "netlink" {
		c := ns.Command("nft", "-f", "-")
		c.Stdin = strings.NewReader(`table inet user {
	chain input {
		type filter hook input priority filter; policy accept;
		iif "lo" accept
	}
	chain post {
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr 10.42.0.0/16 oifname != "cni0" masquerade
	}
}
`)
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("nft: %v\n%s", err, out)
		}
		return
	}
	for _, args := range dockerRules {
		mustRun(t, ns, b.ipt(), args...)
	}
}

var dockerRules = [][]string{
	{"-P", "FORWARD", "DROP"},
	{"-N", "DOCKER-USER"},
	{"-N", "DOCKER-FORWARD"},
	{"-A", "DOCKER-USER", "-j", "RETURN"},
	{"-A", "FORWARD", "-j", "DOCKER-USER"},
	{"-A", "FORWARD", "-j", "DOCKER-FORWARD"},
	{"-t", "nat", "-A", "POSTROUTING", "-s", "172.17.0.0/16", "!", "-o", "docker0", "-j", "MASQUERADE"},
}

// 5 and 6: without a daemon, `nat apply` twice gives a byte-identical
// ruleset, and `nat clear` returns to the baseline, with another
// program's state (Docker's policy DROP and chains) present throughout.
func TestE2EApplyTwiceAndClearBesideDocker(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		tp := newTopo(t, true)
		b.foreign(t, tp.head)
		baseline := b.ruleset(t, tp.head)
		cfg := tp.config(t, b.config())
		out, errOut, code := tp.cli(t, b, "nat", "apply", "--config", cfg)
		if code != 0 {
			t.Fatalf("nat apply: exit %d: %s", code, errOut)
		}
		t.Logf("first apply:\n%s", out)
		first := b.ruleset(t, tp.head)
		out, _, code = tp.cli(t, b, "nat", "apply", "--config", cfg)
		if code != 0 || strings.TrimSpace(out) != "nothing to change" {
			t.Errorf("second apply: exit %d, output %q", code, out)
		}
		if second := b.ruleset(t, tp.head); second != first {
			t.Errorf("the ruleset differs after the second apply:\nfirst:\n%s\nsecond:\n%s", first, second)
		}
		// The other program's rules keep working beside ours, and NAT
		// works despite Docker's DROP.
		src, err := dial(tp.inside, tp.outside, nextAddr("10.99.0.1"), 2*time.Second)
		if err != nil || src != "10.99.0.2" {
			t.Errorf("inside -> outside beside the other program: %q, %v", src, err)
		}
		out, _, code = tp.cli(t, b, "nat", "status", "--config", cfg)
		if !regexp.MustCompile(`forwarding +on\n`).MatchString(out) {
			t.Errorf("nat status does not say forwarding is on:\n%s", out)
		}
		want := []string{"state", "ok", b.status(), "present", "10.99.0.2/24", "unknown (daemon not running)"}
		if b == "netlink" {
			want = append(want, "table ip headnode")
		} else {
			want = append(want, "FORWARD policy  DROP")
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("nat status lacks %q:\n%s", w, out)
			}
		}
		if code != 0 {
			t.Errorf("nat status exit %d", code)
		}
		_, errOut, code = tp.cli(t, b, "nat", "clear", "--config", cfg)
		if code != 0 {
			t.Fatalf("nat clear: exit %d: %s", code, errOut)
		}
		if after := b.ruleset(t, tp.head); after != baseline {
			t.Errorf("the ruleset after clear differs from the baseline:\nbaseline:\n%s\nafter:\n%s", baseline, after)
		}
		if out, _ := tp.head.Run("cat", "/proc/sys/net/ipv4/ip_forward"); strings.TrimSpace(out) != "0" {
			t.Errorf("ip_forward after clear = %q, want 0 (we had turned it on)", out)
		}
	})
}

// A daemon started beside another program's state: NAT works, the other
// program's chains and policy are untouched, and stopping the daemon keeps
// the rules.
func TestE2EDaemonBesideDockerKeepsRulesOnStop(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		tp := newTopo(t, true)
		b.foreign(t, tp.head)
		before := b.ruleset(t, tp.head)
		d, _ := tp.startNATDaemon(t, b, "")
		d.waitFor(t, "NAT ok", func(s *api.Status) bool { return s.NAT.State == api.NATOK })
		if src, err := dial(tp.inside, tp.outside, nextAddr("10.99.0.1"), 2*time.Second); err != nil || src != "10.99.0.2" {
			t.Fatalf("inside -> outside: %q, %v", src, err)
		}
		after := b.ruleset(t, tp.head)
		for _, l := range strings.Split(before, "\n") {
			if !strings.Contains(after, l) {
				t.Errorf("the other program's line %q is gone:\n%s", l, after)
			}
		}
		d.stop(t)
		if code := d.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("daemon exit code %d after SIGTERM", code)
		}
		if src, err := dial(tp.inside, tp.outside, nextAddr("10.99.0.1"), 2*time.Second); err != nil {
			t.Errorf("after the daemon stopped, NAT is gone (%q, %v); it must stay", src, err)
		}
	})
}

// 7: interfaces that do not exist yet (USB Ethernet comes late) are waited
// for and reported, never a crash.
func TestE2EMissingInterfacesAreWaitedFor(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		tp := newTopo(t, false)
		d, cfg := tp.startNATDaemon(t, b, "")
		s, _ := d.waitFor(t, "NAT ok", func(s *api.Status) bool { return s.NAT.State == api.NATOK })
		if s.Health.State != api.HealthFailed || s.Health.Class != 4 || !strings.Contains(strings.Join(s.Health.Reasons, "|"), "eth1 missing") {
			t.Errorf("health without interfaces: %+v", s.Health)
		}
		out, _, code := run(t, nil, "status", "--socket", filepath.Join(tp.dir, "control.sock"))
		if code != 0 || !strings.Contains(out, "eth1: missing") || !strings.Contains(out, "eth0: missing") {
			t.Errorf("status (exit %d):\n%s", code, out)
		}
		out, _, _ = tp.cli(t, b, "nat", "status", "--config", cfg)
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
	})
}

// Without the iptables program, the default (firewall = "auto") NATs over
// netlink (the netlink subtests of the other tests), while a configuration
// that asks for iptables gets one line naming the Debian package: `nat
// apply` fails, and the daemon keeps running and reports NAT as failed.
func TestE2EMissingIPTables(t *testing.T) {
	tp := newTopo(t, true)
	for _, extra := range []string{"firewall = \"iptables-nft\"\n", "iptables = \"legacy\"\n"} {
		cfg := tp.config(t, extra)
		_, stderr, code := tp.cli(t, "netlink", "nat", "apply", "--config", cfg)
		want := `headnode: iptables-` + map[bool]string{true: "nft", false: "legacy"}[strings.Contains(extra, "nft")] + ` not found: iptables is not installed: install the Debian package "iptables" (apt install iptables)` + "\n"
		if code != 1 || stderr != want {
			t.Errorf("%snat apply without iptables: exit %d, stderr %q; want exit 1 and %q", extra, code, stderr, want)
		}
	}
	cfg := tp.config(t, "firewall = \"iptables-nft\"\n")
	d := &daemonProc{log: &sandboxtest.Output{}, exited: make(chan struct{})}
	d.cmd = tp.hidden("daemon", "--config", cfg)
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

// Coexistence: the daemon runs over netlink on a system without iptables;
// then iptables is installed and Docker puts in its rules (FORWARD policy
// DROP, its chains, its masquerade). Our own table's accept cannot let the
// cluster's traffic past a DROP in iptables' table, so the daemon moves
// our rules there (iptables-nft first, then our table deleted, so the drop
// is never missing), and both sets of rules work.
func TestE2ECoexistsWithIPTablesInstalledLater(t *testing.T) {
	tp := newTopo(t, true)
	d, _ := tp.startNATDaemon(t, "netlink", "")
	s, _ := d.waitFor(t, "NAT ok", func(s *api.Status) bool { return s.NAT.State == api.NATOK })
	if s.NAT.Backend != "nftables-netlink" {
		t.Fatalf("backend without iptables: %q", s.NAT.Backend)
	}
	if src, err := dial(tp.inside, tp.outside, nextAddr("10.99.0.1"), 2*time.Second); err != nil || src != "10.99.0.2" {
		t.Fatalf("inside -> outside over netlink: %q, %v", src, err)
	}
	// "apt install docker.io": the iptables programs appear in the
	// daemon's view, and Docker adds its rules with iptables-nft.
	pid := strconv.Itoa(d.cmd.Process.Pid)
	if out, err := exec.Command("nsenter", "-t", pid, "-m", "umount", "/usr/sbin").CombinedOutput(); err != nil {
		t.Fatalf("showing the daemon /usr/sbin again: %v\n%s", err, out)
	}
	for _, args := range append(dockerRules, []string{"-A", "DOCKER-FORWARD", "-o", "docker0", "-j", "ACCEPT"}) {
		mustRun(t, tp.head, "iptables-nft", args...)
	}
	d.waitFor(t, "the move to iptables-nft", func(s *api.Status) bool {
		return s.NAT.Backend == "iptables-nft" && s.NAT.State == api.NATOK
	})
	if !d.logged("deleted table ip headnode (now on iptables-nft)") {
		t.Errorf("the move was not logged:\n%s", d.log.String())
	}
	if out, err := tp.head.Run("nft", "list", "tables"); err != nil || strings.Contains(out, "headnode") {
		t.Errorf("our nftables table is still there after the move: %s %v", out, err)
	}
	save := iptablesSave(t, tp.head)
	for _, want := range []string{":FORWARD DROP", "-A FORWARD -j DOCKER-USER", "-A FORWARD -j DOCKER-FORWARD", "-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE", "-A FORWARD -m comment --comment headnode -j HEADNODE-FWD", "! -i eth0 -o eth0 -m comment --comment headnode -j DROP"} {
		if !strings.Contains(save, want) {
			t.Errorf("%q missing after the move:\n%s", want, save)
		}
	}
	if src, err := dial(tp.inside, tp.outside, nextAddr("10.99.0.1"), 2*time.Second); err != nil || src != "10.99.0.2" {
		t.Errorf("inside -> outside beside Docker's DROP: %q, %v", src, err)
	}
	must(t, tp.outside.Route("192.168.50.0/24", "10.99.0.2"))
	if src, err := dial(tp.outside, tp.inside, nextAddr("192.168.50.2"), 500*time.Millisecond); err == nil {
		t.Errorf("a new connection from the uplink reached a node after the move (it saw %s)", src)
	}
}

// `nat clear` with a daemon running goes through the daemon, which then
// leaves NAT off (also across a restart) until `nat apply`.
func TestE2EClearThroughDaemonStaysCleared(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		tp := newTopo(t, true)
		d, cfg := tp.startNATDaemon(t, b, "")
		d.waitFor(t, "NAT ok", func(s *api.Status) bool { return s.NAT.State == api.NATOK })
		out, errOut, code := tp.cli(t, b, "nat", "clear", "--config", cfg)
		want := "deleted chain filter HEADNODE-FWD"
		if b == "netlink" {
			want = "deleted table ip headnode"
		}
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("nat clear: exit %d\n%s%s", code, out, errOut)
		}
		d.waitFor(t, "NAT cleared", func(s *api.Status) bool { return s.NAT.State == api.NATCleared })
		time.Sleep(300 * time.Millisecond) // a keeper that re-applied would have done so by now
		if rs := b.ruleset(t, tp.head); strings.Contains(rs, "HEADNODE") || strings.Contains(rs, "headnode") {
			t.Errorf("rules came back after clear:\n%s", rs)
		}
		if _, err := dial(tp.inside, tp.outside, nextAddr("10.99.0.1"), 300*time.Millisecond); err == nil {
			t.Error("NAT still works after clear")
		}
		_, _, code = tp.cli(t, b, "nat", "apply", "--config", cfg)
		if code != 0 {
			t.Fatal("nat apply failed")
		}
		d.waitFor(t, "NAT ok again", func(s *api.Status) bool { return s.NAT.State == api.NATOK })
		if _, err := dial(tp.inside, tp.outside, nextAddr("10.99.0.1"), 2*time.Second); err != nil {
			t.Errorf("NAT not back after apply: %v", err)
		}
	})
}

// [network] nat = false: another tool owns forwarding and the firewall;
// headnode touches neither, is ready at once and still follows the uplink.
func TestE2ENATDisabledTouchesNothing(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		tp := newTopo(t, true)
		before := b.ruleset(t, tp.head)
		d, _ := tp.startNATDaemon(t, b, "nat = false\n")
		s, _ := d.waitFor(t, "the uplink", func(s *api.Status) bool { return s.Uplink.Address == "10.99.0.2/24" })
		if s.NAT.State != api.NATDisabled || s.Health.State != api.HealthOK {
			t.Errorf("NAT %q health %+v", s.NAT.State, s.Health)
		}
		if after := b.ruleset(t, tp.head); after != before {
			t.Errorf("the firewall changed with nat = false:\n%s", after)
		}
		if out, _ := tp.head.Run("cat", "/proc/sys/net/ipv4/ip_forward"); strings.TrimSpace(out) != "0" {
			t.Errorf("ip_forward turned on with nat = false")
		}
		out, _, _ := run(t, nil, "status", "--socket", filepath.Join(tp.dir, "control.sock"))
		if !strings.Contains(out, "not managed ([network] nat = false)") {
			t.Errorf("status:\n%s", out)
		}
	})
}

// mustRun runs a command in ns and fails the test if it fails.
func mustRun(t *testing.T, ns *sandbox.NS, name string, args ...string) {
	t.Helper()
	if _, err := ns.Run(name, args...); err != nil {
		t.Fatal(err)
	}
}
