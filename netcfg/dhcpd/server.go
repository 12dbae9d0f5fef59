package dhcpd

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"regexp"
	"sync"
	"time"

	"github.com/headnode/headnode/power/nodename"
	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
	"github.com/insomniacslk/dhcp/rfc1035label"
)

// Server answers DHCP requests for one subnet. Handle is safe for
// concurrent use, but Serve runs it from one goroutine: packets are
// answered in order and a flood cannot start unbounded work.
type Server struct {
	o        Options
	subnet   netip.Prefix
	serverIP net.IP
	mask     net.IPMask

	byMAC  map[string]Reservation
	byName map[string]Reservation
	byAddr map[netip.Addr]Reservation

	mu     sync.Mutex
	leases *leases
	// fullUntil: the pool was found full; no address frees up before
	// then unless a lease is released.
	fullUntil time.Time
	dns       []net.IP
	stats     Stats
	// changed is signalled (never blocking) when leases change.
	changed chan struct{}
}

// Stats counts what the server did with the packets it received.
type Stats struct {
	Received int64 `json:"received"`
	Offers   int64 `json:"offers"`
	Acks     int64 `json:"acks"`
	Naks     int64 `json:"naks"`
	// Dropped counts packets not answered, by reason (DropMalformed, ...).
	Dropped map[string]int64 `json:"dropped,omitempty"`
	// OtherServer is the last other DHCP server a client of ours chose
	// (its DHCPREQUEST named that server), and when.
	OtherServer   netip.Addr `json:"other_server,omitzero"`
	OtherServerAt time.Time  `json:"other_server_at,omitzero"`
	// SaveError is the last failure to write the lease file ("" when the
	// last write worked).
	SaveError string `json:"save_error,omitempty"`
}

// Reasons for not answering a packet.
const (
	DropMalformed     = "malformed"          // not a DHCP packet
	DropNotRequest    = "not-request"        // a reply (op 2), not a client's request
	DropNotEthernet   = "not-ethernet"       // hardware type/length other than Ethernet
	DropRelayed       = "relayed"            // giaddr set: from another network
	DropMessageType   = "bad-message-type"   // missing, or not one a client sends
	DropPoolExhausted = "pool-exhausted"     // no address left to offer
	DropOtherServer   = "for-another-server" // a REQUEST or DECLINE naming another server
	DropNoAddress     = "no-address"         // a REQUEST without an address to confirm
	DropUnknownLease  = "unknown-lease"      // RELEASE/DECLINE of a lease this client does not hold
	DropRateLimited   = "rate-limited"       // more requests than a cluster makes
	DropSendFailed    = "send-failed"        // the reply could not be sent
)

// New returns a server for o, with the leases kept in o.LeaseFile. A
// lease file that cannot be read is reported in the error, but the server
// is still returned (starting empty), because nodes without addresses are
// worse than forgotten leases.
func New(o *Options) (*Server, error) {
	opts := *o
	opts.withDefaults()
	if err := opts.check(); err != nil {
		return nil, err
	}
	s := &Server{
		o:        opts,
		subnet:   opts.Address.Masked(),
		serverIP: net.IP(opts.Address.Addr().AsSlice()),
		mask:     net.CIDRMask(opts.Address.Bits(), 32),
		byMAC:    map[string]Reservation{},
		byName:   map[string]Reservation{},
		byAddr:   map[netip.Addr]Reservation{},
		leases:   newLeases(),
		changed:  make(chan struct{}, 1),
		stats:    Stats{Dropped: map[string]int64{}},
	}
	for _, r := range opts.Reservations {
		if r.MAC != nil {
			s.byMAC[r.MAC.String()] = r
		}
		if r.Name != "" {
			s.byName[r.Name] = r
		}
		s.byAddr[r.Addr] = r
	}
	saved, err := loadLeases(opts.LeaseFile)
	now := time.Now()
	for _, l := range saved {
		if len(l.MAC) != 6 || !IsHostAddr(s.subnet, l.Addr) || l.Addr == opts.Address.Addr() {
			continue
		}
		// A reservation changed since: the record no longer stands.
		if r, ok := s.byAddr[l.Addr]; ok && r.MAC != nil && r.MAC.String() != l.MAC.String() {
			continue
		}
		if s.leases.byAddr[l.Addr] != nil || s.leases.byMAC[l.MAC.String()] != nil {
			continue
		}
		if !l.active(now) {
			l.Hostname = ""
		}
		s.leases.put(&l)
	}
	if err != nil {
		return s, fmt.Errorf("lease file unreadable, starting without the old leases: %w", err)
	}
	return s, nil
}

