package dnsd

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// FuzzQuery feeds arbitrary packets to the server as a node's UDP query:
// whatever arrives, the server does not panic, and what it sends is a DNS
// answer to that query that fits the client's size. Seeds include a
// compression-pointer loop, a name of 255 bytes and one longer, and ANY.
func FuzzQuery(f *testing.F) {
	for _, q := range []*dns.Msg{query("p1", dns.TypeA), query("11.50.168.192.in-addr.arpa", dns.TypePTR), query("www.example.org", dns.TypeANY)} {
		b, _ := q.Pack()
		f.Add(b)
	}
	long := query(strings.Repeat("a.", 127), dns.TypeA)
	b, _ := long.Pack()
	f.Add(b)
	// A header with one question whose name points at itself (offset 12).
	f.Add([]byte{0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 0x0c, 0, 1, 0, 1})
	// A name of 300 bytes in 63-byte labels, over the 255-byte limit.
	over := []byte{0x12, 0x35, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0}
	for range 5 {
		over = append(over, 63)
		over = append(over, []byte(strings.Repeat("x", 63))...)
	}
	f.Add(append(over, 0, 0, 1, 0, 1))
	s, err := New(Options{Domain: "cluster.home.arpa", Subnet: subnet, Rate: 1e9, Burst: 1 << 30})
	if err != nil {
		f.Fatal(err)
	}
	s.SetRecords([]Record{{Name: "p1", Addr: node}})
	f.Fuzz(func(t *testing.T, pkt []byte) {
		req := new(dns.Msg)
		if err := req.Unpack(pkt); err != nil {
			return // the library drops it or answers FORMERR, before us
		}
		r := s.Answer(context.Background(), req, netip.MustParseAddr("192.168.50.20"), false)
		if r == nil {
			if !req.Response {
				t.Fatalf("no answer to a query %v", req.Question)
			}
			return
		}
		out, err := r.Pack()
		if err != nil {
			t.Fatalf("answer does not pack: %v", err)
		}
		size := dns.MinMsgSize
		if o := req.IsEdns0(); o != nil {
			size = max(dns.MinMsgSize, min(int(o.UDPSize()), 1232))
		}
		if len(out) > size {
			t.Fatalf("answer of %d bytes for a client taking %d", len(out), size)
		}
		if r.Id != req.Id || !r.Response {
			t.Fatalf("answer %d/%v to query %d", r.Id, r.Response, req.Id)
		}
	})
}
