package dhcpd

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

	"github.com/headnode/headnode/hw/wake"
)

// State is what a Service is doing.
type State string

const (
	// StateWaiting: the interface does not exist yet or lacks the
	// server's address (USB Ethernet and bridges appear late).
	StateWaiting State = "waiting"
	// StateProbing: asking the network whether another server answers.
	StateProbing State = "probing"
	StateServing State = "serving"
	// StateOtherServer: another DHCP server answered the probe; ours
	// stays off so that the network does not get two.
	StateOtherServer State = "other-server"
	// StateFailed: the socket could not be opened or failed; retried.
	StateFailed State = "failed"
)

// Target is the interface the server should run on, as last seen.
type Target struct {
	Interface string
	// Index is the interface's ifindex; 0 when it does not exist. A new
	// index (the interface was re-created) restarts the server, whose
	// socket was bound to the old one.
	Index int
	// HasAddress: the server's address is on the interface.
	HasAddress bool
}

// Status is a Service's report.
type Status struct {
	State State
	// Reason says why the state is not serving, in words.
	Reason    string
	Interface string
	// OtherServer is the server that answered the probe.
	OtherServer netip.Addr
	DNS         []netip.Addr
	Leases      []Lease
	Stats       Stats
}

// ServiceOptions configures a Service.
type ServiceOptions struct {
	Interface string
	// Address is the server's own address, for messages.
	Address netip.Prefix
	// Probe is how long to wait for another server's offer; 0 skips the
	// probe.
	Probe time.Duration
	// DNS returns the resolvers to hand out; called at start and every
	// DNSRefresh (the uplink's resolvers change with the network the
	// cluster is plugged into). nil hands out none.
	DNS        func() []netip.Addr
	DNSRefresh time.Duration
	// Report receives the status on every change, from Run's goroutine.
	// Packet counters alone trigger at most one report a second.
	Report func(Status)
	Log    *slog.Logger
}

// Service runs a Server on an interface as the interface comes and goes:
// it waits for the interface and its address, probes for another DHCP
// server, serves, and starts over when the interface is re-created.
type Service struct {
	srv     *Server
	o       ServiceOptions
	targets chan Target
	notify  chan struct{}

	mu    sync.Mutex
	state State
	why   string
	other netip.Addr
	dns   []netip.Addr
}

// NewService returns a service for srv; Run starts it.
func NewService(srv *Server, o ServiceOptions) *Service {
	if o.DNSRefresh == 0 {
		o.DNSRefresh = 30 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Report == nil {
		o.Report = func(Status) {}
	}
	return &Service{srv: srv, o: o, targets: make(chan Target, 1), notify: make(chan struct{}, 1), state: StateWaiting}
}

// SetTarget tells the service about the interface. It never blocks; only
// the latest target counts.
func (s *Service) SetTarget(t Target) {
	for {
		select {
		case s.targets <- t:
			return
		default:
			select {
			case <-s.targets:
			default:
			}
		}
	}
}

// Status returns the current status.
func (s *Service) Status() Status {
	s.mu.Lock()
	st := Status{State: s.state, Reason: s.why, Interface: s.o.Interface, OtherServer: s.other, DNS: slices.Clone(s.dns)}
	s.mu.Unlock()
	st.Leases = s.srv.Leases()
	st.Stats = s.srv.Stats()
	return st
}

func (s *Service) set(state State, why string) {
	s.mu.Lock()
	s.state, s.why = state, why
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

func (s *Service) refreshDNS() bool {
	if s.o.DNS == nil {
		return false
	}
	dns := s.o.DNS()
	s.mu.Lock()
	changed := !slices.Equal(dns, s.dns)
	s.dns = dns
	s.mu.Unlock()
	if changed {
		s.srv.SetDNS(dns)
		s.o.Log.Info("DHCP hands out resolvers", "dns", fmt.Sprint(dns))
	}
	return changed
}

// Run runs the service until ctx ends. The socket is closed when it
// returns.
func (s *Service) Run(ctx context.Context) {
	var cur Target
	stopRun := func() {}
	defer func() { stopRun() }()
	s.refreshDNS()
	s.set(StateWaiting, s.waitingFor(cur))
	tick := wake.NewTicker(time.Second)
	defer tick.Stop()
	lastDNS := time.Now()
	var reported Stats
	var reportedAt time.Time
	report := func() {
		st := s.Status()
		reported, reportedAt = st.Stats, time.Now()
		s.o.Report(st)
	}
	// Lease changes are reported at most every leaseReport: in a boot
	// storm they come by the thousand, and each report copies the table.
	var later <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case t := <-s.targets:
			if t == cur {
				continue
			}
			stopRun()
			stopRun = func() {}
			cur = t
			if t.Index == 0 || !t.HasAddress {
				s.set(StateWaiting, s.waitingFor(t))
				continue
			}
			runCtx, cancel := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() { defer close(done); s.runOn(runCtx, t) }()
			stopRun = func() { cancel(); <-done }
		case <-s.notify:
			report()
		case <-s.srv.Changed():
			if later != nil {
				continue
			}
			if wait := leaseReport - time.Since(reportedAt); wait > 0 {
				later = time.After(wait)
				continue
			}
			report()
		case <-later:
			later = nil
			report()
		case <-tick.C:
			if time.Since(lastDNS) >= s.o.DNSRefresh {
				lastDNS = time.Now()
				if s.refreshDNS() {
					report()
					continue
				}
			}
			if !sameCounts(reported, s.srv.Stats()) {
				report()
			}
		}
	}
}

