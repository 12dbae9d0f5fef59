package main

import (
	"flag"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
)

var footprint = flag.Duration("footprint", 0, "measure the idle daemon's memory and CPU for this long (e.g. 60s); off by default")

// TestFootprint measures what the daemon costs when nothing happens: the
// appliance on emulated hardware (ClusterHAT with four nodes, LCD, LED,
// DHCP, NAT, the status page), with p1 answering probes. Run with
// -footprint=60s; `build.sh footprint` does.
func TestFootprint(t *testing.T) {
	if *footprint == 0 {
		t.Skip("measurement only: run with -footprint=60s")
	}
	if *benchBinary != "" {
		binary = *benchBinary // build.sh footprint: the host build
	}
	tp := newTopo(t, true)
	cfg := tp.simConfig(t)
	text, _ := os.ReadFile(cfg)
	// Production probing cadence, not the tests' fast one.
	text = []byte(strings.NewReplacer(`probe_interval = "200ms"`, `probe_interval = "1s"`, `down_after = "600ms"`, `down_after = "3s"`).Replace(string(text)))
	os.WriteFile(cfg, text, 0o644)
	d := tp.startDaemon(t, cfg)
	if _, errOut, code := run(t, nil, "on", "p1", "--config", cfg); code != 0 {
		t.Fatal(errOut)
	}
	d.waitFor(t, "p1 up", func(s *api.Status) bool { return nodeOf(s, "p1").State == api.NodeUp })
	// The daemon is the last process of `ip netns exec` (it execs).
	pid := d.cmd.Process.Pid
	time.Sleep(5 * time.Second) // settle after start-up
	cpu0 := runTime(t, pid)
	start := time.Now()
	time.Sleep(*footprint)
	elapsed := time.Since(start)
	used := runTime(t, pid) - cpu0
	status, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	var rss, hwm, anon string
	for _, l := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(l, "RssAnon:") {
			anon = strings.TrimSpace(strings.TrimPrefix(l, "RssAnon:"))
		}
		if strings.HasPrefix(l, "VmRSS:") {
			rss = strings.TrimSpace(strings.TrimPrefix(l, "VmRSS:"))
		}
		if strings.HasPrefix(l, "VmHWM:") {
			hwm = strings.TrimSpace(strings.TrimPrefix(l, "VmHWM:"))
		}
	}
	t.Logf("idle for %v: CPU %v (%.3f%% of one core), RSS %s (%s anonymous; peak %s)", elapsed.Round(time.Second), used.Round(time.Millisecond), 100*used.Seconds()/elapsed.Seconds(), rss, anon, hwm)
}

// cpuTicks returns utime+stime of pid in clock ticks.
func cpuTicks(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return ut + st
}
