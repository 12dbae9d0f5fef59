package main

// The soak test: the daemon on emulated hardware in namespaces, for a
// bounded time, while faults are injected at random times and rates. It
// checks continuously that the daemon stays up and bounded, that NAT comes
// back within 2 s of each network fault ending, that the LCD shows a new
// uplink address within 1 s, and that no node's power changes unless
// requested; it ends with a table of faults and recovery times.
//
//	go test ./cmd/headnode -run TestSoak -soak=3m     (CI, via build.sh test)
//	./build.sh soak 30m

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
	"github.com/headnode/headnode/netcfg/sandbox"
)

var (
	soak        = flag.Duration("soak", 0, "run the soak test for this long (CI runs 3m); off by default")
	soakSeed    = flag.Uint64("soak-seed", 0, "random seed for the soak test (0: from the clock)")
	soakBackend = flag.String("soak-backend", "nft", "iptables backend under soak: nft or legacy")
	soakTable   = flag.String("soak-table", "", "also write the soak result table to this file")
)

// Limits the soak holds the daemon to.
const (
	natRecoveryLimit = 2 * time.Second // NAT back after a network fault ends
	lcdAddressLimit  = time.Second     // LCD shows a new uplink address
	deviceLimit      = 10 * time.Second
)

// soakStats records, per fault kind, injections and recoveries.
type soakStats struct {
	mu    sync.Mutex
	kinds map[string]*faultKind
	order []string
	fails []string
}

type faultKind struct {
	injected, recovered int
	worst               time.Duration
	limit               time.Duration
	note                string
}

func (s *soakStats) kind(name string, limit time.Duration, note string) *faultKind {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.kinds[name]
	if !ok {
		k = &faultKind{limit: limit, note: note}
		s.kinds[name] = k
		s.order = append(s.order, name)
	}
	return k
}

func (s *soakStats) injected(name string, limit time.Duration, note string) {
	k := s.kind(name, limit, note)
	s.mu.Lock()
	k.injected++
	s.mu.Unlock()
}

// recovered records a recovery after d, or a failure to recover (ok false).
func (s *soakStats) recovered(name string, d time.Duration, ok bool) {
	k := s.kind(name, 0, "")
	s.mu.Lock()
	defer s.mu.Unlock()
	if !ok {
		s.fails = append(s.fails, fmt.Sprintf("%s %s: not recovered within %v", time.Now().Format("15:04:05.000"), name, d.Round(time.Millisecond)))
		return
	}
	k.recovered++
	k.worst = max(k.worst, d)
	if k.limit > 0 && d > k.limit {
		s.fails = append(s.fails, fmt.Sprintf("%s %s: recovered after %v, limit %v", time.Now().Format("15:04:05.000"), name, d.Round(time.Millisecond), k.limit))
	}
}

func (s *soakStats) fail(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.fails) < 100 {
		s.fails = append(s.fails, fmt.Sprintf(format, args...))
	}
}

func (s *soakStats) table() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "fault\tinjected\trecovered\tworst recovery\tlimit\tmeasured as\n")
	for _, name := range s.order {
		k := s.kinds[name]
		limit := "-"
		if k.limit > 0 {
			limit = k.limit.String()
		}
		worst := "-"
		if k.recovered > 0 && (k.limit > 0 || k.worst > 0) {
			worst = k.worst.Round(time.Millisecond).String()
		}
		fmt.Fprintf(w, "%s\t%d\t%d\t%s\t%s\t%s\n", name, k.injected, k.recovered, worst, limit, k.note)
	}
	w.Flush()
	return b.String()
}

// soakRig is the running system under test and what the test needs to
// reach it.
type soakRig struct {
	t      *testing.T
	tp     *topo
	d      *daemonProc
	cfg    string
	good   []byte
	ipt    string
	stats  *soakStats
	latest atomic.Pointer[api.Status]
	// latestAt is when the latest status arrived (UnixNano), so that a
	// recovery is timed by the status that showed it, not by our polling.
	latestAt atomic.Int64
	outside  net.Listener
	sock     string
	hc       *http.Client // control socket
	// lcdMu keeps the LCD's power loss out of the window in which a new
	// address must reach the glass within 1 s.
	lcdMu sync.Mutex
	// boardFailures counts checks that saw the power board not ok.
	boardFailures atomic.Int64
}

