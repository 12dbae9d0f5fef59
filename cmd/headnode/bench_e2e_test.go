package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
)

// The figures of `build.sh bench` (issue 13): off unless -bench-figures
// is given. Each figure is printed as one line
//
//	figure NAME VALUE UNIT
//
// which build.sh collects; -bench-binary measures another build of
// headnode (the incumbent) with the same harness.
var (
	benchFigures = flag.Bool("bench-figures", false, "measure the figures of build.sh bench (minutes; needs root)")
	benchBinary  = flag.String("bench-binary", "", "the headnode binary to measure (default: this tree's)")
	benchFor     = flag.Duration("bench-for", 30*time.Second, "how long each CPU measurement runs")
)

func figure(name string, value float64, unit string) {
	fmt.Printf("figure %s %.4g %s\n", name, value, unit)
}

func benchSetup(t *testing.T) {
	t.Helper()
	if !*benchFigures {
		t.Skip("measurement only: build.sh bench runs it with -bench-figures")
	}
	if *benchBinary != "" {
		binary = *benchBinary
	}
}

// cpuOver returns the CPU time pid uses over d, as a percentage of one
// core, from the scheduler's nanosecond run times of its threads
// (/proc/PID/task/*/schedstat): clock ticks are too coarse for 0.1 %.
func cpuOver(t *testing.T, pid int, d time.Duration) float64 {
	cpu0 := runTime(t, pid)
	start := time.Now()
	time.Sleep(d)
	used := runTime(t, pid) - cpu0
	return 100 * used.Seconds() / time.Since(start).Seconds()
}

func runTime(t *testing.T, pid int) time.Duration {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err != nil || len(tasks) == 0 {
		t.Fatalf("no threads of %d: %v", pid, err)
	}
	var sum time.Duration
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // a thread that just ended
		}
		ns, _ := strconv.ParseInt(strings.Fields(string(b))[0], 10, 64)
		sum += time.Duration(ns)
	}
	return sum
}

func rssKB(t *testing.T, pid int, field string) float64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb
		}
	}
	return 0
}

// TestBenchReady: READY=1 (NAT applied) from the start of the process
// (`ip netns exec` included, as systemd's own fork and exec would be), the
// median of seven cold starts, each in new namespaces with an empty state
// directory: on the emulated machine TestBenchIdle runs ("ready"), and
// with the real hardware backend on this machine, which has none of the
// boards, LCD or LED ("ready_real": what a head without the emulator's
// file trees to build takes; the boards are looked for beside NAT, not
// before it).
func TestBenchReady(t *testing.T) {
	benchSetup(t)
	for _, c := range []struct{ name, backend string }{{"ready", "sim"}, {"ready_real", "real"}} {
		var times []float64
		for i := range 7 {
			t.Run(fmt.Sprintf("%s-%d", c.name, i), func(t *testing.T) {
				tp := newTopo(t, true)
				cfg := tp.simConfig(t)
				if c.backend == "real" {
					cfg = tp.config(t, "")
				}
				ns := newNotifySocket(t)
				start := time.Now()
				tp.startDaemon(t, cfg, "NOTIFY_SOCKET="+ns.path)
				times = append(times, ms(ns.first(t, "READY=1").at.Sub(start)))
			})
		}
		slices.Sort(times)
		t.Logf("%s: %v ms", c.name, times)
		figure(c.name, times[len(times)/2], "ms")
	}
}

// TestBenchIdle: the idle appliance (TestFootprint's): resident memory and
// CPU over -bench-for.
func TestBenchIdle(t *testing.T) {
	benchSetup(t)
	tp := newTopo(t, true)
	cfg := tp.simConfig(t)
	text, _ := os.ReadFile(cfg)
	text = []byte(strings.NewReplacer(`probe_interval = "200ms"`, `probe_interval = "1s"`, `down_after = "600ms"`, `down_after = "3s"`).Replace(string(text)))
	must(t, os.WriteFile(cfg, text, 0o644))
	started := time.Now()
	d := tp.startDaemon(t, cfg)
	if _, errOut, code := run(t, nil, "on", "p1", "--config", cfg); code != 0 {
		t.Fatal(errOut)
	}
	d.waitFor(t, "p1 up", func(s *api.Status) bool { return nodeOf(s, "p1").State == api.NodeUp })
	pid := d.cmd.Process.Pid
	// Idle is after start-up: the daemon gives back start-up's memory
	// 10 s in (trimStartup), and the pages it pages out then that the
	// running daemon still uses fault back in over the next seconds, a
	// one-time cost the window must not hold.
	time.Sleep(time.Until(started.Add(20 * time.Second)))
	figure("idle_cpu", cpuOver(t, pid, *benchFor), "%core")
	figure("idle_rss", rssKB(t, pid, "VmRSS")/1024, "MB")
	figure("idle_rss_anon", rssKB(t, pid, "RssAnon")/1024, "MB")
	figure("idle_rss_file", rssKB(t, pid, "RssFile")/1024, "MB")
	if os.Getenv("HEADNODE_BENCH_LOG") != "" {
		t.Logf("daemon log:\n%s", d.log.String())
	}
	if os.Getenv("HEADNODE_BENCH_SMAPS") != "" {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/smaps")
		t.Logf("smaps:\n%s", b)
	}
}

