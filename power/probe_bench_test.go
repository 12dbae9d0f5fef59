package power_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/headnode/headnode/power"
	"github.com/headnode/headnode/power/probe/probelab"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// nodes1024 puts 1024 node addresses (10.77.4.0-10.77.7.255) in the lab's
// node namespace and returns them.
func nodes1024(b *testing.B, l *probelab.Lab) []netip.Addr {
	var batch strings.Builder
	var addrs []netip.Addr
	for i := range 1024 {
		a := netip.AddrFrom4([4]byte{10, 77, byte(4 + i/256), byte(i % 256)})
		addrs = append(addrs, a)
		fmt.Fprintf(&batch, "addr add %s/32 dev v1\n", a)
	}
	cmd := l.Node.Command("ip", "-batch", "-")
	cmd.Stdin = strings.NewReader(batch.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("ip -batch: %v %s", err, out)
	}
	// Reach them through the node namespace as a gateway: one ARP entry,
	// not 1024 (the neighbour table limit is machine-wide).
	if err := l.Head.Route("10.77.4.0/22", "10.77.0.2"); err != nil {
		b.Fatal(err)
	}
	return addrs
}

// BenchmarkProbeCPU1024 runs the daemon's probe loop over 1024 answering
// nodes, one round a second as configured by default, and reports the
// process CPU time it costs as a percentage of one core. The target is
// under 5 %.
func BenchmarkProbeCPU1024(b *testing.B) {
	l := probelab.New(b)
	addrs := nodes1024(b, l)
	p := l.Prober(b, "icmp")
	// Warm the ARP cache, as a running daemon has it.
	p.Round(context.Background(), addrs, time.Now().Add(time.Second))
	const seconds = 5
	b.ResetTimer()
	var cpu time.Duration
	answered := 0
	for range b.N {
		ctx, cancel := context.WithTimeout(context.Background(), seconds*time.Second-time.Millisecond)
		start := cpuTime()
		power.RunProbes(ctx, p, addrs, time.Second, nil, func(a []bool, _ time.Time) {
			for _, ok := range a {
				if ok {
					answered++
				}
			}
		})
		cpu += cpuTime() - start
		cancel()
	}
	if answered < 1024*seconds*b.N*9/10 {
		b.Fatalf("only %d answers in %d rounds of 1024", answered, seconds*b.N)
	}
	perSecond := cpu / time.Duration(seconds*b.N)
	b.ReportMetric(float64(perSecond)/float64(time.Millisecond), "cpu-ms/s")
	b.ReportMetric(100*float64(perSecond)/float64(time.Second), "%core")
}

// BenchmarkDetectionLatency measures, with the default probe settings
// (ICMP every 1 s, down_after 3 s), the time from a node that stops
// answering to its state becoming "unreachable".
func BenchmarkDetectionLatency(b *testing.B) {
	l := probelab.New(b)
	p := l.Prober(b, "icmp")
	node := netip.MustParseAddr("10.77.1.5")
	var total time.Duration
	for i := range b.N {
		if err := l.Node.AddAddr("v1", node.String()+"/32"); err != nil {
			b.Fatal(err)
		}
		lc := power.Lifecycle{Grace: time.Minute, DownAfter: 3 * time.Second, Probing: true}
		on := true
		lc.SetPowered("p1", &on, time.Now())
		ctx, cancel := context.WithCancel(context.Background())
		var stopped time.Time
		detected := make(chan time.Duration, 1)
		// Stop answering at a different phase of the probe interval each
		// time.
		phase := time.Duration(i%5) * 200 * time.Millisecond
		up := 0
		go power.RunProbes(ctx, p, []netip.Addr{node}, time.Second, nil, func(a []bool, now time.Time) {
			lc.Seen("p1", a[0], now)
			lc.Update(now)
			switch lc.View("p1", now).State {
			case power.StateUp:
				if up++; up == 2 && stopped.IsZero() {
					time.Sleep(phase)
					l.Node.DelAddr("v1", node.String()+"/32")
					stopped = time.Now()
				}
			case power.StateUnreachable:
				select {
				case detected <- now.Sub(stopped):
				default:
				}
			}
		})
		select {
		case d := <-detected:
			total += d
		case <-time.After(15 * time.Second):
			b.Fatal("never detected")
		}
		cancel()
	}
	b.ReportMetric(float64(total/time.Duration(b.N))/float64(time.Millisecond), "ms/detect")
}
