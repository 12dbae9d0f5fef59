package dnsd

import (
	"context"
	"net"
	"testing"

	"github.com/miekg/dns"
)

// BenchmarkLocalAnswer is the work of one local query after the library
// has parsed it: the answer built and packed.
func BenchmarkLocalAnswer(b *testing.B) {
	s := newServer(b, func(o *Options) { o.Rate, o.Burst = 1e12, 1<<40 })
	q := query("p1.cluster.home.arpa", dns.TypeA)
	b.ReportAllocs()
	for b.Loop() {
		r := s.Answer(context.Background(), q, node, false)
		if _, err := r.Pack(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUDPRoundTrip is one local query over loopback UDP through the
// library's server, as a node's query arrives: socket, goroutine, parse,
// answer, pack, send.
func BenchmarkUDPRoundTrip(b *testing.B) {
	s := newServer(b, func(o *Options) { o.Rate, o.Burst = 1e12, 1<<40 })
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: s, UDPSize: 4096}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ActivateAndServe()
	<-started
	defer srv.Shutdown()
	c, err := net.Dial("udp4", pc.LocalAddr().String())
	if err != nil {
		b.Fatal(err)
	}
	co := &dns.Conn{Conn: c}
	q := query("p1.cluster.home.arpa", dns.TypeA)
	b.ReportAllocs()
	for b.Loop() {
		if err := co.WriteMsg(q); err != nil {
			b.Fatal(err)
		}
		if _, err := co.ReadMsg(); err != nil {
			b.Fatal(err)
		}
	}
}