func TestSoak(t *testing.T) {
	if *soak == 0 {
		t.Skip("soak runs only with -soak=DURATION (build.sh test runs -soak=3m; build.sh soak 30m for the long run)")
	}
	if *soakBackend != "nft" && *soakBackend != "legacy" {
		t.Fatalf("-soak-backend %q: use nft or legacy", *soakBackend)
	}
	seed := *soakSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("soak for %v, backend %s, seed %d", *soak, *soakBackend, seed)
	r := &soakRig{t: t, tp: newTopo(t, true), ipt: "iptables-" + *soakBackend,
		stats: &soakStats{kinds: map[string]*faultKind{}}}
	r.cfg = r.tp.simConfig(t)
	text, _ := os.ReadFile(r.cfg)
	text = []byte(strings.Replace(string(text), "[network]\n", fmt.Sprintf("[network]\niptables = %q\n", *soakBackend), 1))
	os.WriteFile(r.cfg, text, 0o644)
	r.good = text
	r.sock = filepath.Join(r.tp.dir, "control.sock")
	r.hc = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", r.sock)
		},
	}}
	// A tiny netlink receive buffer, so that event bursts overflow it.
	r.d = r.tp.startDaemon(t, r.cfg, "HEADNODE_NETLINK_RCVBUF=4096")
	r.outsideServer()

	// p1 (the inside namespace) on, the others off: from here on, no
	// node's power may change.
	r.cli("on", "p1")
	r.cli("off", "p2", "p3", "p4")
	r.d.waitFor(t, "p1 up, health ok", func(s *api.Status) bool {
		return nodeOf(s, "p1").State == api.NodeUp && s.Health.State == api.HealthOK && r.lcdRow(s, 0) == "10.99.0.2"
	})
	if _, err := r.natWorks(time.Second); err != nil {
		t.Fatalf("NAT before the soak: %v", err)
	}
	wantPower := "1000"

	ctx, cancel := context.WithTimeout(context.Background(), *soak)
	defer cancel()
	// The status is followed until the last fault's recovery has been
	// measured, which can be after the soak's time is up.
	followCtx, stopFollowing := context.WithCancel(context.Background())
	defer stopFollowing()
	go r.follow(followCtx)
	var wg sync.WaitGroup
	base := r.resources()
	t.Logf("baseline: %d goroutines, %.1f MB resident", base.goroutines, base.rssMB)
	peak := base

	// Continuous checks.
	wg.Go(func() {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		n := 0
		for {
			select {
			case <-ctx.Done():
				return
			case <-r.d.exited:
				r.stats.fail("the daemon exited:\n%s", tail(r.d.log.String(), 40))
				cancel()
				return
			case <-tick.C:
			}
			if s := r.latest.Load(); s != nil && len(s.Power.Nodes) == 4 {
				if got := powered(s); got != wantPower {
					r.stats.fail("node power changed without a request: %s, want %s", got, wantPower)
				}
				if len(s.Power.Boards) == 1 && s.Power.Boards[0].State != "ok" {
					r.boardFailures.Add(1)
				}
			}
			if n++; n%10 == 0 {
				res := r.resources()
				peak.goroutines = max(peak.goroutines, res.goroutines)
				peak.rssMB = max(peak.rssMB, res.rssMB)
			}
		}
	})
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	var rngMu sync.Mutex
	rnd := func(lo, hi time.Duration) time.Duration {
		rngMu.Lock()
		defer rngMu.Unlock()
		return lo + time.Duration(rng.Int64N(int64(hi-lo)+1))
	}
	pick := func(n int) int {
		rngMu.Lock()
		defer rngMu.Unlock()
		return rng.IntN(n)
	}

	// I2C NACKs and bus errors on about 1 % of transactions, and a bit
	// flipped in 5 % of the reads from the ClusterHAT's expander (0x20),
	// throughout.
	r.post("/v1/sim/i2c", api.SimI2C{Bus: 1, NACKRate: 0.007, ErrorRate: 0.003, FlipRate: 0.05, FlipAddr: 0x20})

	wg.Go(func() { r.networkFaults(ctx, rnd, pick) })
	wg.Go(func() { r.deviceFaults(ctx, rnd, pick) })
	wg.Go(func() { r.reloads(ctx, rnd) })
	var requests, apiErrors atomic.Int64
	for i := range 6 {
		wg.Go(func() { r.apiLoad(ctx, i, &requests, &apiErrors) })
	}
	start := time.Now()
	<-ctx.Done()
	wg.Wait()
	elapsed := time.Since(start)

	// The end: faults off, a valid configuration, then the final state.
	r.post("/v1/sim/i2c", api.SimI2C{Bus: 1})
	os.WriteFile(r.cfg, r.good, 0o644)
	r.d.cmd.Process.Signal(syscall.SIGHUP)
	final, _ := r.d.waitFor(t, "the final state", func(s *api.Status) bool {
		return s.Health.State == api.HealthOK && s.NAT.State == api.NATOK && s.Config.ReloadOK &&
			nodeOf(s, "p1").State == api.NodeUp && r.lcdRow(s, 0) == strings.Split(s.Uplink.Address, "/")[0] &&
			s.Display.LED.State == api.DeviceOK && s.Display.LED.Pattern == "ok"
	})
	if got := powered(final); got != wantPower {
		t.Errorf("final node power %s, want %s", got, wantPower)
	}
	if _, err := r.natWorks(2 * time.Second); err != nil {
		t.Errorf("NAT at the end: %v", err)
	}
	rules := rulesOf(t, r.tp.head, r.ipt)
	for _, want := range []string{"-A FORWARD -m comment --comment headnode -j HEADNODE-FWD", "-A HEADNODE-POSTRT -s 192.168.50.0/24 ! -o eth0 -m comment --comment headnode -j MASQUERADE"} {
		if strings.Count(rules, want) != 1 {
			t.Errorf("final rules: %q appears %d times:\n%s", want, strings.Count(rules, want), rules)
		}
	}
	end := r.resources()
	var i2c api.SimI2CStats
	if err := r.d.client.Do(context.Background(), http.MethodGet, "/v1/sim/i2c?bus=1", nil, &i2c); err != nil {
		t.Errorf("emulated bus counters: %v", err)
	}
	// Every injected I2C fault was retried or repaired by the drivers:
	// the final state (board readable, node power unchanged, LCD right)
	// above shows it; there is no per-fault recovery time to measure.
	const i2cKind = "I2C NACK or bus error (1% of transactions)"
	r.stats.kind(i2cKind, 0, "retried by the drivers; the final board, power and LCD state is right")
	// A corrupted read is recovered when nothing came of it: no node's
	// power changed unrequested (checked all along), no power board
	// failed, and the board was never taken as reset.
	const flipKind = "corrupted expander read (1 bit flipped, 5% of reads at 0x20)"
	r.stats.kind(flipKind, 0, "no node's power changed, no re-initialisation, board never failed")
	reinit := strings.Contains(r.d.log.String(), "came up reset")
	r.stats.mu.Lock()
	r.stats.kinds[i2cKind].injected = int(i2c.Injected)
	r.stats.kinds[flipKind].injected = int(i2c.Flipped)
	if !t.Failed() {
		r.stats.kinds[i2cKind].recovered = int(i2c.Injected)
		if r.boardFailures.Load() == 0 && !reinit {
			r.stats.kinds[flipKind].recovered = int(i2c.Flipped)
		}
	}
	r.stats.mu.Unlock()
	if i2c.Flipped == 0 {
		t.Error("no expander read was corrupted: the fault did not work")
	}
	if n := r.boardFailures.Load(); n > 0 {
		t.Errorf("the ClusterHAT was reported failed or missing %d times under corrupted reads", n)
	}
	if reinit {
		t.Error("a corrupted read was taken for a reset of the ClusterHAT: it was initialised again")
	}
	metrics := r.metrics()
	i2cTx, i2cErr := metricValue(metrics, `headnode_i2c_transactions_total{bus="1"}`), metricValue(metrics, `headnode_i2c_errors_total{bus="1"}`)

	table := r.stats.table()
	summary := fmt.Sprintf(`soak: %v with backend %s, seed %d
%s
API load: %d requests (%.0f/s), %d errors
I2C bus 1: %.0f transactions, %.0f failed (%.2f%%: %d injected NACKs and bus errors, the rest to the LCD while it had no power), %d expander reads corrupted
uplink address changes: %d in all bursts
netlink subscription overflows recovered: %d
goroutines: %d at start, peak %d, %d at the end; resident memory: %.1f MB at start, peak %.1f MB, %.1f MB at the end
NAT repairs counted by the daemon: %d
`, elapsed.Round(time.Second), *soakBackend, seed, table, requests.Load(), float64(requests.Load())/elapsed.Seconds(), apiErrors.Load(),
		i2cTx, i2cErr, 100*i2cErr/max(i2cTx, 1), i2c.Injected, i2c.Flipped, addrChanges.Load(), final.Netlink.Resubscribes,
		base.goroutines, peak.goroutines, end.goroutines, base.rssMB, peak.rssMB, end.rssMB, final.NAT.Repairs)
	t.Log("\n" + summary)
	if *soakTable != "" {
		os.WriteFile(*soakTable, []byte(summary), 0o644)
	}
	if apiErrors.Load() > 0 {
		t.Errorf("%d API requests failed", apiErrors.Load())
	}
	// Bounded: a leak over minutes shows as growth well past the start.
	if end.goroutines > 2*base.goroutines+50 {
		t.Errorf("goroutines grew from %d to %d", base.goroutines, end.goroutines)
	}
	if end.rssMB > 2*base.rssMB+32 {
		t.Errorf("resident memory grew from %.1f MB to %.1f MB", base.rssMB, end.rssMB)
	}
	if final.Netlink.Resubscribes == 0 {
		t.Error("no netlink overflow happened: the overflow fault did not work")
	}
	for _, f := range r.stats.fails {
		t.Error(f)
	}
	if t.Failed() {
		path := filepath.Join(os.TempDir(), fmt.Sprintf("headnode-soak-%d.log", os.Getpid()))
		os.WriteFile(path, []byte(r.d.log.String()), 0o644)
		t.Logf("the daemon's whole log: %s", path)
	}
}

