// Package dhcpwatch listens on the cluster side for other DHCP servers,
// before headnode's own server starts and all the time it serves, and
// decides (Gate) when ours may answer.
//
// A Watcher holds a packet socket (packet(7), AF_PACKET, SOCK_DGRAM, all
// protocols) on the interface (a bridge port too), promiscuous, with a classic BPF filter that passes only UDP
// from port 67 to port 68: every server reply on the wire, including
// offers unicast to a node's MAC (which a UDP socket on port 68 would never
// see, and which a bridge passes up to its own device only in promiscuous
// mode). Our own server's replies are the frames the kernel marks
// PACKET_OUTGOING and are ignored, so the watcher can run beside it.
//
// A server that nobody asks says nothing, so the watcher also asks: every
// Every it broadcasts a DHCPDISCOVER with the broadcast flag (RFC 2131
// 4.1: replies go to 255.255.255.255) from its own locally administered
// MAC. Sent through the packet socket, it goes out on the wire only and
// never reaches a socket on this machine, so our own server does not see
// it (the daemon's e2e test checks: no drop, no lease). Its hardware type
// is IEEE 802 (6) rather than Ethernet (1) as a second guard: other
// servers answer it (dnsmasq and busybox udhcpd, in the kernel tests,
// check the address length, not the type), while a headnode server that
// did see it would drop it (netcfg/dhcpd: DropNotEthernet) rather than
// take an address from its pool for it.
//
// Errors (no interface, socket refused, send failing while the link is
// down) are reported and retried; they are never "no other server": Gate
// only clears after Listening reports without a fault for the whole
// window.
package dhcpwatch

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
	"github.com/vishvananda/netns"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/headnode/headnode/hw/wake"
)

// Sighting is a reply from a DHCP server other than ours.
type Sighting struct {
	// Server is the server identifier (option 54), else the source
	// address.
	Server netip.Addr
	// MAC is the sender's link address.
	MAC  net.HardwareAddr
	Type string // "OFFER", "ACK", "NAK"
	At   time.Time
}

// Report is one observation of the watcher.
type Report struct {
	At time.Time
	// Listening: the socket is open and the last probe went out.
	Listening bool
	// Err is why the watcher is not listening (retried).
	Err error
	// Sighting, when set, is another server's reply.
	Sighting *Sighting
}

// Options configures Watch.
type Options struct {
	Interface string
	// Every is how often to ask; 0 means 1 s.
	Every time.Duration
	// Namespace, when set, is the namespace the interface is in (tests).
	Namespace *netns.NsHandle
	Log       *slog.Logger
}

// Watch watches until ctx ends, calling report (from Watch's goroutine) on
// every probe sent, error and sighting.
func Watch(ctx context.Context, o Options, report func(Report)) {
	if o.Every <= 0 {
		o.Every = time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	mac := net.HardwareAddr{0x02, 0x68, 0x6e, 0x77, 0, 0}
	rand.Read(mac[4:])
	var lastErr string
	for ctx.Err() == nil {
		err := watchOnce(ctx, o, mac, report)
		if ctx.Err() != nil {
			return
		}
		if err.Error() != lastErr {
			o.Log.Warn("cannot listen for other DHCP servers; retrying", "interface", o.Interface, "err", err)
			lastErr = err.Error()
		}
		report(Report{At: time.Now(), Err: err})
		select {
		case <-ctx.Done():
			return
		case <-time.After(o.Every):
		}
	}
}

// filter passes IPv4 UDP datagrams from port 67 to port 68 (not
// fragments past the first), whole, that this machine did not send. The
// socket takes every protocol (ETH_P_ALL): on a bridge port, frames reach
// protocol-specific sockets only after the bridge has taken them, that is
// never; ETH_P_ALL taps see them first. Our own server's replies are
// dropped in the kernel (packet type PACKET_OUTGOING, the skb's pkt_type
// as packet(7) reports it), not read and thrown away: two per DORA, which
// the DHCP benchmark saw as CPU time per DORA.
var filter = mustAssemble([]bpf.Instruction{
	bpf.LoadExtension{Num: bpf.ExtType},
	bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.PACKET_OUTGOING, SkipTrue: 12},
	bpf.LoadExtension{Num: bpf.ExtProto},
	bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: unix.ETH_P_IP, SkipTrue: 10},
	bpf.LoadAbsolute{Off: 9, Size: 1},                        // protocol
	bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 17, SkipTrue: 8}, // UDP
	bpf.LoadAbsolute{Off: 6, Size: 2},                        // flags, fragment offset
	bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: 0x1fff, SkipTrue: 6},
	bpf.LoadMemShift{Off: 0}, // X = IP header length
	bpf.LoadIndirect{Off: 0, Size: 2},
	bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 67, SkipTrue: 3},
	bpf.LoadIndirect{Off: 2, Size: 2},
	bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 68, SkipTrue: 1},
	bpf.RetConstant{Val: 0xffff},
	bpf.RetConstant{Val: 0},
})

func mustAssemble(ins []bpf.Instruction) []unix.SockFilter {
	raw, err := bpf.Assemble(ins)
	if err != nil {
		panic(err)
	}
	out := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		out[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	return out
}

// htons converts to network byte order for the protocol fields.
func htons(v uint16) uint16 { return v<<8 | v>>8 }

func openSocket(o Options) (fd, index int, err error) {
	open := func() error {
		ifi, err := net.InterfaceByName(o.Interface)
		if err != nil {
			return err
		}
		index = ifi.Index
		// Non-blocking: the socket waits in Go's poller, not in a thread
		// blocked in recvfrom (a receive timeout woke the daemon ten times
		// a second, and each wake-up took a scheduler hand-off).
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return fmt.Errorf("packet socket: %w", err)
		}
		fail := func(what string, e error) error { unix.Close(fd); return fmt.Errorf("%s: %w", what, e) }
		prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
		if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &prog); err != nil {
			return fail("attach filter", err)
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: index}); err != nil {
			return fail("bind", err)
		}
		mr := unix.PacketMreq{Ifindex: int32(index), Type: unix.PACKET_MR_PROMISC}
		if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mr); err != nil {
			return fail("promiscuous", err)
		}
		return nil
	}
	if o.Namespace != nil {
		err = inNamespace(*o.Namespace, open)
	} else {
		err = open()
	}
	return fd, index, err
}