// SetDNS sets the resolvers handed out from now on.
func (s *Server) SetDNS(servers []netip.Addr) {
	ips := make([]net.IP, 0, len(servers))
	for _, a := range servers {
		if a.Is4() {
			ips = append(ips, net.IP(a.AsSlice()))
		}
	}
	s.mu.Lock()
	s.dns = ips
	s.mu.Unlock()
}

// Leases returns the leases and offers that hold an address now, by
// address.
func (s *Server) Leases() []Lease {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.leases.list(func(l *Lease) bool { return l.active(now) })
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.stats
	c.Dropped = maps.Clone(s.stats.Dropped)
	return c
}

// Changed is signalled when a lease is granted, renewed, released or
// declined.
func (s *Server) Changed() <-chan struct{} { return s.changed }

// Count records a packet dropped outside Handle (rate limiting, send
// errors).
func (s *Server) Count(reason string) {
	s.mu.Lock()
	s.stats.Dropped[reason]++
	s.mu.Unlock()
}

// Reply is a packet to send and where to.
type Reply struct {
	Packet []byte
	To     netip.AddrPort
	// Summary says what it is, for logs: "OFFER 192.168.50.128 to aa:..".
	Summary string
}

// Handle answers one received packet. It returns nil when the packet gets
// no answer; the reason is counted in Stats.
func (s *Server) Handle(pkt []byte) *Reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Received++
	r, reason := s.handle(pkt, time.Now())
	if r == nil {
		if reason != "" {
			s.stats.Dropped[reason]++
		}
		return nil
	}
	return r
}

// handle is Handle with the lock held.
func (s *Server) handle(pkt []byte, now time.Time) (*Reply, string) {
	req, err := dhcpv4.FromBytes(pkt)
	if err != nil {
		return nil, DropMalformed
	}
	if req.OpCode != dhcpv4.OpcodeBootRequest {
		return nil, DropNotRequest
	}
	if req.HWType != iana.HWTypeEthernet || len(req.ClientHWAddr) != 6 {
		return nil, DropNotEthernet
	}
	if !isZero(req.GatewayIPAddr) {
		return nil, DropRelayed
	}
	c := client{mac: req.ClientHWAddr, hostname: cleanHostname(req.HostName())}
	switch req.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		return s.discover(req, c, now)
	case dhcpv4.MessageTypeRequest:
		return s.request(req, c, now)
	case dhcpv4.MessageTypeDecline:
		return nil, s.decline(req, c, now)
	case dhcpv4.MessageTypeRelease:
		return nil, s.release(req, c, now)
	case dhcpv4.MessageTypeInform:
		return s.reply(req, dhcpv4.MessageTypeAck, nil, "")
	}
	return nil, DropMessageType
}

type client struct {
	mac      net.HardwareAddr
	hostname string // from the client, "" unless a valid host name
}

// reservation returns the address reserved for c, if any, and whether it
// is free for c. A MAC reservation comes first; then a node name, from a
// ClusterCTRL gadget MAC or the host name the client sent, unless that
// name is pinned to another MAC.
func (s *Server) reservation(c client, now time.Time) (Reservation, bool) {
	r, ok := s.byMAC[c.mac.String()]
	if !ok {
		name := ""
		if n, isGadget := gadgetNode(c.mac); isGadget {
			name = nodename.Name(n)
		} else if isNodeName(c.hostname) {
			name = c.hostname
		}
		r, ok = s.byName[name]
		if ok && r.MAC != nil {
			ok = false // pN is pinned to another machine
		}
	}
	if !ok || s.leases.heldByOther(r.Addr, c.mac, now) || s.leases.isDeclined(r.Addr, now) {
		// Taken (another machine claimed the same node name first, or
		// someone uses the address without a lease): the pool it is.
		return Reservation{}, false
	}
	return r, true
}

