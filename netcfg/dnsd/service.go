package dnsd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"

	"github.com/headnode/headnode/hw/wake"
)

// Service states.
const (
	StateServing = "serving" // answering on the cluster address (and loopback)
	StateWaiting = "waiting" // the cluster interface or its address is not there yet
	StateFailed  = "failed"  // a socket could not be opened; retried
)

// Target is the cluster interface as last seen, as for the DHCP service.
type Target struct {
	// Index is the interface's ifindex; 0 when it does not exist. A new
	// index re-opens the cluster sockets, which are bound to the device.
	Index      int
	HasAddress bool
}

// ServiceOptions configures a Service.
type ServiceOptions struct {
	// Interface and Address are where the nodes reach the server: the
	// cluster interface and the head's address on it. The sockets are
	// bound to both, so nothing arriving on another interface (the
	// uplink) reaches them, whatever its destination address.
	Interface string
	Address   netip.Addr
	// Loopback is the head's own listening address ("127.0.1.53"); the
	// zero value listens on none.
	Loopback netip.Addr
	// Port is 53 unless a test says otherwise.
	Port uint16
	// Upstreams returns the resolvers to forward to; called every
	// UpstreamRefresh and on Refresh.
	Upstreams       func() []netip.AddrPort
	UpstreamRefresh time.Duration
	// Report receives the status on every change, at most once a second
	// for counters alone.
	Report func(Status)
	Log    *slog.Logger
}

// Status is a Service's report.
type Status struct {
	State     string
	Reason    string
	Domain    string
	Listening []string
	Upstreams []netip.AddrPort
	Stats     Stats
}

// Service runs a Server's sockets as the cluster interface comes and goes
// and keeps its upstreams following the uplink.
type Service struct {
	srv     *Server
	o       ServiceOptions
	targets chan Target
	refresh chan struct{}

	mu        sync.Mutex
	state     string
	why       string
	listening []string
}

