package dhcpd

// perfdhcp (ISC, Debian kea-admin) against the server: a boot storm of
// 1024 clients, relayed the way perfdhcp always sends (it acts as a relay
// agent: giaddr is its own address, replies come to its port 67).
//
//	client ns: cli0 10.77.0.2/21 [perfdhcp] --- srv0 10.77.0.1/21 [head ns: this server]

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/headnode/headnode/netcfg/dhcpd/dhcptest"
	"github.com/headnode/headnode/netcfg/sandbox"
)

var perfSeq struct {
	sync.Mutex
	n int
}

type perfLab struct {
	head, cli *sandbox.NS
}

func newPerfLab(t *testing.T) *perfLab {
	t.Helper()
	dhcptest.Need(t)
	dhcptest.NeedCommand(t, "perfdhcp", "kea-admin")
	perfSeq.Lock()
	perfSeq.n++
	prefix := fmt.Sprintf("hnp%d-%d", os.Getpid(), perfSeq.n)
	perfSeq.Unlock()
	head, err := sandbox.New(prefix + "h")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { head.Close() })
	cli, err := sandbox.New(prefix + "c")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	if err := sandbox.Veth(head, "srv0", cli, "cli0"); err != nil {
		t.Fatal(err)
	}
	if err := head.AddAddr("srv0", "10.77.0.1/21"); err != nil {
		t.Fatal(err)
	}
	if err := cli.AddAddr("cli0", "10.77.0.2/21"); err != nil {
		t.Fatal(err)
	}
	return &perfLab{head: head, cli: cli}
}

func perfOptions(file string) *Options {
	return &Options{
		Address:   netip.MustParsePrefix("10.77.0.1/21"),
		PoolFirst: netip.MustParseAddr("10.77.1.0"), PoolLast: netip.MustParseAddr("10.77.7.254"),
		LeaseFile: file,
	}
}

