package dnsd

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

var (
	subnet  = netip.MustParsePrefix("192.168.50.0/24")
	node    = netip.MustParseAddr("192.168.50.11")
	outside = netip.MustParseAddr("10.99.0.1")
)

func newServer(t testing.TB, mod func(*Options)) *Server {
	t.Helper()
	o := Options{Domain: "cluster.home.arpa", Subnet: subnet}
	if mod != nil {
		mod(&o)
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	s.SetRecords([]Record{
		{Name: "pi", Addr: netip.MustParseAddr("192.168.50.1")},
		{Name: "p1", Addr: node},
		{Name: "nas", Addr: netip.MustParseAddr("192.168.50.5")},
		{Name: "P1", Addr: netip.MustParseAddr("192.168.50.99")}, // a later claim of p1: ignored
		{Name: "bad_name", Addr: netip.MustParseAddr("192.168.50.98")},
	})
	return s
}

func query(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	return m
}

func ask(t *testing.T, s *Server, name string, qtype uint16) *dns.Msg {
	t.Helper()
	r := s.Answer(context.Background(), query(name, qtype), node, false)
	if r == nil {
		t.Fatalf("%s %s: no answer", name, dns.TypeToString[qtype])
	}
	return r
}

func answerText(r *dns.Msg) string {
	var out []string
	for _, rr := range r.Answer {
		f := strings.Fields(rr.String())
		out = append(out, f[3]+" "+f[4])
	}
	return dns.RcodeToString[r.Rcode] + " " + strings.Join(out, ",")
}

func TestLocalNames(t *testing.T) {
	s := newServer(t, nil)
	for _, tc := range []struct {
		name  string
		qtype uint16
		want  string
	}{
		{"p1", dns.TypeA, "NOERROR A 192.168.50.11"},
		{"P1.Cluster.Home.Arpa", dns.TypeA, "NOERROR A 192.168.50.11"},
		{"pi.cluster.home.arpa", dns.TypeA, "NOERROR A 192.168.50.1"},
		{"p1.cluster.home.arpa", dns.TypeAAAA, "NOERROR "}, // the name exists, no IPv6 address
		{"p1.cluster.home.arpa", dns.TypeANY, "NOERROR A 192.168.50.11"},
		{"p7.cluster.home.arpa", dns.TypeA, "NXDOMAIN "},
		{"p7", dns.TypeA, "NXDOMAIN "}, // bare names never go upstream
		{"x.p1.cluster.home.arpa", dns.TypeA, "NXDOMAIN "},
		{"bad_name.cluster.home.arpa", dns.TypeA, "NXDOMAIN "},
		{"cluster.home.arpa", dns.TypeA, "NOERROR "},
		{"11.50.168.192.in-addr.arpa", dns.TypePTR, "NOERROR PTR p1.cluster.home.arpa."},
		{"5.50.168.192.in-addr.arpa", dns.TypePTR, "NOERROR PTR nas.cluster.home.arpa."},
		{"99.50.168.192.in-addr.arpa", dns.TypePTR, "NXDOMAIN "},
		{"x.11.50.168.192.in-addr.arpa", dns.TypePTR, "NXDOMAIN "},
	} {
		r := ask(t, s, tc.name, tc.qtype)
		if got := answerText(r); got != tc.want {
			t.Errorf("%s %s: %q, want %q", tc.name, dns.TypeToString[tc.qtype], got, tc.want)
		}
		if !r.Authoritative || !r.RecursionAvailable || r.Id == 0 {
			t.Errorf("%s: flags %+v", tc.name, r.MsgHdr)
		}
		if len(r.Answer) == 0 && (len(r.Ns) != 1 || r.Ns[0].Header().Rrtype != dns.TypeSOA || r.Ns[0].Header().Ttl != 5) {
			t.Errorf("%s: negative answer without the zone's SOA (5 s): %v", tc.name, r.Ns)
		}
	}
	if got := s.Stats().Queries[OutcomeLocal]; got != 14 {
		t.Errorf("local queries counted %d, want 14", got)
	}
}

// A new set of names is answered by the very next query.
func TestRecordsReplacedAtOnce(t *testing.T) {
	s := newServer(t, nil)
	s.SetRecords([]Record{{Name: "p1", Addr: netip.MustParseAddr("192.168.50.21")}, {Name: "builder", Addr: netip.MustParseAddr("192.168.50.130")}})
	if got := answerText(ask(t, s, "p1", dns.TypeA)); got != "NOERROR A 192.168.50.21" {
		t.Errorf("p1 after the change: %s", got)
	}
	if got := answerText(ask(t, s, "builder.cluster.home.arpa", dns.TypeA)); got != "NOERROR A 192.168.50.130" {
		t.Errorf("builder: %s", got)
	}
	if got := answerText(ask(t, s, "nas", dns.TypeA)); got != "NXDOMAIN " {
		t.Errorf("nas, gone: %s", got)
	}
}

// Strangers are refused, and over their rate get nothing at all; our
// clients over their rate get nothing either.
func TestRefusalAndRateLimit(t *testing.T) {
	s := newServer(t, func(o *Options) { o.Rate, o.Burst = 1, 3 })
	for i := range 5 {
		r := s.Answer(context.Background(), query("p1", dns.TypeA), outside, false)
		if i < 3 && (r == nil || r.Rcode != dns.RcodeRefused || len(r.Answer) != 0) {
			t.Errorf("stranger's query %d: %v", i, r)
		}
		if i >= 3 && r != nil {
			t.Errorf("stranger over the rate got an answer: %v", r)
		}
	}
	for i := range 5 {
		r := s.Answer(context.Background(), query("p1", dns.TypeA), node, false)
		if (i < 3) != (r != nil) {
			t.Errorf("node query %d: %v", i, r)
		}
	}
	if r := s.Answer(context.Background(), query("p1", dns.TypeA), netip.MustParseAddr("127.0.0.1"), false); r == nil || r.Rcode != dns.RcodeSuccess {
		t.Errorf("loopback: %v", r)
	}
	st := s.Stats().Queries
	if st[OutcomeRefused] != 5 || st[OutcomeRateLimited] != 2 {
		t.Errorf("counts %v", st)
	}
}

func TestBadQueries(t *testing.T) {
	s := newServer(t, nil)
	two := query("p1", dns.TypeA)
	two.Question = append(two.Question, two.Question[0])
	notify := query("p1", dns.TypeSOA)
	notify.Opcode = dns.OpcodeNotify
	chaos := query("version.bind", dns.TypeTXT)
	chaos.Question[0].Qclass = dns.ClassCHAOS
	axfr := query("example.org", dns.TypeAXFR)
	anyq := query("example.org", dns.TypeANY)
	resp := query("p1", dns.TypeA)
	resp.Response = true
	for _, tc := range []struct {
		q    *dns.Msg
		want string
	}{
		{two, "FORMERR"}, {notify, "NOTIMP"}, {chaos, "NOTIMP"}, {axfr, "REFUSED"}, {anyq, "NOERROR"}, {resp, ""},
	} {
		r := s.Answer(context.Background(), tc.q, node, false)
		got := ""
		if r != nil {
			got = dns.RcodeToString[r.Rcode]
		}
		if got != tc.want {
			t.Errorf("%v: %s, want %s", tc.q.Question, got, tc.want)
		}
	}
	// ANY for a forwarded name: RFC 8482's HINFO, without asking anyone.
	r := s.Answer(context.Background(), anyq, node, false)
	if len(r.Answer) != 1 || r.Answer[0].(*dns.HINFO).Cpu != "RFC8482" {
		t.Errorf("ANY: %v", r.Answer)
	}
}

// upstream is a real DNS server on loopback whose answers the tests set.
type upstream struct {
	addr    netip.AddrPort
	queries atomic.Int64
}

func startUpstream(t *testing.T, h func(w dns.ResponseWriter, r *dns.Msg)) *upstream {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp4", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	u := &upstream{addr: netip.MustParseAddrPort(pc.LocalAddr().String())}
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) { u.queries.Add(1); h(w, r) })
	for _, s := range []*dns.Server{{PacketConn: pc, Handler: handler}, {Listener: l, Handler: handler}} {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		go s.ActivateAndServe()
		<-started
		t.Cleanup(func() { s.Shutdown() })
	}
	return u
}