// dumpDaemon makes the daemon print every goroutine's stack (SIGQUIT, as
// systemd's watchdog does with SIGABRT) and saves its whole log next to
// the soak table, for a failure that needs a post-mortem.
func (r *soakRig) dumpDaemon() {
	r.d.cmd.Process.Signal(syscall.SIGQUIT)
	time.Sleep(time.Second)
	path := filepath.Join(os.TempDir(), fmt.Sprintf("headnode-soak-%d.log", os.Getpid()))
	os.WriteFile(path, []byte(r.d.log.String()), 0o644)
	r.stats.fail("the daemon's log and goroutine dump: %s", path)
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func rulesOf(t *testing.T, ns *sandbox.NS, ipt string) string {
	out, err := ns.Run(ipt + "-save")
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// cli runs the headnode CLI against the daemon; a failure fails the test.
func (r *soakRig) cli(args ...string) {
	r.t.Helper()
	if _, errOut, code := run(r.t, nil, append(args, "--config", r.cfg)...); code != 0 {
		r.t.Fatalf("headnode %v: exit %d: %s", args, code, errOut)
	}
}

func (r *soakRig) post(path string, body any) {
	b, _ := json.Marshal(body)
	resp, err := r.hc.Post("http://headnode"+path, "application/json", strings.NewReader(string(b)))
	if err != nil {
		r.stats.fail("POST %s: %v", path, err)
		return
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		r.stats.fail("POST %s: %s", path, resp.Status)
	}
}

func (r *soakRig) lcdRow(s *api.Status, i int) string {
	if len(s.Display.LCD.Rows) <= i {
		return ""
	}
	return strings.TrimSpace(s.Display.LCD.Rows[i])
}

// follow keeps the latest status.
func (r *soakRig) follow(ctx context.Context) {
	for ctx.Err() == nil {
		r.d.client.Watch(ctx, func(s *api.Status) bool {
			r.latestAt.Store(time.Now().UnixNano())
			r.latest.Store(s)
			return true
		})
		time.Sleep(50 * time.Millisecond)
	}
}

// waitStatus waits up to limit for cond on the followed status and
// returns how long it took.
func (r *soakRig) waitStatus(limit time.Duration, cond func(*api.Status) bool) (time.Duration, bool) {
	return r.waitStatusSince(time.Now(), limit, cond)
}

// waitStatusSince waits until the followed status satisfies cond, at most
// until since+limit, and returns how long after since the status that
// satisfied it arrived (0 when it was already there at since).
func (r *soakRig) waitStatusSince(since time.Time, limit time.Duration, cond func(*api.Status) bool) (time.Duration, bool) {
	for {
		at := time.Unix(0, r.latestAt.Load())
		if s := r.latest.Load(); s != nil && cond(s) {
			return max(at.Sub(since), 0), true
		}
		if time.Since(since) > limit {
			return time.Since(since), false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// outsideServer answers every connection with the source address it sees.
func (r *soakRig) outsideServer() {
	l, err := r.tp.outside.Listen("10.99.0.1:7000")
	if err != nil {
		r.t.Fatal(err)
	}
	r.outside = l
	r.t.Cleanup(func() { l.Close() })
	go sandbox.ServeSourceAddress(l)
}

// natWorks connects from the node to the outside until it works or limit
// passes, and returns how long that took.
func (r *soakRig) natWorks(limit time.Duration) (time.Duration, error) {
	start := time.Now()
	var last error
	for time.Since(start) <= limit {
		c, err := r.tp.inside.Dial("10.99.0.1:7000", net.Dialer{Timeout: 250 * time.Millisecond})
		if err == nil {
			c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			line, rerr := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if rerr == nil && strings.HasPrefix(line, "10.99.0.") {
				return time.Since(start), nil
			}
			err = fmt.Errorf("read: %v %q", rerr, line)
		}
		last = err
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start), last
}

// recoverNAT measures NAT coming back after a fault of kind ended.
func (r *soakRig) recoverNAT(kind string) { r.recoverNATSince(kind, time.Now()) }

// recoverNATSince measures NAT working again, from since.
func (r *soakRig) recoverNATSince(kind string, since time.Time) {
	_, err := r.natWorks(5 * time.Second)
	r.stats.recovered(kind, time.Since(since), err == nil)
}

func (r *soakRig) head(args ...string) {
	if out, err := r.tp.head.Run(args[0], args[1:]...); err != nil {
		// Deleting what another fault already removed is fine; so is
		// failing to delete a chain that the daemon, repairing between
		// two of our commands, has jumped to again ("busy").
		if !strings.Contains(out, "No chain") && !strings.Contains(out, "does not exist") && !strings.Contains(out, "Bad rule") && !strings.Contains(out, "Cannot assign") && !strings.Contains(out, "No such") && !strings.Contains(out, "Device or resource busy") {
			r.stats.fail("%v: %v", args, err)
		}
	}
}

var uplinkAddr atomic.Int32

// addrChanges counts single uplink address changes across all bursts.
var addrChanges atomic.Int64

func init() { uplinkAddr.Store(2) }

// networkFaults injects one network fault at a time, then measures the
// recovery from the moment it ended.
func (r *soakRig) networkFaults(ctx context.Context, rnd func(lo, hi time.Duration) time.Duration, pick func(int) int) {
	sleep := func(d time.Duration) bool {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(d):
			return true
		}
	}
	flapLink := func(kind, link string) {
		r.stats.injected(kind, natRecoveryLimit, "NAT works after the link is up")
		r.head("ip", "link", "set", link, "down")
		sleep(rnd(200*time.Millisecond, 3*time.Second))
		r.head("ip", "link", "set", link, "up")
		r.recoverNAT(kind)
	}
	ipt := r.ipt
	for ctx.Err() == nil {
		if !sleep(rnd(300*time.Millisecond, 2*time.Second)) {
			return
		}
		switch pick(8) {
		case 0: // a burst of uplink address changes, up to 10 per second
			const kind = "uplink address change burst"
			r.stats.injected(kind, natRecoveryLimit, "NAT works after the burst's last change")
			n := 3 + pick(20)
			addrChanges.Add(int64(n))
			// The LCD keeps its power from the burst to the measurement:
			// an overlapping power loss is measured as its own recovery.
			r.lcdMu.Lock()
			var last time.Time
			for i := 0; i < n && ctx.Err() == nil; i++ {
				if i > 0 {
					time.Sleep(rnd(100*time.Millisecond, 300*time.Millisecond))
				}
				old := uplinkAddr.Load()
				next := 10 + int32(pick(50))
				if next == old {
					next++
				}
				r.head("ip", "addr", "add", fmt.Sprintf("10.99.0.%d/24", next), "dev", "eth1")
				r.head("ip", "addr", "del", fmt.Sprintf("10.99.0.%d/24", old), "dev", "eth1")
				// promote_secondaries=0 took the new address with the old.
				r.head("ip", "addr", "replace", fmt.Sprintf("10.99.0.%d/24", next), "dev", "eth1")
				// A DHCP client announces its new address (ARP); without
				// that, a "failed" neighbour entry the user's router kept
				// from an earlier, short-lived use of the same address
				// drops replies for seconds. Forget it, as the announcement
				// would make the router do.
				r.tp.outside.Run("ip", "neigh", "del", fmt.Sprintf("10.99.0.%d", next), "dev", "out0")
				uplinkAddr.Store(next)
				last = time.Now()
			}
			want := fmt.Sprintf("10.99.0.%d", uplinkAddr.Load())
			r.stats.injected("LCD shows the new uplink address", lcdAddressLimit, "from the burst's last change to the status showing it on the LCD")
			d, ok := r.waitStatusSince(last, 3*time.Second, func(s *api.Status) bool { return r.lcdRow(s, 0) == want })
			r.lcdMu.Unlock()
			r.stats.recovered("LCD shows the new uplink address", d, ok)
			if !ok {
				s := r.latest.Load()
				out, _ := r.tp.head.Run("ip", "-4", "addr", "show", "eth1")
				r.stats.fail("LCD want %s: %+v; status uplink %+v; netlink %+v; eth1:\n%s", want, s.Display.LCD, s.Uplink, s.Netlink, out)
			}
			r.recoverNATSince(kind, last)
		case 1:
			flapLink("uplink link down/up", "eth1")
		case 2:
			flapLink("cluster link down/up", "eth0")
		case 3:
			const kind = "rules flushed (-F, -t nat -F)"
			r.stats.injected(kind, natRecoveryLimit, "NAT works after the flush")
			r.head(ipt, "-F")
			r.head(ipt, "-t", "nat", "-F")
			r.recoverNAT(kind)
		case 4:
			const kind = "chains deleted (-D jump, -F, -X)"
			r.stats.injected(kind, natRecoveryLimit, "NAT works after the deletion")
			r.head(ipt, "-D", "FORWARD", "-m", "comment", "--comment", "headnode", "-j", "HEADNODE-FWD")
			r.head(ipt, "-F", "HEADNODE-FWD")
			r.head(ipt, "-X", "HEADNODE-FWD")
			r.head(ipt, "-t", "nat", "-D", "POSTROUTING", "-m", "comment", "--comment", "headnode", "-j", "HEADNODE-POSTRT")
			r.head(ipt, "-t", "nat", "-F", "HEADNODE-POSTRT")
			r.head(ipt, "-t", "nat", "-X", "HEADNODE-POSTRT")
			r.recoverNAT(kind)
		case 5:
			const kind = "xtables lock held for seconds"
			r.stats.injected(kind, natRecoveryLimit, "NAT works after the lock is released (rules flushed meanwhile)")
			hold := rnd(time.Second, 4*time.Second)
			lock := r.tp.head.Command("flock", "/run/xtables.lock", "sleep", strconv.FormatFloat(hold.Seconds(), 'f', 2, 64))
			if err := lock.Start(); err != nil {
				r.stats.fail("flock: %v", err)
				continue
			}
			time.Sleep(100 * time.Millisecond)
			// Flush meanwhile: with the lock taken, a legacy repair
			// waits for it; nf_tables ignores the lock.
			r.head("iptables-nft", "-t", "nat", "-F")
			if *soakBackend == "legacy" {
				r.head("iptables-legacy", "-w", "-t", "nat", "-F")
			}
			lock.Wait()
			r.recoverNAT(kind)
		case 6:
			// Most bursts overflow the daemon's tiny receive buffer (the
			// summary counts how many); either way its view must be
			// right once the burst is over.
			const kind = "netlink event burst (1200 events)"
			r.stats.injected(kind, lcdAddressLimit, "the uplink and cluster as the daemon sees them are right again")
			r.netlinkBurst()
			want := fmt.Sprintf("10.99.0.%d/24", uplinkAddr.Load())
			d, ok := r.waitStatus(5*time.Second, func(s *api.Status) bool {
				return s.Uplink.Address == want && s.Cluster.Exists && s.Cluster.Address == "192.168.50.1/24"
			})
			r.stats.recovered(kind, d, ok)
		case 7:
			const kind = "table rewritten (iptables-restore)"
			r.stats.injected(kind, natRecoveryLimit, "NAT works after the rewrite")
			c := r.tp.head.Command(ipt + "-restore")
			c.Stdin = strings.NewReader("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n:ufw-before-forward - [0:0]\n-A FORWARD -j ufw-before-forward\nCOMMIT\n*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n")
			if out, err := c.CombinedOutput(); err != nil {
				r.stats.fail("iptables-restore: %v %s", err, out)
			}
			r.recoverNAT(kind)
		}
	}
}

// netlinkBurst adds and removes hundreds of addresses on a throwaway
// bridge in head, faster than the daemon's tiny receive buffer can take.
func (r *soakRig) netlinkBurst() {
	ns := r.tp.head
	if _, err := ns.NL.LinkByName("noise0"); err != nil {
		if err := ns.Bridge("noise0"); err != nil {
			r.stats.fail("noise bridge: %v", err)
			return
		}
	}
	for i := range 600 {
		ns.AddAddr("noise0", fmt.Sprintf("10.%d.%d.1/32", 200+i/250, i%250))
	}
	for i := range 600 {
		ns.DelAddr("noise0", fmt.Sprintf("10.%d.%d.1/32", 200+i/250, i%250))
	}
}

// deviceFaults takes the LCD's power and unplugs the LED now and then.
func (r *soakRig) deviceFaults(ctx context.Context, rnd func(lo, hi time.Duration) time.Duration, pick func(int) int) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(rnd(3*time.Second, 15*time.Second)):
		}
		out := rnd(500*time.Millisecond, 3*time.Second)
		if pick(2) == 0 {
			const kind = "LCD backpack power loss"
			r.stats.injected(kind, deviceLimit, "the right address on the glass again after power returns")
			r.lcdMu.Lock()
			r.post("/v1/sim/lcd", api.SimDevice{On: false})
			time.Sleep(out)
			r.post("/v1/sim/lcd", api.SimDevice{On: true})
			want := fmt.Sprintf("10.99.0.%d", uplinkAddr.Load())
			d, ok := r.waitStatus(deviceLimit+time.Second, func(s *api.Status) bool {
				return s.Display.LCD.State == api.DeviceOK && r.lcdRow(s, 0) == fmt.Sprintf("10.99.0.%d", uplinkAddr.Load())
			})
			r.stats.recovered(kind, d, ok)
			if !ok {
				s := r.latest.Load()
				r.stats.fail("LCD after power loss: want %s; LCD %+v", want, s.Display.LCD)
			}
			r.lcdMu.Unlock()
		} else {
			const kind = "BlinkStick unplug/replug"
			r.stats.injected(kind, deviceLimit, "the LED found again after replugging")
			r.post("/v1/sim/led", api.SimDevice{On: false})
			time.Sleep(out)
			r.post("/v1/sim/led", api.SimDevice{On: true})
			d, ok := r.waitStatus(deviceLimit+time.Second, func(s *api.Status) bool { return s.Display.LED.State == api.DeviceOK })
			r.stats.recovered(kind, d, ok)
			if !ok {
				r.stats.fail("LED after replugging: %+v", r.latest.Load().Display.LED)
				r.dumpDaemon()
			}
		}
	}
}

// reloads alternates broken and valid configurations with SIGHUP.
func (r *soakRig) reloads(ctx context.Context, rnd func(lo, hi time.Duration) time.Duration) {
	broken := strings.Replace(string(r.good), `stagger = "100ms"`, `stagger = "soon"`, 1)
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-time.After(rnd(3*time.Second, 10*time.Second)):
		}
		valid := i%2 == 1
		kind := "reload with a broken file"
		text := broken
		if valid {
			kind, text = "reload with a valid file", string(r.good)
		}
		r.stats.injected(kind, 2*time.Second, "status shows the reload's outcome")
		before := r.latest.Load()
		os.WriteFile(r.cfg, []byte(text), 0o644)
		r.d.cmd.Process.Signal(syscall.SIGHUP)
		d, ok := r.waitStatus(3*time.Second, func(s *api.Status) bool {
			return s.Config.LastReloadAt.After(before.Config.LastReloadAt) && s.Config.ReloadOK == valid
		})
		r.stats.recovered(kind, d, ok)
	}
}

