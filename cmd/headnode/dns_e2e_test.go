package main

// End-to-end tests of the DNS server for the nodes: Debian's dig in a node
// namespace asks the daemon for node names, PTR records and names only an
// upstream knows (dnsmasq in the uplink's namespace, as the uplink
// network's resolver); the uplink moves to another network with another
// resolver; the uplink side gets nothing.

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
	"github.com/headnode/headnode/netcfg/dhcpd/dhcptest"
	"github.com/headnode/headnode/netcfg/sandbox"
	"github.com/headnode/headnode/netcfg/sandbox/sandboxtest"
)

// needDNSTools skips or (under HEADNODE_REQUIRE_NETNS) fails without dig
// and dnsmasq.
func needDNSTools(t *testing.T) {
	t.Helper()
	dhcptest.Need(t)
	for cmd, pkg := range map[string]string{"dig": "bind9-dnsutils", "dnsmasq": "dnsmasq-base"} {
		if _, err := exec.LookPath(cmd); err != nil {
			msg := fmt.Sprintf("%s is not installed (Debian package %s)", cmd, pkg)
			if os.Getenv(sandboxtest.RequireEnv) != "" {
				t.Fatalf("%s, and %s is set", msg, sandboxtest.RequireEnv)
			}
			t.Skip(msg)
		}
	}
}

// upstreamDNS runs dnsmasq in ns on addr as the network's resolver, with
// the given names (name -> address) and nothing else; it is stopped when
// the test ends or stop is called.
func upstreamDNS(t *testing.T, ns *sandbox.NS, addr string, names map[string]string) (stop func()) {
	t.Helper()
	args := []string{"--conf-file=/dev/null"}
	for n, a := range names {
		args = append(args, fmt.Sprintf("--address=/%s/%s", n, a))
	}
	return dnsmasq(t, ns, addr, args...)
}

// dnsmasq runs dnsmasq in ns on addr with NetworkManager's flags for its
// own instance (no resolv.conf, no hosts file, bound to addr) and args.
func dnsmasq(t *testing.T, ns *sandbox.NS, addr string, args ...string) (stop func()) {
	t.Helper()
	stop, _ = dnsmasqProc(t, ns, addr, args...)
	return stop
}