// answerWith answers every A query with n addresses and the given TTL.
func answerWith(n int, ttl uint32) func(w dns.ResponseWriter, r *dns.Msg) {
	return func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		for i := range n {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: ttl}, A: net.IPv4(10, 0, byte(i/256), byte(i%256))})
		}
		if _, tcp := w.RemoteAddr().(*net.TCPAddr); !tcp {
			size := dns.MinMsgSize
			if o := r.IsEdns0(); o != nil {
				size = int(o.UDPSize())
			}
			m.Truncate(size)
		}
		w.WriteMsg(m)
	}
}

func TestForwardAndCache(t *testing.T) {
	u := startUpstream(t, answerWith(1, 300))
	s := newServer(t, nil)
	s.SetUpstreams([]netip.AddrPort{u.addr})
	r := ask(t, s, "www.example.org", dns.TypeA)
	if got := answerText(r); got != "NOERROR A 10.0.0.0" || r.Authoritative || !r.RecursionAvailable {
		t.Fatalf("forwarded: %s %+v", got, r.MsgHdr)
	}
	r2 := ask(t, s, "WWW.example.org", dns.TypeA)
	if got := answerText(r2); got != "NOERROR A 10.0.0.0" || u.queries.Load() != 1 || r2.Question[0].Name != "WWW.example.org." {
		t.Errorf("second query: %s, upstream asked %d times, question %v", got, u.queries.Load(), r2.Question)
	}
	st := s.Stats()
	if st.Queries[OutcomeUpstream] != 1 || st.Queries[OutcomeCache] != 1 || st.Cache.Entries != 1 {
		t.Errorf("stats %+v", st)
	}
	// Other upstreams (a move to another network): the cache starts over.
	u2 := startUpstream(t, answerWith(1, 300))
	if !s.SetUpstreams([]netip.AddrPort{u2.addr}) || s.Stats().Cache.Entries != 0 {
		t.Error("new upstreams did not empty the cache")
	}
	ask(t, s, "www.example.org", dns.TypeA)
	if u2.queries.Load() != 1 {
		t.Errorf("the new upstream was asked %d times", u2.queries.Load())
	}
}