// free reports whether a pool address can go to mac.
func (s *Server) free(a netip.Addr, mac net.HardwareAddr, now time.Time) bool {
	if !a.IsValid() || a.Less(s.o.PoolFirst) || s.o.PoolLast.Less(a) || a == s.o.Address.Addr() {
		return false
	}
	if _, reserved := s.byAddr[a]; reserved {
		return false
	}
	return !s.leases.heldByOther(a, mac, now) && !s.leases.isDeclined(a, now)
}

// choose picks the address to offer c: its reservation; else its previous
// address; else the one it asks for; else the first never-used pool
// address; else the one that expired longest ago.
func (s *Server) choose(c client, requested netip.Addr, now time.Time) (netip.Addr, Reservation, error) {
	if r, ok := s.reservation(c, now); ok {
		return r.Addr, r, nil
	}
	if l := s.leases.byMAC[c.mac.String()]; l != nil && s.free(l.Addr, c.mac, now) {
		return l.Addr, Reservation{}, nil
	}
	if s.free(requested, c.mac, now) {
		return requested, Reservation{}, nil
	}
	if now.Before(s.fullUntil) {
		return netip.Addr{}, Reservation{}, errNoPool
	}
	var oldest *Lease
	var soonest time.Time // when a held address frees up
	for a := s.o.PoolFirst; !s.o.PoolLast.Less(a); a = a.Next() {
		if !s.free(a, c.mac, now) {
			if l := s.leases.byAddr[a]; l != nil && (soonest.IsZero() || l.Expires.Before(soonest)) {
				soonest = l.Expires
			}
			if until, ok := s.leases.declined[a]; ok && (soonest.IsZero() || until.Before(soonest)) {
				soonest = until
			}
			continue
		}
		l := s.leases.byAddr[a]
		if l == nil {
			return a, Reservation{}, nil
		}
		if oldest == nil || l.Expires.Before(oldest.Expires) {
			oldest = l
		}
	}
	if oldest != nil {
		return oldest.Addr, Reservation{}, nil
	}
	// Full: nothing frees up before soonest unless a client lets go, so
	// a flood of DISCOVERs neither rescans the pool nor fills the log.
	s.fullUntil = soonest
	s.o.Log.Warn("the DHCP pool is full; machines without a lease get no address", "pool", fmt.Sprintf("%v-%v", s.o.PoolFirst, s.o.PoolLast), "first_expiry", soonest, "asked_by", c.mac.String())
	return netip.Addr{}, Reservation{}, errNoPool
}

func (s *Server) discover(req *dhcpv4.DHCPv4, c client, now time.Time) (*Reply, string) {
	requested, _ := netip.AddrFromSlice(req.RequestedIPAddress().To4())
	a, r, err := s.choose(c, requested, now)
	if err != nil {
		return nil, DropPoolExhausted
	}
	l := s.leases.byMAC[c.mac.String()]
	if l == nil || l.Addr != a || !l.active(now) || l.Offered {
		// Set the address aside for this client while it decides; a
		// bound lease on the same address stays bound.
		s.leases.put(&Lease{MAC: c.mac, Addr: a, Hostname: hostnameFor(r, c), Expires: now.Add(offerHold), Reserved: r.Addr.IsValid(), Offered: true})
	}
	return s.reply(req, dhcpv4.MessageTypeOffer, &a, r.Name)
}

