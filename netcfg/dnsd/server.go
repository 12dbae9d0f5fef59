package dnsd

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/time/rate"
)

// Options configures a Server.
type Options struct {
	// Domain is the local domain, e.g. "cluster.home.arpa".
	Domain string
	// Subnet is the cluster subnet: its clients are answered (with
	// loopback's), and its addresses' PTR records are local.
	Subnet netip.Prefix
	// Rate and Burst bound the queries one client (address) may make a
	// second; more are dropped unanswered.
	Rate  float64
	Burst int
	// CacheSize bounds the cached upstream answers; MaxTTL bounds how long
	// one is kept.
	CacheSize int
	MaxTTL    time.Duration
	// Timeout bounds one forwarded query over all upstreams: past it the
	// client gets SERVFAIL.
	Timeout time.Duration
	// MaxForwards bounds the queries waiting for an upstream at once; a
	// query over it gets SERVFAIL at once.
	MaxForwards int
	// LocalTTL is the TTL of local answers, NegativeTTL that of local
	// NXDOMAIN and no-data answers.
	LocalTTL, NegativeTTL time.Duration
	Log                   *slog.Logger
}

// DefaultOpts holds the defaults for zero fields of Options.
var DefaultOpts = Options{
	Rate: 500, Burst: 1000,
	CacheSize: 4096, MaxTTL: time.Hour,
	Timeout: 1500 * time.Millisecond, MaxForwards: 128,
	LocalTTL: 60 * time.Second, NegativeTTL: 5 * time.Second,
}