// TTLs count down and expire; they are capped at MaxTTL.
func TestCacheHonoursTTL(t *testing.T) {
	c := newCache(2, time.Hour)
	now := time.Now()
	m := new(dns.Msg)
	m.SetQuestion("a.example.", dns.TypeA)
	m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "a.example.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 10}, A: net.IPv4(1, 2, 3, 4)}}
	k := keyOf(m.Question[0], false, false)
	c.put(k, m, now)
	if got := c.get(k, now.Add(4*time.Second)); got == nil || got.Answer[0].Header().Ttl != 6 {
		t.Errorf("after 4 s: %v", got)
	}
	if got := c.get(k, now.Add(10*time.Second)); got != nil {
		t.Errorf("after 10 s still cached: %v", got)
	}
	m.Answer[0].Header().Ttl = 86400 * 7
	c.put(k, m, now)
	if c.get(k, now.Add(time.Hour)) != nil {
		t.Error("kept longer than MaxTTL")
	}
	// Bounded: the least recently used goes.
	for i := range 3 {
		m := m.Copy()
		m.Question[0].Name = fmt.Sprintf("n%d.example.", i)
		c.put(keyOf(m.Question[0], false, false), m, now)
	}
	if st := c.stats(); st.Entries != 2 {
		t.Errorf("entries %d, want 2", st.Entries)
	}
	// SERVFAIL is not kept; NXDOMAIN is, for the SOA's minimum.
	sf := m.Copy()
	sf.Rcode = dns.RcodeServerFailure
	sf.Question[0].Name = "sf.example."
	c.put(keyOf(sf.Question[0], false, false), sf, now)
	if c.get(keyOf(sf.Question[0], false, false), now) != nil {
		t.Error("SERVFAIL cached")
	}
	nx := new(dns.Msg)
	nx.SetQuestion("nx.example.", dns.TypeA)
	nx.Rcode = dns.RcodeNameError
	nx.Ns = []dns.RR{&dns.SOA{Hdr: dns.RR_Header{Name: "example.", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 3600}, Minttl: 30}}
	nk := keyOf(nx.Question[0], false, false)
	c.put(nk, nx, now)
	if c.get(nk, now.Add(29*time.Second)) == nil || c.get(nk, now.Add(31*time.Second)) != nil {
		t.Error("NXDOMAIN not kept for the SOA minimum of 30 s")
	}
}

