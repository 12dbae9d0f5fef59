package nat

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goipt "github.com/coreos/go-iptables/iptables"
	"github.com/headnode/headnode/netcfg/change"
	"github.com/headnode/headnode/netcfg/firewall"
	"golang.org/x/time/rate"
)

// The benchmarks run every backend beside the incumbent: the firewall as it
// was before rewrites became one iptables-restore, one iptables process per
// rule through github.com/coreos/go-iptables (incumbentFirewall, below),
// under the Keeper's old 100 ms debounce. Run them with a fixed count, e.g.
//
//	go test ./netcfg/nat -run '^$' -bench . -benchtime 100x

// benchBackends are the backends and the incumbent, by sub-benchmark name.
var benchBackends = []string{"nft", "legacy", "netlink", "incumbent-nft", "incumbent-legacy"}

// benchManager returns a Manager for a sub-benchmark, with the incumbent's
// firewall swapped in for the "incumbent-" ones, and a function that
// counts the processes its firewall has run so far (always 0 for netlink,
// which runs none).
func benchManager(b *testing.B, tp *topo, name string) (*Manager, func() int64) {
	b.Helper()
	backend, incumbent := strings.CutPrefix(name, "incumbent-")
	m := tp.manager(b, backend)
	switch fw := m.fw.(type) {
	case *firewall.IPTablesRunner:
		if incumbent {
			inc, err := newIncumbentFirewall(ipt(backend), m.fw.Backend())
			if err != nil {
				b.Fatal(err)
			}
			m.fw = inc
			return m, inc.execs.Load
		}
		c := fw.IPTables().(*firewall.CountingIPTables)
		return m, c.Execs
	}
	return m, func() int64 { return 0 }
}

// BenchmarkColdApply measures installing everything on a head node where
// nothing of ours exists yet: forwarding, the cluster address and the NAT
// rules, and counts the iptables processes that takes.
func BenchmarkColdApply(b *testing.B) {
	for _, name := range benchBackends {
		b.Run(name, func(b *testing.B) {
			tp := newTopo(b)
			m, execs := benchManager(b, tp, name)
			var n int64
			var times []time.Duration
			for b.Loop() {
				b.StopTimer()
				if _, err := m.Clear(); err != nil {
					b.Fatal(err)
				}
				before := execs()
				b.StartTimer()
				start := time.Now()
				if _, err := m.Apply(); err != nil {
					b.Fatal(err)
				}
				times = append(times, time.Since(start))
				n += execs() - before
			}
			b.ReportMetric(float64(n)/float64(b.N), "execs/op")
			reportPercentiles(b, times)
		})
	}
}

