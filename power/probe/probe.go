// Package probe tells whether nodes answer on the network, for many nodes
// at once and cheaply: one ICMP socket sends an echo request to every node
// and collects the replies (no goroutine or socket per ping), or a TCP
// connect to a port, where a refused connection counts as an answer (the
// node's kernel is up).
package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"

	"github.com/headnode/headnode/netcfg/echofilter"
)

// Prober runs one probe round: every address is asked once, and the
// answer is whether it answered before the deadline.
type Prober interface {
	Round(ctx context.Context, addrs []netip.Addr, deadline time.Time) ([]bool, error)
	Close() error
}

// Parse reads a probe setting: "icmp", "tcp:PORT" or "none" (nil).
func Parse(s string) (kind string, port int, err error) {
	switch {
	case s == "icmp", s == "none":
		return s, 0, nil
	case strings.HasPrefix(s, "tcp:"):
		p, err := strconv.Atoi(strings.TrimPrefix(s, "tcp:"))
		if err != nil || p < 1 || p > 65535 {
			return "", 0, fmt.Errorf("%q has no valid port; write it like \"tcp:22\"", s)
		}
		return "tcp", p, nil
	}
	return "", 0, fmt.Errorf("%q is not valid; use \"icmp\", \"tcp:PORT\" (e.g. \"tcp:22\") or \"none\"", s)
}

// New returns the prober for a setting from Parse; nil for "none".
func New(s string) (Prober, error) {
	kind, port, err := Parse(s)
	if err != nil {
		return nil, err
	}
	switch kind {
	case "icmp":
		p, err := NewICMP()
		if err != nil {
			return nil, err // not a typed nil in the interface
		}
		return p, nil
	case "tcp":
		return &TCP{Port: port, Parallel: 64}, nil
	}
	return nil, nil
}

// ICMP pings over one socket: a raw ICMP socket when allowed (root or
// CAP_NET_RAW), else an unprivileged ping socket (SOCK_DGRAM, needs the
// group in net.ipv4.ping_group_range).
type ICMP struct {
	conn net.PacketConn
	raw  bool
	id   int
	seq  int
	buf  []byte
	// addrs is the last round's list; index maps each address to its
	// places in it and dsts to its socket address.
	addrs []netip.Addr
	index map[netip.Addr][]int
	dsts  map[netip.Addr]net.Addr
	// batch sends and reads up to batchSize messages per system call
	// (sendmmsg, recvmmsg); nil where that is not available.
	batch *ipv4.PacketConn
	out   []ipv4.Message // one per address, for the round's request
	in    []ipv4.Message // replies, each with its own buffer
	// noBatchRead: recvmmsg failed on this socket (collect's own).
	noBatchRead bool
}

// batchSize is how many messages one sendmmsg or recvmmsg carries: a
// thousand nodes are 16 system calls each way instead of a thousand.
const batchSize = 64

// recvBuffer holds the replies of a whole round arriving at once (about
// 1 KiB of kernel memory each): 1024 nodes overflow the default 208 KiB.
const recvBuffer = 2 << 20

// NewICMP opens the socket.
func NewICMP() (*ICMP, error) {
	p := &ICMP{buf: make([]byte, 1500)}
	c, err := net.ListenPacket("ip4:icmp", "0.0.0.0")
	if err == nil {
		p.conn, p.raw, p.id = c, true, os.Getpid()&0xffff
	} else {
		var err2 error
		if p.conn, err2 = pingSocket(); err2 != nil {
			return nil, fmt.Errorf("cannot open an ICMP socket (raw: %v; unprivileged: %v); run as root or allow the group in net.ipv4.ping_group_range, or use probe = \"tcp:22\"", err, err2)
		}
	}
	if sc, ok := p.conn.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			rc.Control(func(fd uintptr) {
				// Beyond net.core.rmem_max needs CAP_NET_ADMIN (the
				// daemon has it for iptables); else take what we get.
				if syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, recvBuffer) != nil {
					syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, recvBuffer)
				}
			})
		}
	}
	p.batch = ipv4.NewPacketConn(p.conn)
	if p.raw {
		// Only our replies: a raw socket sees every ICMP packet, the
		// DHCP ping check's replies too. Without the filter the replies
		// are still told apart below, at a cost.
		echofilter.Attach(p.conn, uint16(p.id))
	}
	p.in = make([]ipv4.Message, batchSize)
	for i := range p.in {
		p.in[i].Buffers = [][]byte{make([]byte, 1500)}
	}
	return p, nil
}

// pingSocket opens an unprivileged ICMP socket (Linux "ping socket"). The
// kernel sets the echo identifier to the socket's own and delivers only
// the replies that match it.
func pingSocket() (net.PacketConn, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, syscall.IPPROTO_ICMP)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "icmp")
	defer f.Close()
	return net.FilePacketConn(f)
}

// Close closes the socket.
func (p *ICMP) Close() error { return p.conn.Close() }