func (s *Server) request(req *dhcpv4.DHCPv4, c client, now time.Time) (*Reply, string) {
	if sid := req.ServerIdentifier(); sid != nil && !sid.Equal(s.serverIP) {
		// The client took another server's offer: forget ours, and note
		// that there is another server on this network.
		if l := s.leases.byMAC[c.mac.String()]; l != nil && l.Offered {
			s.leases.remove(l)
			s.fullUntil = time.Time{}
		}
		if other, ok := netip.AddrFromSlice(sid.To4()); ok {
			if s.stats.OtherServer != other {
				s.o.Log.Warn("another DHCP server answers on this network", "server", other, "client", c.mac.String())
			}
			s.stats.OtherServer, s.stats.OtherServerAt = other, now
		}
		return nil, DropOtherServer
	}
	// SELECTING and INIT-REBOOT name the address in option 50; RENEWING
	// and REBINDING in ciaddr.
	a, _ := netip.AddrFromSlice(req.RequestedIPAddress().To4())
	if !a.IsValid() {
		a, _ = netip.AddrFromSlice(req.ClientIPAddr.To4())
	}
	if !a.IsValid() || a.IsUnspecified() {
		return nil, DropNoAddress
	}
	r, reserved := s.reservation(c, now)
	held := s.leases.byMAC[c.mac.String()]
	holds := held != nil && held.Addr == a && held.active(now)
	ok := false
	switch {
	case reserved:
		// A reserved machine gets its reservation and nothing else; a NAK
		// makes it start over and ask for it.
		ok = a == r.Addr
	case holds:
		// Offered or leased to this machine already, perhaps under the
		// host name it sent then and leaves out now.
		ok = true
		if held.Reserved {
			r, reserved = Reservation{Name: held.Hostname, Addr: a}, true
		}
	default:
		ok = s.free(a, c.mac, now)
	}
	if !ok {
		why := fmt.Sprintf("%v is not available to you on this network", a)
		if reserved {
			why = fmt.Sprintf("%v is not your address; yours is %v", a, r.Addr)
		}
		return s.nak(req, why)
	}
	s.leases.put(&Lease{MAC: c.mac, Addr: a, Hostname: hostnameFor(r, c), Expires: now.Add(s.o.LeaseTime), Reserved: reserved})
	s.saveLocked()
	s.o.Log.Info("lease", "address", a, "mac", c.mac.String(), "hostname", hostnameFor(r, c))
	return s.reply(req, dhcpv4.MessageTypeAck, &a, r.Name)
}

func (s *Server) decline(req *dhcpv4.DHCPv4, c client, now time.Time) string {
	if sid := req.ServerIdentifier(); sid != nil && !sid.Equal(s.serverIP) {
		return DropOtherServer
	}
	a, _ := netip.AddrFromSlice(req.RequestedIPAddress().To4())
	l := s.leases.byMAC[c.mac.String()]
	if l == nil || l.Addr != a {
		return DropUnknownLease
	}
	// Another machine uses the address without a lease from us: keep it
	// out of use for a while.
	s.o.Log.Warn("a client found its address in use by another machine", "address", a, "mac", c.mac.String())
	s.leases.remove(l)
	s.leases.declined[a] = now.Add(declineHold)
	s.saveLocked()
	return ""
}

func (s *Server) release(req *dhcpv4.DHCPv4, c client, now time.Time) string {
	a, _ := netip.AddrFromSlice(req.ClientIPAddr.To4())
	l := s.leases.byMAC[c.mac.String()]
	if l == nil || l.Addr != a || !l.active(now) {
		return DropUnknownLease
	}
	l.Expires = now
	s.fullUntil = time.Time{}
	s.saveLocked()
	return ""
}

// saveLocked persists the bound leases (expired ones too: they are the
// record of who had which address) and signals the change.
func (s *Server) saveLocked() {
	if s.o.LeaseFile == "" {
		s.notifyChange()
		return
	}
	ls := s.leases.list(func(l *Lease) bool { return !l.Offered })
	if err := saveLeases(s.o.LeaseFile, ls); err != nil {
		if s.stats.SaveError == "" {
			s.o.Log.Error("cannot save DHCP leases; they will be lost on restart", "file", s.o.LeaseFile, "err", err)
		}
		s.stats.SaveError = err.Error()
	} else {
		s.stats.SaveError = ""
	}
	s.notifyChange()
}