// serve runs s on srv0 (with the ping check) until the test ends.
func (p *perfLab) serve(t *testing.T, s *Server) func() {
	var conn, icmp net.PacketConn
	if err := p.head.Do(func() (err error) {
		if conn, err = Listen("srv0"); err != nil {
			return err
		}
		icmp, err = ListenICMP()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.ServePing(ctx, conn, icmp) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Serve: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// perfdhcp runs perfdhcp in the client namespace and returns its output.
func (p *perfLab) perfdhcp(t *testing.T, args ...string) string {
	t.Helper()
	cmd := p.cli.Command("perfdhcp", append([]string{"-4", "-l", "cli0"}, append(args, "10.77.0.1")...)...)
	cmd.Env = append(os.Environ(), "PATH="+os.Getenv("PATH")+":/usr/sbin:/sbin")
	out, err := cmd.CombinedOutput()
	if err != nil && !strings.Contains(string(out), "Avalanche") {
		t.Fatalf("perfdhcp %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

var (
	provisionRE = regexp.MustCompile(`It took ([0-9:.]+) to provision ([0-9]+) clients`)
	ackStatsRE  = regexp.MustCompile(`(?s)Statistics for: REQUEST-ACK.*?received packets: ([0-9]+).*?non unique addresses: ([0-9]+)`)
)

// A boot storm: 1024 clients at once (perfdhcp's avalanche scenario, with
// retries) all get an address, all distinct, no NAK, through perfdhcp's
// relay-style requests.
func TestKernelPerfdhcp1024ClientsDistinctNoNAK(t *testing.T) {
	p := newPerfLab(t)
	s, err := New(perfOptions(""))
	if err != nil {
		t.Fatal(err)
	}
	p.serve(t, s)
	out := p.perfdhcp(t, "-R", "1024", "--scenario", "avalanche", "-u")
	t.Logf("perfdhcp:\n%s", out)
	bound := 0
	seen := map[netip.Addr]string{}
	for _, l := range s.Leases() {
		if l.Offered {
			continue
		}
		bound++
		if other, dup := seen[l.Addr]; dup {
			t.Errorf("%v leased to %s and %s", l.Addr, other, l.MAC)
		}
		seen[l.Addr] = l.MAC.String()
	}
	st := s.Stats()
	if bound != 1024 || st.Naks != 0 || st.Acks < 1024 {
		t.Errorf("after the storm: %d bound leases (want 1024), %d ACKs, %d NAKs (want 0); stats %+v", bound, st.Acks, st.Naks, st)
	}
	if st.Relayed == 0 {
		t.Errorf("perfdhcp's requests were not seen as relayed: %+v", st)
	}
	if m := provisionRE.FindStringSubmatch(out); m == nil || m[2] != "1024" {
		t.Errorf("perfdhcp did not provision 1024 clients")
	}
	if m := ackStatsRE.FindStringSubmatch(out); m == nil || m[1] != "1024" || m[2] != "0" {
		t.Errorf("perfdhcp's ACK statistics: %q, want 1024 received and 0 non-unique addresses", m)
	}
}

// kill -9 of the server process during a boot storm of 1024 clients: the
// lease file left loads, holds every lease granted longer ago than the
// durability bound, and the restarted server finishes the storm without
// giving any of those addresses to another machine.
func TestKernelKill9DuringBootStorm(t *testing.T) {
	p := newPerfLab(t)
	file := t.TempDir() + "/dhcp-leases.json"
	env := []string{"HEADNODE_DHCPD_LEASES=" + file, "HEADNODE_DHCPD_ADDRESS=10.77.0.1/21", "HEADNODE_DHCPD_FIRST=10.77.1.0", "HEADNODE_DHCPD_LAST=10.77.7.254", "HEADNODE_DHCPD_IFACE=srv0"}
	type ack struct {
		mac string
		at  time.Time
		run int
	}
	var mu sync.Mutex
	acks := map[string][]ack{} // by address
	naks := 0
	run := 0
	onLine := func(f []string, at time.Time) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case len(f) == 3 && f[0] == "ACK":
			acks[f[2]] = append(acks[f[2]], ack{f[1], at, run})
		case len(f) == 2 && f[0] == "NAK":
			naks++
		default:
			t.Logf("server: %s", strings.Join(f, " "))
		}
	}
	first := startChild(t, p.head, "serve", env, onLine)
	if s := <-first.start; !strings.HasPrefix(s, "START ") {
		first.kill()
		t.Fatalf("server: %s", s)
	}
	storm := make(chan string, 1)
	cmd := p.cli.Command("perfdhcp", "-4", "-l", "cli0", "-R", "1024", "--scenario", "avalanche", "10.77.0.1")
	var buf strings.Builder
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		cmd.Wait()
		storm <- buf.String()
	}()
	result := sync.OnceValue(func() string { return <-storm })
	defer func() {
		cmd.Process.Kill()
		result()
	}()
	// Kill once the first leases are older than the bound, with many
	// still to come.
	deadline := time.Now().Add(10 * time.Second)
	var firstAt time.Time
	for time.Now().Before(deadline) {
		mu.Lock()
		for _, as := range acks {
			if firstAt.IsZero() || as[0].at.Before(firstAt) {
				firstAt = as[0].at
			}
		}
		mu.Unlock()
		if !firstAt.IsZero() && time.Since(firstAt) >= durability+150*time.Millisecond {
			break
		}
		time.Sleep(time.Millisecond)
	}
	killedAt := time.Now()
	first.kill()
	mu.Lock()
	run = 1
	before := len(acks)
	mu.Unlock()
	if before >= 1024 {
		t.Fatalf("the storm was over (%d leases) before the kill", before)
	}
	ld, err := readStore(file)
	if err != nil {
		t.Fatalf("after kill -9 the lease file does not load: %v", err)
	}
	onDisk := map[string]string{}
	for _, l := range ld.leases {
		onDisk[l.Addr.String()] = l.MAC.String()
	}
	mustHave := 0
	mu.Lock()
	for a, as := range acks {
		if killedAt.Sub(as[0].at) >= durability {
			mustHave++
			if onDisk[a] != as[0].mac {
				t.Errorf("%s was granted to %s %v before the kill; the file has %q", a, as[0].mac, killedAt.Sub(as[0].at), onDisk[a])
			}
		}
	}
	mu.Unlock()
	second := startChild(t, p.head, "serve", env, onLine)
	defer second.kill()
	if s := <-second.start; !strings.HasPrefix(s, "START ") {
		t.Fatalf("server after the kill: %s", s)
	}
	timeout := time.AfterFunc(30*time.Second, func() { cmd.Process.Signal(os.Interrupt) })
	out := result()
	if !timeout.Stop() {
		mu.Lock()
		n := len(acks)
		mu.Unlock()
		t.Fatalf("the storm did not finish within 30 s after the restart (%d leases granted):\n%s", n, out)
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d leases before the kill (%d older than %v, all on disk), %d after; %d NAKs", before, mustHave, durability, len(acks)-before, naks)
	if m := provisionRE.FindStringSubmatch(out); m == nil || m[2] != "1024" {
		t.Errorf("perfdhcp did not provision 1024 clients:\n%s", out)
	}
	for a, as := range acks {
		macs := map[string]bool{}
		for _, x := range as {
			macs[x.mac] = true
		}
		if len(macs) > 1 && killedAt.Sub(as[0].at) >= durability {
			t.Errorf("%s, granted before the kill (and past the bound), went to another machine after it: %+v", a, as)
		}
	}
	if mustHave == 0 {
		t.Error("no lease was older than the bound at the kill: the test checked nothing")
	}
}
