package main

// The DNS benchmark (build.sh bench): from a node namespace, a paced load
// of local-name queries against headnode's DNS server and, in the same
// run, against dnsmasq serving the same zone on the same head namespace;
// latency percentiles, losses, CPU time and memory for each. Off unless
// -dns-bench is given.

import (
	"flag"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
	"github.com/headnode/headnode/netcfg/sandbox"
)

var (
	dnsBench     = flag.Duration("dns-bench", 0, "run TestBenchDNS for this long per server (e.g. 30s); off by default")
	dnsBenchRate = flag.Int("dns-bench-rate", 2000, "queries a second TestBenchDNS sends")
)

// benchNames are the queries, in turn: bare, qualified and PTR, as nodes
// ask them.
var benchNames = []dns.Question{
	{Name: "p1.", Qtype: dns.TypeA, Qclass: dns.ClassINET},
	{Name: "p2.cluster.home.arpa.", Qtype: dns.TypeA, Qclass: dns.ClassINET},
	{Name: "p3.cluster.home.arpa.", Qtype: dns.TypeA, Qclass: dns.ClassINET},
	{Name: "11.50.168.192.in-addr.arpa.", Qtype: dns.TypePTR, Qclass: dns.ClassINET},
	{Name: "p4.cluster.home.arpa.", Qtype: dns.TypeA, Qclass: dns.ClassINET},
}

type benchResult struct {
	server                  string
	sent, answered, wrong   int
	p50, p90, p99, p999, mx time.Duration
	rssStart, rssEnd        int
	rssHalf, rssPeak        int // at half time, and the highest of the second half
	cpu, idleCPU            time.Duration
}

// loadDNS sends rate queries a second from ns to server for d, paced
// (each millisecond sends what is due), and measures each answer's
// latency; an answer later than a second counts as lost.
func loadDNS(t *testing.T, ns *sandbox.NS, server string, rate int, d time.Duration, pid int) benchResult {
	t.Helper()
	var conn net.Conn
	must(t, ns.Do(func() error {
		var err error
		conn, err = net.Dial("udp4", server)
		return err
	}))
	defer conn.Close()
	co := &dns.Conn{Conn: conn, UDPSize: 1232}
	var mu sync.Mutex
	sentAt := map[uint16]time.Time{}
	var lat []time.Duration
	wrong := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			m, err := co.ReadMsg()
			now := time.Now()
			if err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					return
				}
				continue
			}
			mu.Lock()
			at, ok := sentAt[m.Id]
			if ok {
				delete(sentAt, m.Id)
				if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 {
					wrong++
				}
				if l := now.Sub(at); l <= time.Second {
					lat = append(lat, l)
				}
			}
			mu.Unlock()
		}
	}()
	r := benchResult{server: server, rssStart: rssKiB(t, pid, "VmRSS")}
	cpu0 := cpuTicks(t, pid)
	start := time.Now()
	var id uint16
	nextSample := start.Add(time.Second)
	for time.Since(start) < d {
		if now := time.Now(); now.After(nextSample) {
			nextSample = nextSample.Add(time.Second)
			if now.Sub(start) >= d/2 {
				rss := rssKiB(t, pid, "VmRSS")
				if r.rssHalf == 0 {
					r.rssHalf = rss
				}
				r.rssPeak = max(r.rssPeak, rss)
			}
		}
		due := int(time.Since(start) * time.Duration(rate) / time.Second)
		for ; r.sent < due; r.sent++ {
			id++
			q := &dns.Msg{MsgHdr: dns.MsgHdr{Id: id, RecursionDesired: true}, Question: []dns.Question{benchNames[r.sent%len(benchNames)]}}
			mu.Lock()
			sentAt[id] = time.Now()
			mu.Unlock()
			co.WriteMsg(q)
		}
		time.Sleep(time.Millisecond)
	}
	r.cpu = time.Duration(cpuTicks(t, pid)-cpu0) * 10 * time.Millisecond // USER_HZ 100
	conn.SetReadDeadline(time.Now().Add(time.Second))
	<-done
	r.rssEnd = rssKiB(t, pid, "VmRSS")
	mu.Lock()
	defer mu.Unlock()
	r.answered, r.wrong = len(lat), wrong
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(float64(len(lat))*p))]
	}
	r.p50, r.p90, r.p99, r.p999, r.mx = pct(0.5), pct(0.9), pct(0.99), pct(0.999), pct(1)
	return r
}

