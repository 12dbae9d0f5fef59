package echofilter

import (
	"testing"

	"golang.org/x/net/bpf"
)

// The filter run by x/net's BPF interpreter over hand-made packets: the
// IPv4 header (with and without options), then an ICMP message.
func TestReplies(t *testing.T) {
	vm, err := bpf.NewVM(disassemble(t, Replies(0x1234)))
	if err != nil {
		t.Fatal(err)
	}
	packet := func(ihl int, typ byte, id uint16) []byte {
		p := make([]byte, ihl*4+8)
		p[0] = 0x40 | byte(ihl)
		p[ihl*4] = typ
		p[ihl*4+4], p[ihl*4+5] = byte(id>>8), byte(id)
		return p
	}
	for _, c := range []struct {
		name string
		pkt  []byte
		pass bool
	}{
		{"our echo reply", packet(5, 0, 0x1234), true},
		{"our echo reply, IP options", packet(6, 0, 0x1234), true},
		{"another socket's echo reply", packet(5, 0, 0x4321), false},
		{"an echo request with our id", packet(5, 8, 0x1234), false},
		{"destination unreachable", packet(5, 3, 0x1234), false},
	} {
		n, err := vm.Run(c.pkt)
		if err != nil {
			t.Fatal(err)
		}
		if (n > 0) != c.pass {
			t.Errorf("%s: filter returned %d, want pass=%v", c.name, n, c.pass)
		}
	}
}

func disassemble(t *testing.T, raw []bpf.RawInstruction) []bpf.Instruction {
	ins, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatal("the program does not disassemble")
	}
	return ins
}