func (s *Service) waitingFor(t Target) string {
	if t.Index == 0 {
		return fmt.Sprintf("interface %s does not exist yet", s.o.Interface)
	}
	return fmt.Sprintf("waiting for %s on %s", s.o.Address, s.o.Interface)
}

// runOn probes, then serves on t until ctx ends.
func (s *Service) runOn(ctx context.Context, t Target) {
	if s.o.Probe > 0 {
		s.set(StateProbing, fmt.Sprintf("asking %s for another DHCP server", t.Interface))
		other, err := s.probe(ctx, t.Interface)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			s.o.Log.Warn("could not check for another DHCP server; starting ours", "interface", t.Interface, "err", err)
		}
		s.mu.Lock()
		s.other = other
		s.mu.Unlock()
		if other.IsValid() {
			s.o.Log.Warn("another DHCP server answers on the cluster network; ours stays off", "interface", t.Interface, "server", other)
			s.set(StateOtherServer, fmt.Sprintf("another DHCP server (%v) answers on %s, so ours is not started; turn one of them off ([dhcp] enabled = false here) and restart headnode", other, t.Interface))
			return
		}
	}
	for {
		conn, err := Listen(t.Interface)
		if err == nil {
			icmp, perr := ListenICMP()
			if perr != nil {
				s.o.Log.Warn("no ping check before offering addresses", "err", perr)
				icmp = nil
			}
			s.o.Log.Info("DHCP server running", "interface", t.Interface, "address", s.o.Address, "ping_check", icmp != nil)
			s.set(StateServing, "")
			err = s.srv.ServePing(ctx, conn, icmp)
			if ctx.Err() != nil {
				return
			}
		}
		if errors.Is(err, syscall.EADDRINUSE) {
			err = fmt.Errorf("%w (another DHCP server, such as dnsmasq, runs on this machine)", err)
		}
		s.o.Log.Error("DHCP server not running; retrying in 5s", "interface", t.Interface, "err", err)
		s.set(StateFailed, err.Error())
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Second):
		}
	}
}

func (s *Service) probe(ctx context.Context, iface string) (netip.Addr, error) {
	var mac net.HardwareAddr
	if ifi, err := net.InterfaceByName(iface); err == nil {
		mac = ifi.HardwareAddr
	}
	conn, err := ListenClient(iface)
	if err != nil {
		return netip.Addr{}, err
	}
	return Probe(ctx, conn, mac, s.o.Probe)
}

// leaseReport is the shortest time between two reports of lease changes.
const leaseReport = 200 * time.Millisecond

// sameCounts reports whether two counter sets are equal.
func sameCounts(a, b Stats) bool {
	if a.Received != b.Received || a.Offers != b.Offers || a.Acks != b.Acks || a.Naks != b.Naks ||
		a.OtherServer != b.OtherServer || a.SaveError != b.SaveError || len(a.Dropped) != len(b.Dropped) ||
		a.LeaseWrites != b.LeaseWrites || a.PingChecks != b.PingChecks || a.PingInUse != b.PingInUse {
		return false
	}
	for k, v := range a.Dropped {
		if b.Dropped[k] != v {
			return false
		}
	}
	return true
}