// TestBenchThousandNodes: the daemon probing 1024 nodes once a second
// (CPU over -bench-for), the time until 12 nodes that stop answering are
// unreachable, and the time to produce `headnode status` (hyperfine,
// beside `python3 -c pass`), its JSON, the page and /metrics.
func TestBenchThousandNodes(t *testing.T) {
	benchSetup(t)
	tp, cfg := scaleTopo(t)
	d := tp.startDaemon(t, cfg)
	// Answering, or powered off (the four HAT slots: not asked since
	// 1d79105, answering in the emulation before).
	answering := func(s *api.Status) int {
		n := 0
		for _, nd := range s.Power.Nodes {
			if nd.Reachable || nd.State == api.NodeOff {
				n++
			}
		}
		return n
	}
	d.waitFor(t, "every node answering", func(s *api.Status) bool { return answering(s) == scaleNodes })
	time.Sleep(3 * time.Second)
	figure("probe1024_cpu", cpuOver(t, d.cmd.Process.Pid, *benchFor), "%core")

	// Views, each timed 30 times; the median and the worst. 60 ms apart:
	// the page's listener lets a client have 20 requests a second after
	// a burst, and a request over that waits its turn (README, Limits).
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return tp.head.Dial(addr, net.Dialer{Timeout: 2 * time.Second})
		},
	}}
	for _, v := range []struct{ name, path, accept string }{
		{"page", "/", "text/html"}, {"json", "/", "application/json"}, {"metrics", "/metrics", ""},
	} {
		var times []time.Duration
		for range 30 {
			time.Sleep(60 * time.Millisecond)
			req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:9180"+v.path, nil)
			if v.accept != "" {
				req.Header.Set("Accept", v.accept)
			}
			start := time.Now()
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			times = append(times, time.Since(start))
		}
		slices.Sort(times)
		figure(v.name+"1024_median", ms(times[len(times)/2]), "ms")
		figure(v.name+"1024_max", ms(times[len(times)-1]), "ms")
	}
	// The CLI beside Python's start-up, by hyperfine.
	if hf, err := exec.LookPath("hyperfine"); err == nil {
		out := filepath.Join(t.TempDir(), "hyperfine.json")
		cmd := exec.Command(hf, "--warmup", "3", "--runs", "30", "-N", "--export-json", out,
			binary+" status --config "+cfg, binary+" status --json --config "+cfg, "python3 -c pass")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("hyperfine: %v\n%s", err, b)
		}
		var res struct {
			Results []struct {
				Median, Max float64
			}
		}
		b, _ := os.ReadFile(out)
		if err := json.Unmarshal(b, &res); err != nil || len(res.Results) != 3 {
			t.Fatalf("hyperfine's JSON: %v", err)
		}
		for i, name := range []string{"status1024", "status_json1024", "python3_pass"} {
			figure(name+"_median", res.Results[i].Median*1000, "ms")
			figure(name+"_max", res.Results[i].Max*1000, "ms")
		}
	} else {
		t.Errorf("hyperfine not installed (Debian package hyperfine)")
	}

	// 12 nodes stop answering.
	var batch strings.Builder
	silent := 0
	for n := 1; n <= scaleNodes; n++ {
		if scaleSilent(n) {
			fmt.Fprintf(&batch, "addr del %s/32 dev in0\n", scaleAddr(n))
			silent++
		}
	}
	cmd := tp.inside.Command("ip", "-batch", "-")
	cmd.Stdin = strings.NewReader(batch.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ip -batch: %v %s", err, out)
	}
	stopped := time.Now()
	_, at := d.waitFor(t, "12 nodes unreachable", func(s *api.Status) bool { return answering(s) == scaleNodes-silent })
	figure("detect1024", ms(at.Sub(stopped)), "ms")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// TestBenchLCD: an uplink change (its address removed, then put back, 40
