package nat

import (
	"context"
	"testing"
	"time"

	"github.com/headnode/headnode/netcfg/firewall"
)

// countingIPTables is the runner under m's firewall, which counts the
// iptables processes it starts.
func countingIPTables(m *Manager) *firewall.CountingIPTables {
	return m.fw.(*firewall.IPTablesRunner).IPTables().(*firewall.CountingIPTables)
}

// BenchmarkColdApply measures installing everything on a head node where
// nothing of ours exists yet: forwarding, the cluster address and the NAT
// rules, and counts the iptables processes that takes.
func BenchmarkColdApply(b *testing.B) {
	for _, backend := range backends {
		b.Run(backend, func(b *testing.B) {
			tp := newTopo(b)
			m := tp.manager(b, backend)
			ipt := countingIPTables(m)
			var execs int64
			for b.Loop() {
				b.StopTimer()
				if _, err := m.Clear(); err != nil {
					b.Fatal(err)
				}
				before := ipt.Execs()
				b.StartTimer()
				if _, err := m.Apply(); err != nil {
					b.Fatal(err)
				}
				execs += ipt.Execs() - before
			}
			b.ReportMetric(float64(execs)/float64(b.N), "iptables-execs/op")
		})
	}
}

// BenchmarkSteadyCheck measures the check that runs on every firewall event
// and poll when nothing is missing.
func BenchmarkSteadyCheck(b *testing.B) {
	tp := newTopo(b)
	m := tp.manager(b, "nft")
	if _, err := m.Apply(); err != nil {
		b.Fatal(err)
	}
	ipt := countingIPTables(m)
	before := ipt.Execs()
	for b.Loop() {
		if _, err := m.Apply(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(ipt.Execs()-before)/float64(b.N), "iptables-execs/op")
}

// BenchmarkRepairLatency measures the time from another program's
// `iptables -F; iptables -t nat -F` to the Keeper having restored our
// rules: nftables events on nf_tables, the 1 s poll on legacy.
func BenchmarkRepairLatency(b *testing.B) {
	for _, backend := range backends {
		b.Run(backend, func(b *testing.B) {
			tp := newTopo(b)
			m := tp.manager(b, backend)
			repaired := make(chan time.Time, 16)
			k := NewKeeper(m, KeeperOptions{Report: func(r KeeperReport) {
				if r.Repaired {
					repaired <- r.At
				}
			}})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { k.Run(ctx); close(done) }()
			defer func() { cancel(); <-done }()
			if _, err := k.Apply(ctx); err != nil {
				b.Fatal(err)
			}
			var total time.Duration
			for b.Loop() {
				b.StopTimer()
				// Stay under the repair rate limit (burst 10, then one
				// a second), which is there to stop a fight with another
				// manager, not to slow a single repair.
				time.Sleep(600 * time.Millisecond)
				b.StartTimer()
				if _, err := tp.head.Run(ipt(backend), "-F"); err != nil {
					b.Fatal(err)
				}
				if _, err := tp.head.Run(ipt(backend), "-t", "nat", "-F"); err != nil {
					b.Fatal(err)
				}
				flushed := time.Now()
				select {
				case at := <-repaired:
					total += at.Sub(flushed)
				case <-time.After(5 * time.Second):
					b.Fatal("no repair within 5 s")
				}
			}
			b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms-to-repair")
		})
	}
}