// NewService returns a service for srv; Run starts it.
func NewService(srv *Server, o ServiceOptions) *Service {
	if o.Port == 0 {
		o.Port = 53
	}
	if o.UpstreamRefresh == 0 {
		o.UpstreamRefresh = time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Report == nil {
		o.Report = func(Status) {}
	}
	return &Service{srv: srv, o: o, targets: make(chan Target, 1), refresh: make(chan struct{}, 1), state: StateWaiting}
}

// SetTarget tells the service about the cluster interface. It never
// blocks; only the latest target counts.
func (sv *Service) SetTarget(t Target) {
	for {
		select {
		case sv.targets <- t:
			return
		default:
			select {
			case <-sv.targets:
			default:
			}
		}
	}
}

// Refresh has the upstreams read again now (the uplink changed).
func (sv *Service) Refresh() {
	select {
	case sv.refresh <- struct{}{}:
	default:
	}
}

// Status returns the current status.
func (sv *Service) Status() Status {
	sv.mu.Lock()
	st := Status{State: sv.state, Reason: sv.why, Listening: slices.Clone(sv.listening)}
	sv.mu.Unlock()
	st.Domain = sv.srv.Domain()
	st.Upstreams = sv.srv.Upstreams()
	st.Stats = sv.srv.Stats()
	return st
}

func (sv *Service) set(state, why string, listening []string) {
	sv.mu.Lock()
	sv.state, sv.why, sv.listening = state, why, listening
	sv.mu.Unlock()
}

// Run serves until ctx ends; every socket is closed when it returns.
func (sv *Service) Run(ctx context.Context) {
	report := func() { sv.o.Report(sv.Status()) }
	sv.refreshUpstreams()
	var lo *listeners
	if sv.o.Loopback.IsValid() {
		var err error
		if lo, err = sv.listen(netip.AddrPortFrom(sv.o.Loopback, sv.o.Port), ""); err != nil {
			sv.o.Log.Error("DNS server not listening on loopback", "address", sv.o.Loopback, "err", err)
		}
	}
	defer func() { lo.close() }()
	var cl *listeners
	defer func() { cl.close() }()
	var cur Target
	retry := time.NewTimer(0)
	retry.Stop()
	names := func() []string {
		var out []string
		for _, l := range []*listeners{cl, lo} {
			if l != nil {
				out = append(out, l.addr.String())
			}
		}
		return out
	}
	open := func() {
		cl.close()
		cl = nil
		if cur.Index == 0 || !cur.HasAddress {
			why := fmt.Sprintf("waiting for %s on %s", sv.o.Address, sv.o.Interface)
			if cur.Index == 0 {
				why = fmt.Sprintf("interface %s does not exist yet", sv.o.Interface)
			}
			sv.set(StateWaiting, why, names())
			return
		}
		l, err := sv.listen(netip.AddrPortFrom(sv.o.Address, sv.o.Port), sv.o.Interface)
		if err != nil {
			if errors.Is(err, syscall.EADDRINUSE) {
				err = fmt.Errorf("%w (another DNS server, such as dnsmasq, runs on this machine)", err)
			}
			sv.o.Log.Error("DNS server not running; retrying in 5s", "address", sv.o.Address, "err", err)
			sv.set(StateFailed, err.Error(), names())
			retry.Reset(5 * time.Second)
			return
		}
		cl = l
		sv.o.Log.Info("DNS server running", "interface", sv.o.Interface, "address", sv.o.Address, "domain", sv.srv.Domain())
		sv.set(StateServing, "", names())
	}
	open()
	report()
	tick := wake.NewTicker(sv.o.UpstreamRefresh)
	defer tick.Stop()
	counters := wake.NewTicker(time.Second)
	defer counters.Stop()
	var reported Stats
	for {
		select {
		case <-ctx.Done():
			return
		case t := <-sv.targets:
			if t == cur && (cl != nil || sv.state == StateFailed) {
				continue
			}
			cur = t
			open()
			report()
		case <-retry.C:
			open()
			report()
		case <-sv.refresh:
			if sv.refreshUpstreams() {
				report()
			}
		case <-tick.C:
			if sv.refreshUpstreams() {
				report()
			}
		case <-counters.C:
			if st := sv.srv.Stats(); !sameStats(st, reported) {
				reported = st
				report()
			}
		}
	}
}

func sameStats(a, b Stats) bool {
	if a.UpstreamErrors != b.UpstreamErrors || a.Cache != b.Cache || a.Records != b.Records || len(a.Queries) != len(b.Queries) {
		return false
	}
	for k, v := range a.Queries {
		if b.Queries[k] != v {
			return false
		}
	}
	return true
}

func (sv *Service) refreshUpstreams() bool {
	if sv.o.Upstreams == nil {
		return false
	}
	ups := sv.o.Upstreams()
	if !sv.srv.SetUpstreams(ups) {
		return false
	}
	sv.o.Log.Info("DNS forwards to", "upstreams", fmt.Sprint(ups))
	return true
}

// listeners are one address's UDP and TCP servers.
type listeners struct {
	addr     netip.AddrPort
	udp, tcp *dns.Server
	done     sync.WaitGroup
}

// TCP limits: RFC 7766 6.2 asks servers to bound connections and idle
// time; these are ample for a cluster.
const (
	maxTCPConns     = 64
	maxTCPPerClient = 8
	tcpIdle         = 8 * time.Second
	tcpQueries      = 128
)

// listen opens UDP and TCP on a, bound to device when it is not "".
func (sv *Service) listen(a netip.AddrPort, device string) (*listeners, error) {
	lc := net.ListenConfig{Control: func(network, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			// TCP only: on UDP, SO_REUSEADDR would let this socket share
			// a port another DNS server holds instead of failing.
			if network == "tcp4" {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
			}
			if serr == nil && device != "" {
				serr = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, device)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	pc, err := lc.ListenPacket(context.Background(), "udp4", a.String())
	if err != nil {
		return nil, err
	}
	tl, err := lc.Listen(context.Background(), "tcp4", a.String())
	if err != nil {
		pc.Close()
		return nil, err
	}
	accept := func(h dns.Header) dns.MsgAcceptAction {
		if h.Bits&(1<<15) != 0 { // a response: never answered
			return dns.MsgIgnore
		}
		if op := int(h.Bits>>11) & 0xF; op != dns.OpcodeQuery {
			return dns.MsgRejectNotImplemented
		}
		if h.Qdcount != 1 || h.Ancount > 0 || h.Nscount > 0 || h.Arcount > 2 {
			return dns.MsgReject
		}
		return dns.MsgAccept
	}
	invalid := func([]byte, error) { sv.srv.count(OutcomeMalformed) }
	l := &listeners{addr: a}
	// The UDP reader's timeout only makes its loop come round (miekg/dns
	// defaults to 2 s: a wake-up every 2 s per listener on an idle head,
	// see hw/wake); Shutdown unblocks it with a deadline in the past.
	l.udp = &dns.Server{PacketConn: pc, Handler: sv.srv, UDPSize: 4096, ReadTimeout: time.Hour, MsgAcceptFunc: accept, MsgInvalidFunc: invalid}
	l.tcp = &dns.Server{Listener: limitConns(tl), Handler: sv.srv, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second,
		IdleTimeout: func() time.Duration { return tcpIdle }, MaxTCPQueries: tcpQueries, MsgAcceptFunc: accept, MsgInvalidFunc: invalid}
	for _, s := range []*dns.Server{l.udp, l.tcp} {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		l.done.Go(func() {
			if err := s.ActivateAndServe(); err != nil {
				sv.o.Log.Debug("DNS listener ended", "address", a, "err", err)
			}
		})
		<-started
	}
	return l, nil
}

func (l *listeners) close() {
	if l == nil {
		return
	}
	l.udp.Shutdown()
	l.tcp.Shutdown()
	l.done.Wait()
}

// connLimit caps TCP connections in all and per client address; one over
// is closed as soon as it is accepted.
type connLimit struct {
	net.Listener
	mu    sync.Mutex
	total int
	per   map[netip.Addr]int
}

func limitConns(l net.Listener) net.Listener {
	return &connLimit{Listener: l, per: map[netip.Addr]int{}}
}

func (l *connLimit) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		a, _ := remote(c.RemoteAddr())
		l.mu.Lock()
		if l.total >= maxTCPConns || l.per[a] >= maxTCPPerClient {
			l.mu.Unlock()
			c.Close()
			continue
		}
		l.total++
		l.per[a]++
		l.mu.Unlock()
		return &limitedConn{Conn: c, l: l, a: a}, nil
	}
}

type limitedConn struct {
	net.Conn
	l    *connLimit
	a    netip.Addr
	once sync.Once
}

func (c *limitedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		c.l.total--
		if c.l.per[c.a]--; c.l.per[c.a] <= 0 {
			delete(c.l.per, c.a)
		}
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}

// SetRecords replaces the local names; queries see them at once.
func (sv *Service) SetRecords(recs []Record) { sv.srv.SetRecords(recs) }