// apiLoad requests the status over the control socket, and the page and
// metrics over the network listener, as fast as a few clients can.
func (r *soakRig) apiLoad(ctx context.Context, i int, requests, errs *atomic.Int64) {
	netClient := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return r.tp.head.Dial(addr, net.Dialer{Timeout: 2 * time.Second})
		},
	}}
	urls := []struct {
		c   *http.Client
		url string
	}{
		{r.hc, "http://headnode/v1/status"},
		{r.hc, "http://headnode/v1/status"},
		{r.hc, "http://headnode/v1/status"},
		{r.hc, "http://headnode/v1/nat"},
		{netClient, "http://127.0.0.1:9180/metrics"},
		{netClient, "http://127.0.0.1:9180/"},
	}
	u := urls[i%len(urls)]
	for ctx.Err() == nil {
		resp, err := u.c.Get(u.url)
		requests.Add(1)
		if err != nil {
			if ctx.Err() == nil {
				errs.Add(1)
				r.stats.fail("GET %s: %v", u.url, err)
			}
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			errs.Add(1)
			r.stats.fail("GET %s: %s", u.url, resp.Status)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type resources struct {
	goroutines int
	rssMB      float64
}

// metrics scrapes the daemon; safe from any goroutine ("" on failure).
func (r *soakRig) metrics() string {
	// A connection per scrape, closed after it: the scrapes must not
	// leave idle connections (and their goroutines) in the daemon.
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return r.tp.head.Dial(addr, net.Dialer{Timeout: 2 * time.Second})
		},
	}}
	resp, err := c.Get("http://127.0.0.1:9180/metrics")
	if err != nil {
		r.stats.fail("scrape: %v", err)
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func (r *soakRig) resources() resources {
	m := r.metrics()
	return resources{goroutines: int(metricValue(m, "go_goroutines")), rssMB: metricValue(m, "process_resident_memory_bytes") / (1 << 20)}
}

var metricLine = regexp.MustCompile(`(?m)^(\S+) (\S+)$`)

// metricValue returns the value of the series named exactly name.
func metricValue(metrics, name string) float64 {
	for _, m := range metricLine.FindAllStringSubmatch(metrics, -1) {
		if m[1] == name {
			v, _ := strconv.ParseFloat(m[2], 64)
			return v
		}
	}
	return 0
}