func (s *Server) notifyChange() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// reply builds an OFFER or ACK. yiaddr is nil for the ACK of a DHCPINFORM,
// which carries configuration but no lease.
func (s *Server) reply(req *dhcpv4.DHCPv4, typ dhcpv4.MessageType, yiaddr *netip.Addr, hostname string) (*Reply, string) {
	mods := []dhcpv4.Modifier{
		dhcpv4.WithMessageType(typ),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(s.serverIP)),
		dhcpv4.WithOption(dhcpv4.OptSubnetMask(s.mask)),
		dhcpv4.WithOption(dhcpv4.OptRouter(net.IP(s.o.Router.AsSlice()))),
		dhcpv4.WithOption(dhcpv4.OptBroadcastAddress(net.IP(broadcastOf(s.subnet).AsSlice()))),
	}
	if len(s.dns) > 0 {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptDNS(s.dns...)))
	}
	if d := s.o.Domain; d != "" {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptDomainName(d)),
			dhcpv4.WithOption(dhcpv4.OptDomainSearch(&rfc1035label.Labels{Labels: []string{d}})))
	}
	if hostname != "" {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptHostName(hostname)))
	}
	if yiaddr != nil {
		lt := s.o.LeaseTime
		mods = append(mods,
			dhcpv4.WithYourIP(net.IP(yiaddr.AsSlice())),
			dhcpv4.WithOption(dhcpv4.OptIPAddressLeaseTime(lt)),
			dhcpv4.WithOption(dhcpv4.OptRenewTimeValue(lt/2)),
			dhcpv4.WithOption(dhcpv4.OptRebindingTimeValue(lt*7/8)),
		)
	}
	resp, err := dhcpv4.NewReplyFromRequest(req, mods...)
	if err != nil {
		return nil, DropMalformed
	}
	switch typ {
	case dhcpv4.MessageTypeOffer:
		s.stats.Offers++
	case dhcpv4.MessageTypeAck:
		s.stats.Acks++
	}
	return s.packet(req, resp, typ), ""
}

func (s *Server) nak(req *dhcpv4.DHCPv4, why string) (*Reply, string) {
	resp, err := dhcpv4.NewReplyFromRequest(req,
		dhcpv4.WithMessageType(dhcpv4.MessageTypeNak),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(s.serverIP)),
		dhcpv4.WithOption(dhcpv4.OptMessage(why)),
	)
	if err != nil {
		return nil, DropMalformed
	}
	s.stats.Naks++
	return s.packet(req, resp, dhcpv4.MessageTypeNak), ""
}

// packet addresses a reply (RFC 2131 section 4.1): to the client's own
// address when it has one (renewing, INFORM), else broadcast; a NAK is
// always broadcast, since the client's address is the problem.
func (s *Server) packet(req, resp *dhcpv4.DHCPv4, typ dhcpv4.MessageType) *Reply {
	to := netip.AddrPortFrom(netip.AddrFrom4([4]byte{255, 255, 255, 255}), dhcpv4.ClientPort)
	if ci, ok := netip.AddrFromSlice(req.ClientIPAddr.To4()); ok && !ci.IsUnspecified() && typ != dhcpv4.MessageTypeNak && s.subnet.Contains(ci) {
		to = netip.AddrPortFrom(ci, dhcpv4.ClientPort)
	}
	yi := ""
	if !isZero(resp.YourIPAddr) {
		yi = " " + resp.YourIPAddr.String()
	}
	return &Reply{Packet: resp.ToBytes(), To: to, Summary: fmt.Sprintf("%s%s to %s", typ, yi, req.ClientHWAddr)}
}

func isZero(ip net.IP) bool { return ip == nil || ip.IsUnspecified() }

// hostnameFor is the host name recorded for a lease: the reservation's
// name, else what the client calls itself.
func hostnameFor(r Reservation, c client) string {
	if r.Name != "" {
		return r.Name
	}
	return c.hostname
}

var hostnameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)

// ValidHostname reports whether h is a plain host name (one RFC 1123
// label), the only kind this server records or hands out.
func ValidHostname(h string) bool { return hostnameRE.MatchString(h) }

// cleanHostname returns h if it is a plain host name. Anything else a
// client sends (control characters, escapes, 200 bytes of junk) would end
// up on a terminal through `headnode status`, so it is dropped.
func cleanHostname(h string) string {
	if ValidHostname(h) {
		return h
	}
	return ""
}

// isNodeName reports whether s names a cluster node: p1, p2, ...
func isNodeName(s string) bool {
	_, err := nodename.Parse(s)
	return err == nil
}

// gadgetNode recognises the MAC address of a ClusterCTRL node's USB gadget
// interface, 00:22:82:ff:ff:<node ID>, and returns the node number.
func gadgetNode(mac net.HardwareAddr) (int, bool) {
	if len(mac) == 6 && mac[0] == 0x00 && mac[1] == 0x22 && mac[2] == 0x82 && mac[3] == 0xff && mac[4] == 0xff && mac[5] != 0 {
		return int(mac[5]), true
	}
	return 0, false
}
