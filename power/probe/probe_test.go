package probe_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/headnode/headnode/power/probe"
	"github.com/headnode/headnode/power/probe/probelab"
)

func TestICMPAndTCP(t *testing.T) {
	l := probelab.New(t)
	ns, node := l.Head, l.Node
	addrs := []netip.Addr{netip.MustParseAddr("10.77.0.2"), netip.MustParseAddr("10.77.9.9"), netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("10.77.0.2")}
	p := l.Prober(t, "icmp")
	for round := range 3 {
		got, err := p.Round(context.Background(), addrs, time.Now().Add(300*time.Millisecond))
		if err != nil || fmt.Sprint(got) != "[true false true true]" {
			t.Errorf("icmp round %d: %v %v", round, got, err)
		}
	}
	// Another list: the socket's index of addresses follows it.
	if got, err := p.Round(context.Background(), addrs[1:3], time.Now().Add(300*time.Millisecond)); err != nil || fmt.Sprint(got) != "[false true]" {
		t.Errorf("icmp round with another list: %v %v", got, err)
	}
	// TCP: a listener is an answer, and so is a refused connection
	// (127.0.0.1: the kernel is up, nothing listens); silence is not.
	ln, err := node.Listen("10.77.0.2:2222")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	tcp := &probe.TCP{Port: 2222, Parallel: 4, Dial: func(ctx context.Context, _, addr string) (net.Conn, error) {
		dl, _ := ctx.Deadline()
		return ns.Dial(addr, net.Dialer{Deadline: dl})
	}}
	got, _ := tcp.Round(context.Background(), addrs, time.Now().Add(300*time.Millisecond))
	if fmt.Sprint(got) != "[true false true true]" {
		t.Errorf("tcp: %v", got)
	}
	if p, err := probe.New("none"); p != nil || err != nil {
		t.Errorf("none: %v %v", p, err)
	}
}