// times each) to the last byte of the LCD row that shows it, end to end on
// the emulated machine: the kernel's netlink event, the daemon's loop, the
// display and the emulated bus at 100 kHz (which returns when the last
// byte is on the wire). The times come from the I2C trace, stamped as
// each transaction returns.
func TestBenchLCD(t *testing.T) {
	benchSetup(t)
	tp := newTopo(t, true)
	cfg := tp.simConfig(t)
	trace := filepath.Join(tp.dir, "i2c.jsonl")
	text, _ := os.ReadFile(cfg)
	text = []byte(strings.Replace(string(text), "[hardware]\n", fmt.Sprintf("[hardware]\ni2c_trace = %q\n", trace), 1))
	must(t, os.WriteFile(cfg, text, 0o644))
	d := tp.startDaemon(t, cfg)
	d.waitFor(t, "the address on the LCD, DHCP serving", func(s *api.Status) bool {
		return len(s.Display.LCD.Rows) > 0 && strings.TrimSpace(s.Display.LCD.Rows[0]) == "10.99.0.2" && s.DHCP.State == api.DHCPServing
	})
	time.Sleep(500 * time.Millisecond)
	f, err := os.Open(trace)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Seek(0, io.SeekEnd)
	r := bufio.NewReader(f)
	// rowWritten waits for the next write to the LCD's backpack (0x27;
	// the ClusterHAT's expander shares the bus) and returns when it
	// ended.
	rowWritten := func(after time.Time) time.Time {
		deadline := time.Now().Add(2 * time.Second)
		var partial string
		for time.Now().Before(deadline) {
			line, err := r.ReadString('\n')
			if err != nil {
				partial += line
				time.Sleep(200 * time.Microsecond)
				continue
			}
			line, partial = partial+line, ""
			var e struct {
				T, W string
				Addr int
			}
			if json.Unmarshal([]byte(line), &e) != nil || e.Addr != 0x27 || len(e.W) < 2*2 {
				continue
			}
			at, err := time.Parse(time.RFC3339Nano, e.T)
			if err != nil {
				t.Fatal(err)
			}
			if at.Before(after) {
				continue // an earlier update (health settling after start-up)
			}
			return at
		}
		t.Fatal("no row written within 2 s")
		return time.Time{}
	}
	// measure times change(i)(): change prepares, the function it
	// returns makes the change measured.
	measure := func(name string, change func(i int) func()) {
		var times, loop, sys []time.Duration
		for i := range 100 {
			time.Sleep(30 * time.Millisecond)
			do := change(i)
			start := time.Now()
			do()
			sys = append(sys, time.Since(start))
			times = append(times, rowWritten(start).Sub(start))
			// When the daemon's loop took the change in (Uplink.Since).
			if s, err := d.client.Status(t.Context()); err == nil && s.Uplink.Since.After(start) {
				loop = append(loop, s.Uplink.Since.Sub(start))
			}
		}
		slices.Sort(times)
		slices.Sort(loop)
		slices.Sort(sys)
		figure(name+"_syscall_p50", ms(sys[len(sys)/2]), "ms")
		if len(loop) > 0 {
			figure(name+"_to_loop_p50", ms(loop[len(loop)/2]), "ms")
		}
		figure(name+"_p50", ms(times[len(times)/2]), "ms")
		figure(name+"_p99", ms(times[(len(times)*99+99)/100-1]), "ms") // nearest rank
		figure(name+"_max", ms(times[len(times)-1]), "ms")
	}
	// Renumbered, as a DHCP client does when the lease's address
	// changes (the new address first, then the old one removed, which
	// promotes the new): "10.99.0.2" becomes "10.99.0.7" and back.
	if out, err := tp.head.Run("sysctl", "-qw", "net.ipv4.conf.eth1.promote_secondaries=1"); err != nil {
		t.Fatalf("sysctl: %v %s", err, out)
	}
	addrs := []string{"10.99.0.2/24", "10.99.0.7/24"}
	measure("lcd_renumber", func(i int) func() {
		must(t, tp.head.AddAddr("eth1", addrs[(i+1)%2]))
		time.Sleep(20 * time.Millisecond) // a secondary: nothing to show
		return func() { must(t, tp.head.DelAddr("eth1", addrs[i%2])) }
	})
	// The address lost and regained: the whole row rewritten
	// ("10.99.0.2" and "waiting for DHCP" differ in every column).
	measure("lcd_row", func(i int) func() {
		if i%2 == 0 {
			return func() { must(t, tp.head.DelAddr("eth1", "10.99.0.2/24")) }
		}
		return func() { must(t, tp.head.AddAddr("eth1", "10.99.0.2/24")) }
	})
}