func (o *Options) withDefaults() {
	d := DefaultOpts
	if o.Rate == 0 {
		o.Rate = d.Rate
	}
	if o.Burst == 0 {
		o.Burst = max(d.Burst, int(2*o.Rate))
	}
	if o.CacheSize == 0 {
		o.CacheSize = d.CacheSize
	}
	if o.MaxTTL == 0 {
		o.MaxTTL = d.MaxTTL
	}
	if o.Timeout == 0 {
		o.Timeout = d.Timeout
	}
	if o.MaxForwards == 0 {
		o.MaxForwards = d.MaxForwards
	}
	if o.LocalTTL == 0 {
		o.LocalTTL = d.LocalTTL
	}
	if o.NegativeTTL == 0 {
		o.NegativeTTL = d.NegativeTTL
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

// Outcomes of a query, the label of the query counter.
const (
	OutcomeLocal       = "local"        // answered from the local names (also NXDOMAIN there)
	OutcomeCache       = "cache"        // answered from the cache
	OutcomeUpstream    = "upstream"     // forwarded and answered
	OutcomeServfail    = "servfail"     // no upstream answered in time, or none is known
	OutcomeRefused     = "refused"      // a client outside the cluster subnet and loopback
	OutcomeRateLimited = "rate-limited" // over the client's rate; dropped
	OutcomeMalformed   = "malformed"    // not a DNS query (FORMERR, or dropped)
	OutcomeNotImp      = "not-implemented"
)

// Outcomes lists every outcome, for metrics that show zeros too.
var Outcomes = []string{OutcomeLocal, OutcomeCache, OutcomeUpstream, OutcomeServfail, OutcomeRefused, OutcomeRateLimited, OutcomeMalformed, OutcomeNotImp}

// Server answers DNS queries. It is safe for concurrent use: the library
// serves each UDP packet and TCP connection on its own goroutine.
type Server struct {
	o         Options
	zone      atomic.Pointer[zone]
	cache     *cache
	upstreams atomic.Pointer[[]netip.AddrPort]
	forwards  chan struct{} // semaphore of MaxForwards
	client    *dns.Client
	tcpClient *dns.Client

	limMu    sync.Mutex
	limiters map[netip.Addr]*rate.Limiter

	counts         [8]atomic.Int64 // by index in Outcomes
	upstreamErrors atomic.Int64
	next           atomic.Uint32 // the upstream to ask first: the last that answered
}

// maxClients bounds the per-client limiters kept; past it the table
// starts over (a cluster has far fewer machines).
const maxClients = 4096

// New returns a server with no local names and no upstreams.
func New(o Options) (*Server, error) {
	o.withDefaults()
	if why := ValidDomain(o.Domain); why != "" {
		return nil, errors.New("domain " + o.Domain + ": " + why)
	}
	if !o.Subnet.IsValid() || !o.Subnet.Addr().Is4() {
		return nil, errors.New("the cluster subnet is not an IPv4 prefix")
	}
	s := &Server{
		o:         o,
		cache:     newCache(o.CacheSize, o.MaxTTL),
		forwards:  make(chan struct{}, o.MaxForwards),
		client:    &dns.Client{Net: "udp", UDPSize: 1232},
		tcpClient: &dns.Client{Net: "tcp"},
		limiters:  map[netip.Addr]*rate.Limiter{},
	}
	s.zone.Store(newZone(o.Domain, o.Subnet, nil))
	s.upstreams.Store(&[]netip.AddrPort{})
	return s, nil
}

// Domain is the local domain, without the final dot.
func (s *Server) Domain() string { return strings.TrimSuffix(s.zone.Load().domain, ".") }

// SetRecords replaces the local names. Queries see the new set at once.
func (s *Server) SetRecords(recs []Record) {
	z := s.zone.Load()
	if z.same(recs) {
		return
	}
	s.zone.Store(newZone(z.domain, z.subnet, recs))
}

// Records returns the local names.
func (s *Server) Records() []Record { return slices.Clone(s.zone.Load().records) }

// SetUpstreams sets the servers forwarded to, in order of preference. A
// change empties the cache and reports true.
func (s *Server) SetUpstreams(ups []netip.AddrPort) bool {
	if slices.Equal(*s.upstreams.Load(), ups) {
		return false
	}
	ups = slices.Clone(ups)
	s.upstreams.Store(&ups)
	s.next.Store(0)
	s.cache.flush()
	return true
}

// Upstreams returns the servers forwarded to.
func (s *Server) Upstreams() []netip.AddrPort { return slices.Clone(*s.upstreams.Load()) }

// Stats counts what the server did.
type Stats struct {
	Queries        map[string]int64 `json:"queries"`
	UpstreamErrors int64            `json:"upstream_errors"`
	Cache          CacheStats       `json:"cache"`
	Records        int              `json:"records"`
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	st := Stats{Queries: map[string]int64{}, UpstreamErrors: s.upstreamErrors.Load(), Cache: s.cache.stats(), Records: len(s.zone.Load().records)}
	for i, o := range Outcomes {
		st.Queries[o] = s.counts[i].Load()
	}
	return st
}

func (s *Server) count(outcome string) {
	s.counts[slices.Index(Outcomes, outcome)].Add(1)
}

// allowed reports whether a may be answered at all: loopback, or a host
// of the cluster subnet.
func (s *Server) allowed(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsLoopback() || s.o.Subnet.Contains(a)
}

// overRate reports whether client a is over its rate now.
func (s *Server) overRate(a netip.Addr) bool {
	s.limMu.Lock()
	defer s.limMu.Unlock()
	l, ok := s.limiters[a]
	if !ok {
		if len(s.limiters) >= maxClients {
			clear(s.limiters)
		}
		l = rate.NewLimiter(rate.Limit(s.o.Rate), s.o.Burst)
		s.limiters[a] = l
	}
	return !l.Allow()
}

// ServeDNS answers one query (dns.Handler).
func (s *Server) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	client, tcp := remote(w.RemoteAddr())
	resp := s.Answer(context.Background(), req, client, tcp)
	if resp == nil {
		return // dropped: nothing is sent
	}
	if err := w.WriteMsg(resp); err != nil {
		s.o.Log.Debug("DNS answer not sent", "client", client, "err", err)
	}
}

func remote(a net.Addr) (netip.Addr, bool) {
	switch a := a.(type) {
	case *net.UDPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap(), false
	case *net.TCPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap(), true
	}
	return netip.Addr{}, false
}

// Answer returns the answer to req from client, or nil when nothing is to
// be sent. tcp says the query came over TCP (no truncation).
func (s *Server) Answer(ctx context.Context, req *dns.Msg, client netip.Addr, tcp bool) *dns.Msg {
	if !s.allowed(client) {
		// Never an open resolver: a stranger learns nothing but that we
		// will not answer it. Refusals are rate limited like answers, so
		// they cannot be used to reflect traffic either.
		s.count(OutcomeRefused)
		if s.overRate(client) {
			return nil
		}
		return reply(req, dns.RcodeRefused)
	}
	if s.overRate(client) {
		s.count(OutcomeRateLimited)
		return nil
	}
	if req.Response || len(req.Question) != 1 {
		s.count(OutcomeMalformed)
		if req.Response {
			return nil
		}
		return reply(req, dns.RcodeFormatError)
	}
	if req.Opcode != dns.OpcodeQuery {
		s.count(OutcomeNotImp)
		return reply(req, dns.RcodeNotImplemented)
	}
	q := req.Question[0]
	size := dns.MaxMsgSize
	opt := req.IsEdns0()
	if !tcp {
		size = dns.MinMsgSize
		if opt != nil {
			size = min(max(int(opt.UDPSize()), dns.MinMsgSize), 1232)
		}
	}
	var resp *dns.Msg
	switch {
	case q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY:
		s.count(OutcomeNotImp)
		resp = reply(req, dns.RcodeNotImplemented)
	case s.zone.Load().local(strings.ToLower(q.Name)):
		s.count(OutcomeLocal)
		resp = s.local(req, q)
	case q.Qtype == dns.TypeANY:
		// RFC 8482 4.2: a synthesized HINFO instead of everything.
		s.count(OutcomeLocal)
		resp = reply(req, dns.RcodeSuccess)
		resp.Answer = []dns.RR{&dns.HINFO{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeHINFO, Class: dns.ClassINET, Ttl: 3600}, Cpu: "RFC8482"}}
	case q.Qtype == dns.TypeAXFR || q.Qtype == dns.TypeIXFR:
		s.count(OutcomeNotImp)
		resp = reply(req, dns.RcodeRefused)
	default:
		resp = s.forward(ctx, req, q, opt)
	}
	resp.Compress = true
	if opt != nil {
		resp.SetEdns0(1232, opt.Do())
	}
	resp.Truncate(size)
	return resp
}

