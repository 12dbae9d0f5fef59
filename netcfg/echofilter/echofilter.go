// Package echofilter is the socket filter that lets a raw ICMP socket
// see only the echo replies to its own requests.
//
// A raw IPv4 ICMP socket (raw(7), "ip4:icmp") receives a copy of every
// ICMP packet the host gets. The daemon has two: the node probe (power/
// probe) and the DHCP server's ping check (netcfg/dhcpd). Without a
// filter each reads, and throws away, the other's replies: with 1024
// nodes probed once a second that is 1024 needless reads a second, and on
// an idle head an extra wake-up per reply (hw/wake). The kernel runs the
// filter before queueing, so nothing else reaches the socket.
//
// The filter sees what the socket would read: the IPv4 header (its
// length in the low nibble of the first byte, RFC 791), then the ICMP
// message: type 0 (echo reply) and the identifier at offset 4 (RFC 792).
package echofilter

import (
	"net"

	"golang.org/x/net/bpf"
	"golang.org/x/net/ipv4"
)

// Replies returns the classic BPF program passing echo replies with
// identifier id, whole, and nothing else.
func Replies(id uint16) []bpf.RawInstruction {
	prog, err := bpf.Assemble([]bpf.Instruction{
		bpf.LoadMemShift{Off: 0},          // X = IPv4 header length
		bpf.LoadIndirect{Off: 0, Size: 1}, // ICMP type
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 0, SkipTrue: 3},
		bpf.LoadIndirect{Off: 4, Size: 2}, // identifier
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: uint32(id), SkipTrue: 1},
		bpf.RetConstant{Val: 0xffff},
		bpf.RetConstant{Val: 0},
	})
	if err != nil {
		panic(err) // a constant program: only a bug gets here
	}
	return prog
}

// Attach sets the filter on a raw ICMP socket (net.ListenPacket
// "ip4:icmp"). The caller may go on without it: it only saves work.
func Attach(c net.PacketConn, id uint16) error {
	return ipv4.NewPacketConn(c).SetBPF(Replies(id))
}
