package dhcpd

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
)

// Listen opens the server's socket on iface: UDP port 67 on every address,
// bound to the interface (so that requests from other networks never reach
// it and broadcasts go out of iface), broadcasts allowed. It needs
// CAP_NET_BIND_SERVICE and CAP_NET_RAW (for SO_BINDTODEVICE).
func Listen(iface string) (net.PacketConn, error) {
	c, err := server4.NewIPv4UDPConn(iface, &net.UDPAddr{Port: dhcpv4.ServerPort})
	if err != nil {
		return nil, fmt.Errorf("DHCP server socket on %s: %w", iface, err)
	}
	return c, nil
}

// Serve answers requests arriving on conn until ctx ends (then it returns
// nil) or conn fails. It closes conn when it returns, after writing the
// lease changes not yet on disk.
//
// Each packet passes the rate limits first (limits.go): a client that
// floods is slowed down alone, and machines the server does not know yet
// share one budget, so a flood from random MACs cannot crowd out the
// renewals of the nodes it knows.
func (s *Server) Serve(ctx context.Context, conn net.PacketConn) error {
	return s.ServePing(ctx, conn, nil)
}

// ServePing is Serve with the ping check (ping.go) on icmp, from
// ListenICMP; nil serves without it. It closes icmp when it returns.
func (s *Server) ServePing(ctx context.Context, conn, icmp net.PacketConn) error {
	defer conn.Close()
	if icmp != nil {
		send := func(r *Reply) { s.send(conn, r) }
		defer s.startPinger(ctx, icmp, send)()
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	keepCtx, stopKeep := context.WithCancel(context.Background())
	kept := make(chan struct{})
	go func() { defer close(kept); s.keep(keepCtx) }()
	defer func() { stopKeep(); <-kept }()
	if uc, ok := conn.(interface{ SetReadBuffer(int) error }); ok {
		// A boot storm of a thousand nodes arrives within milliseconds.
		uc.SetReadBuffer(1 << 20)
	}
	// A DHCP message fits an Ethernet frame; a larger datagram arrives
	// truncated and is dropped as malformed.
	buf := make([]byte, 1500)
	for {
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if r := s.Handle(buf[:n]); r != nil {
			s.send(conn, r)
		}
	}
}

func (s *Server) send(conn net.PacketConn, r *Reply) {
	if _, err := conn.WriteTo(r.Packet, net.UDPAddrFromAddrPort(r.To)); err != nil {
		s.Count(DropSendFailed)
		s.o.Log.Warn("sending a DHCP reply failed", "reply", r.Summary, "to", r.To, "err", err)
	}
}

// ListenClient opens a client-side socket on iface (UDP port 68, bound to
// the interface) for Probe.
func ListenClient(iface string) (net.PacketConn, error) {
	c, err := server4.NewIPv4UDPConn(iface, &net.UDPAddr{Port: dhcpv4.ClientPort})
	if err != nil {
		return nil, fmt.Errorf("DHCP probe socket on %s: %w", iface, err)
	}
	return c, nil
}

// Probe asks the network behind conn (from ListenClient) whether a DHCP
// server answers: it broadcasts a DHCPDISCOVER for mac, again halfway
// through, and waits up to wait for a DHCPOFFER. It returns the answering
// server's address, or the zero Addr if none answered. It closes conn.
//
// The offer is never taken up, so the other server's offer simply lapses.
func Probe(ctx context.Context, conn net.PacketConn, mac net.HardwareAddr, wait time.Duration) (netip.Addr, error) {
	defer conn.Close()
	if len(mac) != 6 {
		// A bridge without ports, or a test interface: any stable-looking
		// locally administered address will do.
		mac = net.HardwareAddr{0x02, 0x68, 0x6e, 0, 0, 0}
		rand.Read(mac[3:])
	}
	disc, err := dhcpv4.NewDiscovery(mac, dhcpv4.WithBroadcast(true))
	if err != nil {
		return netip.Addr{}, err
	}
	pkt := disc.ToBytes()
	bcast := &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ServerPort}
	deadline := time.Now().Add(wait)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Now()) })
	defer stop()
	resend := time.Now().Add(wait / 2)
	if _, err := conn.WriteTo(pkt, bcast); err != nil {
		return netip.Addr{}, fmt.Errorf("send DHCPDISCOVER: %w", err)
	}
	buf := make([]byte, 1500)
	for {
		until := deadline
		if !resend.IsZero() && resend.Before(until) {
			until = resend
		}
		conn.SetReadDeadline(until)
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				return netip.Addr{}, err
			}
			if ctx.Err() != nil || !time.Now().Before(deadline) {
				return netip.Addr{}, ctx.Err()
			}
			if !resend.IsZero() {
				resend = time.Time{}
				conn.WriteTo(pkt, bcast)
			}
			continue
		}
		m, err := dhcpv4.FromBytes(buf[:n])
		if err != nil || m.OpCode != dhcpv4.OpcodeBootReply || m.TransactionID != disc.TransactionID || m.MessageType() != dhcpv4.MessageTypeOffer {
			continue
		}
		if sid, ok := netip.AddrFromSlice(m.ServerIdentifier().To4()); ok {
			return sid, nil
		}
		if u, ok := from.(*net.UDPAddr); ok {
			a, _ := netip.AddrFromSlice(u.IP.To4())
			return a, nil
		}
		return netip.Addr{}, nil
	}
}