// A dead upstream gives SERVFAIL within the timeout, and the next one is
// tried; with a live one second, the answer comes from it.
func TestUpstreamFailureIsQuick(t *testing.T) {
	dead, err := net.ListenPacket("udp4", "127.0.0.1:0") // never answers
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	s := newServer(t, func(o *Options) { o.Timeout = 600 * time.Millisecond })
	s.SetUpstreams([]netip.AddrPort{netip.MustParseAddrPort(dead.LocalAddr().String())})
	start := time.Now()
	r := ask(t, s, "www.example.org", dns.TypeA)
	took := time.Since(start)
	if r.Rcode != dns.RcodeServerFailure || took > time.Second {
		t.Errorf("dead upstream: %s after %v", dns.RcodeToString[r.Rcode], took)
	}
	t.Logf("SERVFAIL after %v with a dead upstream", took.Round(time.Millisecond))
	s.SetUpstreams(nil)
	if r := ask(t, s, "www.example.org", dns.TypeA); r.Rcode != dns.RcodeServerFailure {
		t.Errorf("no upstream: %s", dns.RcodeToString[r.Rcode])
	}
	u := startUpstream(t, answerWith(1, 60))
	s.SetUpstreams([]netip.AddrPort{netip.MustParseAddrPort(dead.LocalAddr().String()), u.addr})
	if got := answerText(ask(t, s, "www.example.org", dns.TypeA)); got != "NOERROR A 10.0.0.0" {
		t.Errorf("dead then live: %s", got)
	}
	if st := s.Stats(); st.Queries[OutcomeServfail] != 2 || st.UpstreamErrors < 2 {
		t.Errorf("stats %+v", st)
	}
}

// A big upstream answer: fetched over TCP when the upstream truncates,
// truncated with TC for a UDP client without EDNS (which then asks over
// TCP and gets it all).
func TestTruncationAndTCP(t *testing.T) {
	u := startUpstream(t, answerWith(100, 300))
	s := newServer(t, nil)
	s.SetUpstreams([]netip.AddrPort{u.addr})
	r := ask(t, s, "big.example.org", dns.TypeA)
	if !r.Truncated || r.Len() > dns.MinMsgSize {
		t.Errorf("UDP answer: TC %v, %d bytes", r.Truncated, r.Len())
	}
	r = s.Answer(context.Background(), query("big.example.org", dns.TypeA), node, true)
	if r.Truncated || len(r.Answer) != 100 {
		t.Errorf("TCP answer: TC %v, %d records", r.Truncated, len(r.Answer))
	}
	e := query("big.example.org", dns.TypeA)
	e.SetEdns0(1232, false)
	r = s.Answer(context.Background(), e, node, false)
	if r.Len() > 1232 || r.IsEdns0() == nil {
		t.Errorf("EDNS answer: %d bytes, OPT %v", r.Len(), r.IsEdns0())
	}
}
