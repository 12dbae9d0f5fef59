package dhcpd

// The ping check: before offering a pool address to a machine that has
// not had it before, the server sends it an ICMP echo request, as ISC
// dhcpd does (and dnsmasq). A machine that answers uses the address
// without a lease from us (configured by hand, or left from another
// server): the address is set aside as declined would be, and the client
// gets another. The offer goes out when the check times out, so the
// check costs a new machine PingTimeout once, and nothing for renewals,
// reservations, or a machine returning to its old address. The checks
// run concurrently: a boot storm waits PingTimeout once, not per node.

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"

	"github.com/headnode/headnode/netcfg/echofilter"
)

// DefaultPingTimeout is how long the ping check waits for an answer. A
// machine on the same link answers ARP and echo within milliseconds.
const DefaultPingTimeout = 200 * time.Millisecond

// pingTries bounds how many addresses in a row are found in use for one
// DISCOVER before the server gives up on it (the client asks again).
const pingTries = 3

// ListenICMP opens the socket for the ping check (raw ICMP: CAP_NET_RAW).
// Open it in the network namespace of the cluster interface.
func ListenICMP() (net.PacketConn, error) {
	c, err := net.ListenPacket("ip4:icmp", "0.0.0.0")
	if err != nil {
		return nil, fmt.Errorf("ICMP socket for the DHCP ping check: %w", err)
	}
	return c, nil
}

// check is a ping check under way, by address.
type check struct {
	mac   string
	req   []byte // the DISCOVER, handled again when the check ends
	seq   uint16
	tries int
	timer *time.Timer
}

// pinger sends the echo requests and matches the replies.
type pinger struct {
	conn    net.PacketConn
	id      uint16
	seq     uint16
	timeout time.Duration
	send    func(*Reply)
}

// startCheck sends the echo request for a offered to mac (lock held).
// It reports false when no check can be made (then offer at once).
func (s *Server) startCheck(a netip.Addr, mac string, pkt []byte, tries int) bool {
	p := s.ping
	if p == nil {
		return false
	}
	p.seq++
	msg, _ := (&icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: int(p.id), Seq: int(p.seq), Data: []byte("headnode dhcp")}}).Marshal(nil)
	if _, err := p.conn.WriteTo(msg, &net.IPAddr{IP: a.AsSlice()}); err != nil {
		s.stats.PingErrors++
		return false
	}
	c := &check{mac: mac, req: append([]byte(nil), pkt...), seq: p.seq, tries: tries}
	c.timer = time.AfterFunc(p.timeout, func() { s.checked(a, c, false) })
	s.checks[a] = c
	s.stats.PingChecks++
	return true
}

// checked ends the check of a: answered means someone uses the address.
func (s *Server) checked(a netip.Addr, c *check, answered bool) {
	s.mu.Lock()
	if s.checks[a] != c {
		s.mu.Unlock()
		return
	}
	delete(s.checks, a)
	c.timer.Stop()
	now := time.Now()
	if answered {
		s.stats.PingInUse++
		s.o.Log.Warn("a machine answers ping on a pool address without a lease from us; not offering it", "address", a, "for", c.mac)
		if l := s.leases.byAddr[a]; l != nil && l.Offered {
			s.leases.remove(l)
		}
		s.leases.declined[a] = now.Add(declineHold)
		if c.tries+1 >= pingTries {
			s.mu.Unlock()
			return
		}
	}
	if answered {
		c.tries++
	}
	s.checkTries = c.tries
	r, _ := s.handle(c.req, now)
	s.checkTries = 0
	send := s.ping.send
	s.mu.Unlock()
	if r != nil && send != nil {
		send(r)
	}
}

// readPings reads echo replies until the socket closes.
func (s *Server) readPings(p *pinger) {
	buf := make([]byte, 1500)
	for {
		n, from, err := p.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		b := buf[:n]
		// Type 0 (echo reply), code, checksum, identifier, sequence.
		if n < 8 || b[0] != 0 || binary.BigEndian.Uint16(b[4:]) != p.id {
			continue
		}
		ia, ok := from.(*net.IPAddr)
		if !ok {
			continue
		}
		a, ok := netip.AddrFromSlice(ia.IP.To4())
		if !ok {
			continue
		}
		s.mu.Lock()
		c := s.checks[a]
		s.mu.Unlock()
		if c != nil && c.seq == binary.BigEndian.Uint16(b[6:]) {
			s.checked(a, c, true)
		}
	}
}

// startPinger runs the ping check on conn while ctx lasts (Serve).
func (s *Server) startPinger(ctx context.Context, conn net.PacketConn, send func(*Reply)) (stop func()) {
	var id [2]byte
	rand.Read(id[:])
	p := &pinger{conn: conn, id: binary.BigEndian.Uint16(id[:]), timeout: s.o.PingTimeout, send: send}
	// Only our replies reach the socket, not the node probe's thousand a
	// second; readPings still checks each one.
	echofilter.Attach(conn, p.id)
	s.mu.Lock()
	s.ping = p
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { defer close(done); s.readPings(p) }()
	stopCtx := context.AfterFunc(ctx, func() { conn.Close() })
	return func() {
		stopCtx()
		conn.Close()
		<-done
		s.mu.Lock()
		s.ping = nil
		for a, c := range s.checks {
			c.timer.Stop()
			delete(s.checks, a)
		}
		s.mu.Unlock()
	}
}