func reply(req *dns.Msg, rcode int) *dns.Msg {
	m := new(dns.Msg)
	m.SetRcode(req, rcode)
	m.RecursionAvailable = true
	m.Answer, m.Ns, m.Extra = nil, nil, nil
	return m
}

// local answers from the local names, authoritatively.
func (s *Server) local(req *dns.Msg, q dns.Question) *dns.Msg {
	z := s.zone.Load()
	ans, exists := z.lookup(q, uint32(s.o.LocalTTL/time.Second))
	rcode := dns.RcodeSuccess
	if !exists {
		rcode = dns.RcodeNameError
	}
	m := reply(req, rcode)
	m.Authoritative = true
	m.Answer = ans
	if len(ans) == 0 {
		m.Ns = []dns.RR{z.soa(q.Name, uint32(s.o.NegativeTTL/time.Second))}
	}
	return m
}

// forward answers from the cache, else from the first upstream that
// answers within the timeout, else with SERVFAIL.
func (s *Server) forward(ctx context.Context, req *dns.Msg, q dns.Question, opt *dns.OPT) *dns.Msg {
	do := opt != nil && opt.Do()
	key := keyOf(q, do, req.CheckingDisabled)
	now := time.Now()
	if m := s.cache.get(key, now); m != nil {
		s.count(OutcomeCache)
		return fromUpstream(req, m)
	}
	ups := *s.upstreams.Load()
	if len(ups) == 0 {
		s.count(OutcomeServfail)
		return reply(req, dns.RcodeServerFailure)
	}
	select {
	case s.forwards <- struct{}{}:
		defer func() { <-s.forwards }()
	default:
		s.count(OutcomeServfail)
		return reply(req, dns.RcodeServerFailure)
	}
	ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	up := new(dns.Msg)
	up.SetQuestion(q.Name, q.Qtype)
	up.Question[0].Qclass = q.Qclass
	up.RecursionDesired = true
	up.CheckingDisabled = req.CheckingDisabled
	up.SetEdns0(1232, do)
	// Each upstream gets a share of what is left of the timeout, the last
	// one all of it, starting with the one that answered last.
	first := int(s.next.Load()) % len(ups)
	for i := range ups {
		idx := (first + i) % len(ups)
		left := time.Until(deadlineOf(ctx))
		if left <= 0 {
			break
		}
		per := left / time.Duration(len(ups)-i)
		m, err := s.exchange(ctx, up, ups[idx], per)
		if err != nil {
			s.upstreamErrors.Add(1)
			s.o.Log.Debug("upstream DNS server did not answer", "server", ups[idx], "name", q.Name, "err", err)
			continue
		}
		if m.Rcode == dns.RcodeServerFailure || m.Rcode == dns.RcodeRefused {
			s.upstreamErrors.Add(1)
			continue
		}
		s.next.Store(uint32(idx))
		s.cache.put(key, m, now)
		s.count(OutcomeUpstream)
		return fromUpstream(req, m)
	}
	s.count(OutcomeServfail)
	return reply(req, dns.RcodeServerFailure)
}

func deadlineOf(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

// exchange asks one upstream, over TCP when the UDP answer was truncated.
func (s *Server) exchange(ctx context.Context, q *dns.Msg, to netip.AddrPort, timeout time.Duration) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	q = q.Copy()
	q.Id = dns.Id()
	m, _, err := s.client.ExchangeContext(ctx, q, to.String())
	if err == nil && m.Truncated {
		m, _, err = s.tcpClient.ExchangeContext(ctx, q, to.String())
	}
	return m, err
}

// fromUpstream makes an upstream (or cached) answer the client's: its ID
// and question spelling, and no OPT of the upstream's.
func fromUpstream(req, m *dns.Msg) *dns.Msg {
	out := m.Copy()
	out.Id = req.Id
	out.Question = slices.Clone(req.Question)
	out.RecursionDesired = req.RecursionDesired
	out.RecursionAvailable = true
	out.Authoritative = false
	out.Extra = slices.DeleteFunc(out.Extra, func(rr dns.RR) bool { return rr.Header().Rrtype == dns.TypeOPT })
	return out
}