// dnsmasqProc is dnsmasq, also returning its PID.
func dnsmasqProc(t *testing.T, ns *sandbox.NS, addr string, args ...string) (stop func(), pid int) {
	t.Helper()
	args = append([]string{"--keep-in-foreground", "--no-resolv", "--no-hosts", "--bind-interfaces",
		"--listen-address=" + addr, "--user=root", "--pid-file=", "--log-facility=-"}, args...)
	cmd := ns.Command("dnsmasq", args...)
	out := &sandboxtest.Output{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	stop = func() {
		cmd.Process.Kill()
		<-done
	}
	t.Cleanup(stop)
	// Ready when it answers.
	port := "53"
	for _, a := range args {
		if p, ok := strings.CutPrefix(a, "--port="); ok {
			port = p
		}
	}
	for range 100 {
		if o, _ := ns.Run("dig", "@"+addr, "-p", port, "+short", "+time=1", "+tries=1", "probe.invalid"); !strings.Contains(o, "timed out") && !strings.Contains(o, "no servers") {
			return stop, cmd.Process.Pid
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("dnsmasq on %s does not answer:\n%s", addr, out.String())
	return stop, 0
}

// dig runs dig in ns and returns its output (it exits non-zero when
// nothing answers, which the callers look for in the output).
func dig(ns *sandbox.NS, args ...string) string {
	out, _ := ns.Command("dig", append([]string{"+time=1", "+tries=1"}, args...)...).CombinedOutput()
	return string(out)
}

func digShort(t *testing.T, ns *sandbox.NS, args ...string) string {
	t.Helper()
	return strings.TrimSpace(dig(ns, append([]string{"+short"}, args...)...))
}

func TestE2EDNSNodesUpstreamMoveAndStrangers(t *testing.T) {
	needDNSTools(t)
	tp := newTopo(t, true)
	must(t, tp.inside.DelAddr("in0", "192.168.50.2/24"))
	upstreamDNS(t, tp.outside, "10.99.0.1", map[string]string{"www.example.test": "10.99.0.80"})
	resolv := filepath.Join(tp.dir, "resolv.conf")
	// As NetworkManager writes it for the uplink's network.
	must(t, os.WriteFile(resolv, []byte("# uplink network\nnameserver 10.99.0.1\n"), 0o644))
	cfg := tp.config(t, fmt.Sprintf("[dhcp]\nprobe = \"0s\"\n[dns]\nresolv_conf = [%q]\n", resolv))
	d := tp.startDaemon(t, cfg)
	d.waitFor(t, "DHCP and DNS serving", func(s *api.Status) bool {
		return serving(s) && s.DNS.State == api.DNSServing && len(s.DNS.Upstreams) == 1
	})

	// p1 takes its lease: the head is its resolver.
	l, err := dhcptest.Udhcpc(tp.inside, "in0", dhcptest.Options{Dir: t.TempDir(), Hostname: "p1"})
	if err != nil {
		t.Fatal(err)
	}
	if l.Address.String() != "192.168.50.11/24" || strings.Join(l.DNS, ",") != "192.168.50.1" {
		t.Fatalf("p1's lease %+v: want 192.168.50.11 with the head as its resolver", l)
	}
	// Options 15 and 119 as busybox udhcpc sees them (its script's
	// $domain and $search), so bare names work through the search list.
	dir0 := t.TempDir()
	script := filepath.Join(dir0, "opts.sh")
	must(t, os.WriteFile(script, []byte("#!/bin/sh\n[ \"$1\" = bound ] && echo \"domain=$domain search=$search dns=$dns\" > "+filepath.Join(dir0, "opts")+"\nexit 0\n"), 0o755))
	if out, err := tp.inside.Run("udhcpc", "-i", "in0", "-f", "-q", "-n", "-t", "5", "-T", "1", "-A", "1", "-O", "search", "-x", "hostname:p1", "-s", script); err != nil {
		t.Fatalf("udhcpc: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(filepath.Join(dir0, "opts")); strings.TrimSpace(string(b)) != "domain=cluster.home.arpa search=cluster.home.arpa dns=192.168.50.1" {
		t.Errorf("udhcpc saw %q, want the domain as options 15 and 119 and the head as resolver", b)
	}
	// The DHCP server reports new leases to the daemon at most every
	// 200 ms; the name is served once the report is in (within 1 s of
	// the ACK, as the lease test below measures).
	waitUntil(t, "p1's lease name served", time.Second, func() bool { return digShort(t, tp.inside, "@192.168.50.1", "p1") == "192.168.50.11" })
	host, _ := os.Hostname()
	host, _, _ = strings.Cut(host, ".")
	for _, q := range []struct {
		args []string
		want string
	}{
		{[]string{"@192.168.50.1", "p1"}, "192.168.50.11"},
		{[]string{"@192.168.50.1", "p1.cluster.home.arpa"}, "192.168.50.11"},
		{[]string{"@192.168.50.1", "-x", "192.168.50.11"}, "p1.cluster.home.arpa."},
		{[]string{"@192.168.50.1", host + ".cluster.home.arpa"}, "192.168.50.1"},
		{[]string{"@192.168.50.1", "+tcp", "p1.cluster.home.arpa"}, "192.168.50.11"},
		{[]string{"@192.168.50.1", "www.example.test"}, "10.99.0.80"},
	} {
		if got := digShort(t, tp.inside, q.args...); got != q.want {
			t.Errorf("dig %s from p1: %q, want %q", strings.Join(q.args, " "), got, q.want)
		}
	}
	// The head itself, through NetworkManager's dnsmasq with the package's
	// dnsmasq.d drop-in (as NetworkManager runs it: 127.0.0.1, no
	// resolv.conf, the conf-dir, the network's resolver as its default
	// server), resolves the nodes' names, bare too. (Without any default
	// server dnsmasq 2.90 refuses bare names, "EDE: not ready".)
	confDir := t.TempDir()
	dropIn, err := os.ReadFile("../../systemd/NetworkManager/dnsmasq-headnode.conf")
	must(t, err)
	must(t, os.WriteFile(filepath.Join(confDir, "headnode.conf"), dropIn, 0o644))
	dnsmasq(t, tp.head, "127.0.0.1", "--conf-file=/dev/null", "--conf-dir="+confDir, "--server=10.99.0.1")
	for _, q := range []struct {
		args []string
		want string
	}{
		{[]string{"@127.0.0.1", "p1"}, "192.168.50.11"},
		{[]string{"@127.0.0.1", "p1.cluster.home.arpa"}, "192.168.50.11"},
		{[]string{"@127.0.0.1", "-x", "192.168.50.11"}, "p1.cluster.home.arpa."},
		{[]string{"@127.0.0.1", "www.example.test"}, "10.99.0.80"},
	} {
		if got := digShort(t, tp.head, q.args...); got != q.want {
			t.Errorf("dig %s on the head through NetworkManager's dnsmasq: %q, want %q", strings.Join(q.args, " "), got, q.want)
		}
	}
	if out := dig(tp.inside, "@192.168.50.1", "p9.cluster.home.arpa"); !strings.Contains(out, "status: NXDOMAIN") || !strings.Contains(out, "flags: qr aa rd ra") {
		t.Errorf("an unknown node name:\n%s", out)
	}
	// The head's name opens the status page from a node.
	req, _ := http.NewRequest(http.MethodGet, "http://192.168.50.1:9180/healthz", nil)
	req.Host = host + ".cluster.home.arpa:9180"
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return tp.inside.Dial(addr, net.Dialer{Timeout: 2 * time.Second})
	}}}
	if resp, err := hc.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("GET /healthz with Host %s: %v %v", req.Host, resp, err)
	} else {
		resp.Body.Close()
	}

	// The uplink side: the head's uplink and cluster addresses answer
	// nothing (the outside gets a route to the cluster subnet for it).
	must(t, tp.outside.Route("192.168.50.0/24", "10.99.0.2"))
	for _, server := range []string{"10.99.0.2", "192.168.50.1"} {
		for _, proto := range []string{"+notcp", "+tcp"} {
			out := dig(tp.outside, "@"+server, proto, "p1.cluster.home.arpa")
			answered := regexp.MustCompile(`status: (NOERROR|NXDOMAIN|SERVFAIL)`).MatchString(out)
			if answered || strings.Contains(out, "192.168.50.11") {
				t.Errorf("dig %s %s from the uplink side was answered:\n%s", server, proto, out)
			}
		}
	}

	// A new lease's host name, measured from the ACK (the daemon's log
	// line for the lease, written as the ACK is sent) to the first answer
	// at the head's loopback address, polled every 5 ms from a socket in
	// the head's namespace.
	var conn net.Conn
	must(t, tp.head.Do(func() error {
		var err error
		conn, err = net.Dial("udp4", "127.0.1.53:53")
		return err
	}))
	defer conn.Close()
	answered := make(chan time.Time, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go func() {
		co := &dns.Conn{Conn: conn}
		q := new(dns.Msg)
		q.SetQuestion("builder.cluster.home.arpa.", dns.TypeA)
		for ctx.Err() == nil {
			q.Id = dns.Id()
			co.SetDeadline(time.Now().Add(100 * time.Millisecond))
			if co.WriteMsg(q) == nil {
				if r, err := co.ReadMsg(); err == nil && r.Id == q.Id && len(r.Answer) == 1 {
					answered <- time.Now()
					return
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	asMachine(t, tp.inside, "in0", "02:00:00:00:00:42")
	dir := t.TempDir()
	nl, err := dhcptest.Udhcpc(tp.inside, "in0", dhcptest.Options{Dir: dir, Hostname: "builder"})
	if err != nil {
		t.Fatal(err)
	}
	if !d.logged("msg=lease part=dhcp address=" + nl.Address.Addr().String()) {
		t.Fatalf("no lease logged:\n%s", d.log.String())
	}
	m := regexp.MustCompile(`time=(\S+) level=INFO msg=lease part=dhcp address=` + regexp.QuoteMeta(nl.Address.Addr().String())).FindStringSubmatch(d.log.String())
	ack, err := time.Parse(time.RFC3339Nano, m[1])
	if err != nil {
		t.Fatal(err)
	}
	select {
	case at := <-answered:
		took := at.Sub(ack)
		t.Logf("builder (%s) resolved %v after its ACK", nl.Address.Addr(), took.Round(time.Millisecond))
		if took > time.Second {
			t.Errorf("a new lease's name resolved %v after the ACK, want within 1 s", took)
		}
	case <-ctx.Done():
		t.Fatal("builder never resolved")
	}
	if got := digShort(t, tp.inside, "@192.168.50.1", "builder"); got != nl.Address.Addr().String() {
		t.Errorf("dig builder from the node: %q, want %s", got, nl.Address.Addr())
	}

	// The uplink moves to another network with another resolver (the
	// old one is gone); NetworkManager rewrites resolv.conf. No lease is
	// renewed: udhcpc has exited. Measured from the rewrite to the first
	// answer from the new resolver, dig polling from the node.
	must(t, tp.outside.DelAddr("out0", "10.99.0.1/24"))
	must(t, tp.outside.AddAddr("out0", "10.98.0.1/24"))
	must(t, tp.head.AddAddr("eth1", "10.98.0.2/24"))
	must(t, tp.head.DelAddr("eth1", "10.99.0.2/24"))
	upstreamDNS(t, tp.outside, "10.98.0.1", map[string]string{"www.example.test": "10.98.0.80", "moved.example.test": "10.98.0.81"})
	must(t, os.WriteFile(resolv+".new", []byte("# another network\nnameserver 10.98.0.1\n"), 0o644))
	moved := time.Now()
	must(t, os.Rename(resolv+".new", resolv))
	var took time.Duration
	for {
		if digShort(t, tp.inside, "@192.168.50.1", "moved.example.test") == "10.98.0.81" {
			took = time.Since(moved)
			break
		}
		if time.Since(moved) > 5*time.Second {
			t.Fatalf("moved.example.test not answered 5 s after the move; status DNS %+v", d.status(t).DNS)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("after the move, the nodes' queries answered by the new network's resolver %v after resolv.conf changed", took.Round(time.Millisecond))
	if took > 2*time.Second {
		t.Errorf("the nodes lost DNS for %v after the move, want at most 2 s", took)
	}
	if got := digShort(t, tp.inside, "@192.168.50.1", "www.example.test"); got != "10.98.0.80" {
		t.Errorf("www.example.test after the move: %q (the old network's answer was cached?)", got)
	}

	// Counters reach the status within a second.
	d.waitFor(t, "the DNS counters", func(s *api.Status) bool {
		return s.DNS.Queries["local"] >= 8 && s.DNS.Queries["upstream"] >= 3 && strings.Join(s.DNS.Upstreams, ",") == "10.98.0.1:53"
	})
	out, _, _ := run(t, nil, "status", "--socket", filepath.Join(tp.dir, "control.sock"))
	for _, re := range []string{
		`DNS\s+serving on 192\.168\.50\.1:53, 127\.0\.1\.53:53, \d+ local names in cluster\.home\.arpa\n`,
		`\s+forwards to 10\.98\.0\.1:53[;\n]`,
		`\s+cache \d+/4096, \d+ hits?, \d+ miss(es)?\n`,
		`\s+queries: .*local \d+.*upstream \d+`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("status lacks %q:\n%s", re, out)
		}
	}
	metrics := fetch(t, tp.head, "http://127.0.0.1:9180/metrics", "")
	for _, want := range []string{`headnode_dns_state{state="serving"} 1`, `headnode_dns_queries_total{outcome="local"}`, `headnode_dns_upstreams 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func (d *daemonProc) status(t *testing.T) *api.Status {
	t.Helper()
	s, err := d.client.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s
}