// inNamespace runs fn on a thread of its own inside ns; the thread ends
// with the goroutine (still locked), so it never returns to the pool in
// the wrong namespace. The socket fn opens works from any thread.
func inNamespace(ns netns.NsHandle, fn func() error) error {
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := netns.Set(ns); err != nil {
			ch <- err
			return
		}
		ch <- fn()
	}()
	return <-ch
}

func watchOnce(ctx context.Context, o Options, mac net.HardwareAddr, report func(Report)) error {
	fd, index, err := openSocket(o)
	if err != nil {
		return err
	}
	// A pollable file: reads wait in the poller until a frame or the
	// deadline (the next probe, or now when ctx ends).
	f := os.NewFile(uintptr(fd), "dhcpwatch:"+o.Interface)
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { f.SetReadDeadline(time.Now()) })
	defer stop()
	probe, err := discover(mac)
	if err != nil {
		return err
	}
	to := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IP), Ifindex: index, Halen: 6, Addr: [8]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
	buf := make([]byte, 2048)
	var next time.Time
	for ctx.Err() == nil {
		if now := time.Now(); !now.Before(next) {
			var serr error
			if err := rc.Write(func(fd uintptr) bool {
				serr = unix.Sendto(int(fd), probe, 0, to)
				return !errors.Is(serr, unix.EAGAIN)
			}); err != nil {
				serr = err
			}
			if serr != nil {
				return fmt.Errorf("send DHCPDISCOVER on %s: %w", o.Interface, serr)
			}
			next = wake.Next(now, o.Every) // on the daemon's beat (hw/wake)
			report(Report{At: now, Listening: true})
			f.SetReadDeadline(next)
			if ctx.Err() != nil {
				break // ended between the check and the deadline
			}
		}
		var (
			n    int
			from unix.Sockaddr
			rerr error
		)
		err := rc.Read(func(fd uintptr) bool {
			n, from, rerr = unix.Recvfrom(int(fd), buf, 0)
			return !errors.Is(rerr, unix.EAGAIN)
		})
		if err == nil {
			err = rerr
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, unix.EINTR) {
				continue // time to probe, or ctx ended
			}
			return fmt.Errorf("receive on %s: %w", o.Interface, err)
		}
		ll, ok := from.(*unix.SockaddrLinklayer)
		if !ok || ll.Pkttype == unix.PACKET_OUTGOING {
			continue // our own server's replies (and our probes)
		}
		s, ok := parseReply(buf[:n])
		if !ok {
			continue
		}
		s.MAC = net.HardwareAddr(ll.Addr[:min(int(ll.Halen), 8)])
		s.At = time.Now()
		report(Report{At: s.At, Listening: true, Sighting: &s})
	}
	return ctx.Err()
}

// discover is our probe as an IPv4 packet: 0.0.0.0:68 -> 255.255.255.255:67.
func discover(mac net.HardwareAddr) ([]byte, error) {
	d, err := dhcpv4.NewDiscovery(mac, dhcpv4.WithBroadcast(true))
	if err != nil {
		return nil, err
	}
	d.HWType = iana.HWTypeIEEE802
	payload := d.ToBytes()
	pkt := make([]byte, 28+len(payload))
	ip := pkt[:20]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(len(pkt)))
	ip[8] = 64 // TTL
	ip[9] = 17 // UDP
	copy(ip[16:20], net.IPv4bcast.To4())
	binary.BigEndian.PutUint16(ip[10:], checksum(ip))
	udp := pkt[20:28]
	binary.BigEndian.PutUint16(udp[0:], dhcpv4.ClientPort)
	binary.BigEndian.PutUint16(udp[2:], dhcpv4.ServerPort)
	binary.BigEndian.PutUint16(udp[4:], uint16(8+len(payload)))
	// UDP checksum 0: none (RFC 768), allowed over IPv4.
	copy(pkt[28:], payload)
	return pkt, nil
}

func checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// parseReply reads a server reply out of an IPv4 packet.
func parseReply(pkt []byte) (Sighting, bool) {
	if len(pkt) < 20 || pkt[0]>>4 != 4 {
		return Sighting{}, false
	}
	hl := int(pkt[0]&0xf) * 4
	if len(pkt) < hl+8 {
		return Sighting{}, false
	}
	m, err := dhcpv4.FromBytes(pkt[hl+8:])
	if err != nil || m.OpCode != dhcpv4.OpcodeBootReply {
		return Sighting{}, false
	}
	var typ string
	switch m.MessageType() {
	case dhcpv4.MessageTypeOffer:
		typ = "OFFER"
	case dhcpv4.MessageTypeAck:
		typ = "ACK"
	case dhcpv4.MessageTypeNak:
		typ = "NAK"
	default:
		return Sighting{}, false
	}
	src, _ := netip.AddrFromSlice(pkt[12:16])
	s := Sighting{Server: src, Type: typ}
	if id := m.ServerIdentifier(); id != nil {
		if a, ok := netip.AddrFromSlice(id.To4()); ok && !a.IsUnspecified() {
			s.Server = a
		}
	}
	return s, true
}