func TestBenchDNS(t *testing.T) {
	if *dnsBench == 0 {
		t.Skip("a benchmark: run with -dns-bench=30s (build.sh bench)")
	}
	needDNSTools(t)
	tp := newTopo(t, true)
	// The zone: the head and p1-p4. The per-client rate is raised: one
	// node namespace is the whole load. No upstream: only local names.
	nodes := ""
	for n := 1; n <= 4; n++ {
		nodes += fmt.Sprintf("[[nodes]]\nname = \"p%d\"\n", n)
	}
	d := tp.startDaemon(t, tp.config(t, fmt.Sprintf("[dhcp]\nprobe = \"0s\"\n[dns]\nrate = %d\nresolv_conf = [%q]\n%s", 4**dnsBenchRate, filepath.Join(tp.dir, "none"), nodes)))
	d.waitFor(t, "DNS serving", func(s *api.Status) bool { return s.DNS.State == api.DNSServing })
	// The same zone for dnsmasq, on the same head namespace.
	args := []string{"--conf-file=/dev/null", "--port=5300"}
	for n := 1; n <= 4; n++ {
		args = append(args, fmt.Sprintf("--host-record=p%d.cluster.home.arpa,p%d,192.168.50.%d", n, n, 10+n))
	}
	_, dnsmasqPID := dnsmasqProc(t, tp.head, "192.168.50.1", args...)
	servers := []struct {
		name, addr string
		pid        int
	}{{"headnode", "192.168.50.1:53", d.cmd.Process.Pid}, {"dnsmasq", "192.168.50.1:5300", dnsmasqPID}}
	for _, sv := range servers {
		host, port, _ := net.SplitHostPort(sv.addr)
		for _, q := range benchNames {
			args := []string{"@" + host, "-p", port, q.Name, dns.TypeToString[q.Qtype]}
			if got := digShort(t, tp.inside, args...); got != "192.168.50.11" && got != "192.168.50.12" && got != "192.168.50.13" && got != "192.168.50.14" && got != "p1.cluster.home.arpa." {
				t.Fatalf("%s: dig %v: %q", sv.name, args, got)
			}
		}
	}
	var rows []benchResult
	for _, sv := range servers {
		// The server's CPU time idle (the daemon does other work too), a
		// second of warm-up, then the measured run.
		idle0 := cpuTicks(t, sv.pid)
		time.Sleep(5 * time.Second)
		idle := time.Duration(cpuTicks(t, sv.pid)-idle0) * 10 * time.Millisecond * (*dnsBench) / (5 * time.Second)
		loadDNS(t, tp.inside, sv.addr, *dnsBenchRate, time.Second, sv.pid)
		r := loadDNS(t, tp.inside, sv.addr, *dnsBenchRate, *dnsBench, sv.pid)
		r.server, r.idleCPU = sv.name, idle
		rows = append(rows, r)
	}
	t.Logf("dns_bench: %d queries/s for %v from a node namespace, local names (A bare and qualified, PTR)", *dnsBenchRate, *dnsBench)
	t.Logf("dns_bench: %-9s %7s %8s %5s %5s %8s %8s %8s %8s %8s %7s %9s | %-36s", "server", "sent", "answered", "lost", "wrong", "p50", "p90", "p99", "p99.9", "max", "cpu", "idle cpu", "RSS kB: start, half time, peak 2nd half, end")
	for _, r := range rows {
		t.Logf("dns_bench: %-9s %7d %8d %5d %5d %8v %8v %8v %8v %8v %7v %9v | %d, %d, %d, %d", r.server, r.sent, r.answered, r.sent-r.answered, r.wrong,
			r.p50.Round(time.Microsecond), r.p90.Round(time.Microsecond), r.p99.Round(time.Microsecond), r.p999.Round(time.Microsecond), r.mx.Round(time.Microsecond),
			r.cpu, r.idleCPU, r.rssStart, r.rssHalf, r.rssPeak, r.rssEnd)
	}
}