// Round implements Prober: one echo request per address, then replies are
// collected until every address answered or the deadline passed. The
// replies are read while the requests go out, so a large round does not
// overflow the socket.
func (p *ICMP) Round(ctx context.Context, addrs []netip.Addr, deadline time.Time) ([]bool, error) {
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	p.seq = (p.seq + 1) & 0xffff
	msg, err := (&icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: p.id, Seq: p.seq, Data: []byte("headnode")}}).Marshal(nil)
	if err != nil {
		return nil, err
	}
	// The probe loop asks the same addresses every round: the index of
	// a thousand of them is made once.
	if p.index == nil || !slices.Equal(addrs, p.addrs) {
		p.index = make(map[netip.Addr][]int, len(addrs))
		for i, a := range addrs {
			p.index[a] = append(p.index[a], i)
		}
		p.addrs = slices.Clone(addrs)
		p.dsts = make(map[netip.Addr]net.Addr, len(p.index))
		p.out = p.out[:0]
		for a := range p.index {
			p.dsts[a] = p.dst(a)
			p.out = append(p.out, ipv4.Message{Addr: p.dsts[a]})
		}
	}
	index := p.index
	answered := make([]bool, len(addrs))
	if err := p.conn.SetReadDeadline(deadline); err != nil {
		return answered, err
	}
	readErr := make(chan error, 1)
	go func() { readErr <- p.collect(ctx, index, answered) }()
	sendErr := p.send(msg)
	err = <-readErr
	// The deadline's timer would fire after a round that ended early
	// (every node answered): a wake-up for nothing (hw/wake).
	p.conn.SetReadDeadline(time.Time{})
	if err != nil {
		return answered, err
	}
	return answered, sendErr
}

// send sends msg to every address of the round, batchSize a system call
// where the socket allows, else one by one.
func (p *ICMP) send(msg []byte) error {
	var sendErr error
	one := func(dst net.Addr) {
		if _, err := p.conn.WriteTo(msg, dst); err != nil && sendErr == nil {
			// An unreachable network is an answer of sorts (no), not a
			// reason to stop asking the others.
			if !errors.Is(err, syscall.ENETUNREACH) && !errors.Is(err, syscall.EHOSTUNREACH) {
				sendErr = err
			}
		}
	}
	for i := range p.out {
		p.out[i].Buffers = [][]byte{msg}
	}
	for sent := 0; sent < len(p.out); {
		end := min(sent+batchSize, len(p.out))
		n := 0
		if p.batch != nil {
			n, _ = p.batch.WriteBatch(p.out[sent:end], 0)
		}
		if n <= 0 {
			// No batch, or the first message failed (an unreachable
			// address): this one alone says why, the rest go on.
			one(p.out[sent].Addr)
			n = 1
		}
		sent += n
	}
	return sendErr
}

// collect reads replies into answered until all are in or the deadline.
func (p *ICMP) collect(ctx context.Context, index map[netip.Addr][]int, answered []bool) error {
	left := len(index)
	take := func(b []byte, from net.Addr) {
		src, ok := addrOf(from)
		if !ok {
			return
		}
		// A raw socket's batch read keeps the IPv4 header (version 4
		// in the first nibble; an ICMP type is never 0x4_).
		if len(b) >= 20 && b[0]>>4 == 4 {
			if ihl := int(b[0]&0x0f) * 4; ihl <= len(b) {
				b = b[ihl:]
			}
		}
		idx, ok := index[src]
		if !ok || answered[idx[0]] || !p.isReply(b) {
			return
		}
		for _, i := range idx {
			answered[i] = true
		}
		left--
	}
	for left > 0 && ctx.Err() == nil && p.batch != nil && !p.noBatchRead {
		n, err := p.batch.ReadBatch(p.in, 0)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return nil
			}
			p.noBatchRead = true // not on this socket: one at a time below
			break
		}
		for _, m := range p.in[:n] {
			take(m.Buffers[0][:m.N], m.Addr)
		}
	}
	for left > 0 && ctx.Err() == nil {
		n, from, err := p.conn.ReadFrom(p.buf)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return nil
			}
			return err
		}
		take(p.buf[:n], from)
	}
	return nil
}

// isReply checks an echo reply to this round; on a raw socket replies to
// other programs' pings arrive too.
func (p *ICMP) isReply(b []byte) bool {
	// Type 0 (echo reply), then checksum, identifier, sequence.
	if len(b) < 8 || b[0] != 0 {
		return false
	}
	id := int(b[4])<<8 | int(b[5])
	seq := int(b[6])<<8 | int(b[7])
	return seq == p.seq && (id == p.id || !p.raw)
}

func (p *ICMP) dst(a netip.Addr) net.Addr {
	if p.raw {
		return &net.IPAddr{IP: a.AsSlice()}
	}
	return &net.UDPAddr{IP: a.AsSlice()}
}

func addrOf(a net.Addr) (netip.Addr, bool) {
	var ip net.IP
	switch a := a.(type) {
	case *net.IPAddr:
		ip = a.IP
	case *net.UDPAddr:
		ip = a.IP
	default:
		return netip.Addr{}, false
	}
	x, ok := netip.AddrFromSlice(ip)
	return x.Unmap(), ok
}

// TCP connects to Port on each address, Parallel at a time.
type TCP struct {
	Port     int
	Parallel int
	// Dial connects; nil uses a net.Dialer (tests dial inside a network
	// namespace).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Round implements Prober. A refused connection is an answer: the node's
// kernel is up, only nothing listens.
func (t *TCP) Round(ctx context.Context, addrs []netip.Addr, deadline time.Time) ([]bool, error) {
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	answered := make([]bool, len(addrs))
	sem := make(chan struct{}, max(1, t.Parallel))
	var wg sync.WaitGroup
	for i, a := range addrs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			dial := t.Dial
			if dial == nil {
				dial = (&net.Dialer{}).DialContext
			}
			c, err := dial(ctx, "tcp", netip.AddrPortFrom(a, uint16(t.Port)).String())
			if err == nil {
				c.Close()
			}
			answered[i] = err == nil || errors.Is(err, syscall.ECONNREFUSED)
		})
	}
	wg.Wait()
	return answered, nil
}

// Close implements Prober.
func (t *TCP) Close() error { return nil }