// BenchmarkSteadyCheck measures the check that runs on every firewall event
// and poll when nothing is missing.
func BenchmarkSteadyCheck(b *testing.B) {
	for _, name := range benchBackends {
		b.Run(name, func(b *testing.B) {
			tp := newTopo(b)
			m, execs := benchManager(b, tp, name)
			if _, err := m.Apply(); err != nil {
				b.Fatal(err)
			}
			before := execs()
			for b.Loop() {
				if _, err := m.Apply(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(execs()-before)/float64(b.N), "execs/op")
		})
	}
}

// BenchmarkRepairLatency measures the time from another program's removal
// of our rules, in one process (`iptables -F`, which takes our filter
// chain's rules and the FORWARD jump, or `nft flush ruleset` for netlink),
// to the Keeper having restored them: nftables events on nf_tables, the
// 1 s poll on legacy. The repair rate limit is lifted, since it is there to
// stop a fight with another manager, not to slow a single repair.
func BenchmarkRepairLatency(b *testing.B) {
	for _, name := range benchBackends {
		b.Run(name, func(b *testing.B) {
			backend, incumbent := strings.CutPrefix(name, "incumbent-")
			tp := newTopo(b)
			m, execs := benchManager(b, tp, name)
			o := KeeperOptions{}
			if incumbent {
				o.Debounce = 100 * time.Millisecond
			}
			repaired := make(chan time.Time, 16)
			var reports atomic.Int64
			o.Report = func(r KeeperReport) {
				reports.Add(1)
				if r.Repaired {
					select {
					case repaired <- r.At:
					default:
					}
				}
			}
			k := NewKeeper(m, o)
			k.lim = rate.NewLimiter(rate.Inf, 1)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { k.Run(ctx); close(done) }()
			defer func() { cancel(); <-done }()
			if _, err := k.Apply(ctx); err != nil {
				b.Fatal(err)
			}
			var times []time.Duration
			var n int64
			for b.Loop() {
				b.StopTimer()
				// Let the checks that our own last write set off pass.
				for last := int64(-1); last != reports.Load(); {
					last = reports.Load()
					time.Sleep(150 * time.Millisecond)
				}
				for len(repaired) > 0 {
					<-repaired
				}
				if !m.Backend().Events() {
					// The poll finds the change: tamper at a random
					// phase of it, not always at the same one.
					time.Sleep(time.Duration(rand.Int64N(int64(time.Second))))
				}
				before := execs()
				b.StartTimer()
				// Timed from before the tampering process starts: the
				// change is committed somewhere in its run, and its exit
				// comes milliseconds after, so this bounds the time from
				// the change from above.
				flushed := time.Now()
				if backend == "netlink" {
					tamper(b, tp.head, backend)
				} else {
					must(b, run(tp.head, ipt(backend), "-F"))
				}
				select {
				case at := <-repaired:
					times = append(times, at.Sub(flushed))
				case <-time.After(5 * time.Second):
					b.Fatal("no repair within 5 s")
				}
				n += execs() - before
			}
			b.ReportMetric(float64(n)/float64(b.N), "execs/op")
			reportPercentiles(b, times)
		})
	}
}

func reportPercentiles(b *testing.B, times []time.Duration) {
	if len(times) == 0 {
		return
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	at := func(p float64) float64 {
		i := int(p * float64(len(times)-1))
		return float64(times[i].Microseconds()) / 1000
	}
	b.ReportMetric(at(0.5), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
}

// incumbentFirewall replays what the firewall did before this version,
// for the benchmarks only: one iptables process per call through
// go-iptables (list each chain with -S, create or flush it, append the
// rules one by one, list it again; list each built-in chain and insert the
// jump), with the rules of that version (matched on the uplink, eth1).
type incumbentFirewall struct {
	ipt     *goipt.IPTables
	backend firewall.Backend
	execs   atomic.Int64
}

func newIncumbentFirewall(path string, backend firewall.Backend) (*incumbentFirewall, error) {
	ipt, err := goipt.New(goipt.Path("/usr/sbin/"+path), goipt.Timeout(5))
	if err != nil {
		return nil, err
	}
	return &incumbentFirewall{ipt: ipt, backend: backend}, nil
}

func (f *incumbentFirewall) Backend() firewall.Backend { return f.backend }

func (f *incumbentFirewall) rules(spec firewall.Spec) map[string][][]string {
	s, c, u := spec.Subnet.String(), spec.ClusterInterface, "eth1"
	tag := []string{"-m", "comment", "--comment", firewall.Comment}
	with := func(r ...string) []string {
		n := len(r) - 2
		return append(append(slices.Clone(r[:n]), tag...), r[n:]...)
	}
	return map[string][][]string{
		firewall.FilterChain: {
			with("-s", s, "-i", c, "-o", u, "-j", "ACCEPT"),
			with("-d", s, "-i", u, "-o", c, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"),
			with("-i", u, "-o", c, "-j", "DROP"),
		},
		firewall.NATChain: {with("-s", s, "-o", u, "-j", "MASQUERADE")},
	}
}

var incumbentChains = []struct{ table, chain, builtin string }{
	{"filter", firewall.FilterChain, "FORWARD"},
	{"nat", firewall.NATChain, "POSTROUTING"},
}

func (f *incumbentFirewall) Apply(spec firewall.Spec) ([]change.Change, error) {
	var changes []change.Change
	rules := f.rules(spec)
	for _, oc := range incumbentChains {
		f.execs.Add(1)
		have, err := f.ipt.List(oc.table, oc.chain)
		missing := err != nil
		if missing {
			// It asked the table's chain list what the error meant.
			f.execs.Add(1)
			if _, err := f.ipt.ListChains(oc.table); err != nil {
				return changes, err
			}
		}
		var want []string
		for _, r := range rules[oc.chain] {
			want = append(want, "-A "+oc.chain+" "+strings.Join(r, " "))
		}
		if !missing && slices.Equal(have[1:], want) {
			continue
		}
		f.execs.Add(1)
		if missing {
			err = f.ipt.NewChain(oc.table, oc.chain)
		} else {
			f.execs.Add(1) // -N and -F
			err = f.ipt.ClearChain(oc.table, oc.chain)
		}
		if err != nil {
			return changes, err
		}
		for _, r := range rules[oc.chain] {
			f.execs.Add(1)
			if err := f.ipt.Append(oc.table, oc.chain, r...); err != nil {
				return changes, err
			}
		}
		f.execs.Add(1)
		if _, err := f.ipt.List(oc.table, oc.chain); err != nil {
			return changes, err
		}
		changes = append(changes, change.Rulesf("rewrote %s", oc.chain))
	}
	for _, oc := range incumbentChains {
		f.execs.Add(1)
		lines, err := f.ipt.List(oc.table, oc.builtin)
		if err != nil {
			return changes, err
		}
		if slices.ContainsFunc(lines, func(l string) bool { return strings.HasSuffix(l, "-j "+oc.chain) }) {
			continue
		}
		f.execs.Add(1)
		if err := f.ipt.Insert(oc.table, oc.builtin, 1, "-m", "comment", "--comment", firewall.Comment, "-j", oc.chain); err != nil {
			return changes, err
		}
		changes = append(changes, change.Rulesf("inserted jump to %s", oc.chain))
	}
	return changes, nil
}

func (f *incumbentFirewall) Check(firewall.Spec) (firewall.Status, error) {
	return firewall.Status{}, fmt.Errorf("not part of the benchmarks")
}

func (f *incumbentFirewall) Clear() ([]change.Change, error) {
	for _, oc := range incumbentChains {
		_ = f.ipt.DeleteIfExists(oc.table, oc.builtin, "-m", "comment", "--comment", firewall.Comment, "-j", oc.chain)
		_ = f.ipt.ClearAndDeleteChain(oc.table, oc.chain)
	}
	return nil, nil
}
