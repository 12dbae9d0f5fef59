package dnsd

// The service's sockets in throwaway network namespaces:
//
//	node (n0 192.168.50.11) -- c0 192.168.50.1 [head] u0 10.99.0.2 -- (o0 10.99.0.1) outside

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/headnode/headnode/netcfg/sandbox"
	"github.com/headnode/headnode/netcfg/sandbox/sandboxtest"
)

// askFrom sends one A query for name from ns to server over network
// ("udp" or "tcp") and returns the answer, or nil when none came within
// 300 ms.
func askFrom(t *testing.T, ns *sandbox.NS, network, server, name string) *dns.Msg {
	t.Helper()
	var conn net.Conn
	err := ns.Do(func() error {
		var err error
		conn, err = net.DialTimeout(network+"4", server, 300*time.Millisecond)
		return err
	})
	if err != nil {
		return nil // TCP: refused or unreachable
	}
	defer conn.Close()
	co := &dns.Conn{Conn: conn}
	co.SetDeadline(time.Now().Add(300 * time.Millisecond))
	if err := co.WriteMsg(query(name, dns.TypeA)); err != nil {
		return nil
	}
	r, err := co.ReadMsg()
	if err != nil {
		return nil
	}
	return r
}

func TestKernelServiceFollowsTheInterface(t *testing.T) {
	sandboxtest.Need(t)
	prefix := fmt.Sprintf("hnd%d", os.Getpid())
	var head, node, out *sandbox.NS
	for _, p := range []struct {
		ns   **sandbox.NS
		name string
	}{{&head, "h"}, {&node, "n"}, {&out, "o"}} {
		ns, err := sandbox.New(prefix + p.name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ns.Close() })
		*p.ns = ns
	}
	cluster := func() {
		for _, err := range []error{sandbox.Veth(head, "c0", node, "n0"), head.AddAddr("c0", "192.168.50.1/24"), node.AddAddr("n0", "192.168.50.11/24")} {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	cluster()
	for _, err := range []error{sandbox.Veth(head, "u0", out, "o0"), head.AddAddr("u0", "10.99.0.2/24"), out.AddAddr("o0", "10.99.0.1/24"), out.Route("192.168.50.0/24", "10.99.0.2")} {
		if err != nil {
			t.Fatal(err)
		}
	}
	srv := newServer(t, nil)
	reports := make(chan Status, 100)
	svc := NewService(srv, ServiceOptions{Interface: "c0", Address: netip.MustParseAddr("192.168.50.1"), Loopback: netip.MustParseAddr("127.0.1.53"),
		Report: func(s Status) {
			select {
			case reports <- s:
			default:
			}
		}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		head.Do(func() error { svc.Run(ctx); return nil }) // its sockets in head
	}()
	defer func() { cancel(); <-done }()
	waitState := func(want string) Status {
		t.Helper()
		deadline := time.After(3 * time.Second)
		for {
			select {
			case s := <-reports:
				if s.State == want {
					return s
				}
			case <-deadline:
				t.Fatalf("service not %s: %+v", want, svc.Status())
			}
		}
	}
	index := func() int {
		l, err := head.NL.LinkByName("c0")
		if err != nil {
			t.Fatal(err)
		}
		return l.Attrs().Index
	}
	s := waitState(StateWaiting)
	if len(s.Listening) != 1 || s.Listening[0] != "127.0.1.53:53" {
		t.Errorf("waiting, listening on %v; want loopback only", s.Listening)
	}
	svc.SetTarget(Target{Index: index(), HasAddress: true})
	waitState(StateServing)
	for _, network := range []string{"udp", "tcp"} {
		if r := askFrom(t, node, network, "192.168.50.1:53", "p1"); r == nil || answerText(r) != "NOERROR A 192.168.50.11" {
			t.Errorf("%s from the node: %v", network, r)
		}
		if r := askFrom(t, head, network, "127.0.1.53:53", "p1"); r == nil || answerText(r) != "NOERROR A 192.168.50.11" {
			t.Errorf("%s on the head's loopback: %v", network, r)
		}
		// From the uplink side, to either of the head's addresses: the
		// cluster sockets are bound to c0, so nothing is answered.
		for _, to := range []string{"10.99.0.2:53", "192.168.50.1:53"} {
			if r := askFrom(t, out, network, to, "p1"); r != nil {
				t.Errorf("%s from the uplink side to %s answered: %v", network, to, r)
			}
		}
	}
	// A name whose compression pointer points at itself, and one of 320
	// bytes: FORMERR from the library (or nothing), counted, never a
	// crash or a hang.
	over := []byte{0x12, 0x35, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0}
	for range 5 {
		over = append(append(over, 63), make([]byte, 63)...)
	}
	for _, pkt := range [][]byte{{0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 0x0c, 0, 1, 0, 1}, append(over, 0, 0, 1, 0, 1)} {
		var c net.Conn
		if err := node.Do(func() error { var err error; c, err = net.Dial("udp4", "192.168.50.1:53"); return err }); err != nil {
			t.Fatal(err)
		}
		c.Write(pkt)
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		b := make([]byte, 512)
		if n, err := c.Read(b); err == nil {
			m := new(dns.Msg)
			if m.Unpack(b[:n]) == nil && m.Rcode != dns.RcodeFormatError {
				t.Errorf("a malformed query got %s", dns.RcodeToString[m.Rcode])
			}
		}
		c.Close()
	}
	if n := srv.Stats().Queries[OutcomeMalformed]; n != 2 {
		t.Errorf("malformed queries counted %d, want 2", n)
	}
	if r := askFrom(t, node, "udp", "192.168.50.1:53", "p1"); r == nil {
		t.Error("no answer after the malformed queries")
	}

	// The interface is re-created (a USB gadget replugged): a new index
	// re-opens the sockets on it.
	l, _ := head.NL.LinkByName("c0")
	if err := head.NL.LinkDel(l); err != nil {
		t.Fatal(err)
	}
	svc.SetTarget(Target{})
	waitState(StateWaiting)
	cluster()
	svc.SetTarget(Target{Index: index(), HasAddress: true})
	waitState(StateServing)
	if r := askFrom(t, node, "udp", "192.168.50.1:53", "p1.cluster.home.arpa"); r == nil || answerText(r) != "NOERROR A 192.168.50.11" {
		t.Errorf("after the interface came back: %v", r)
	}
}
