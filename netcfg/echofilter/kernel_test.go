package echofilter

import (
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"

	"github.com/headnode/headnode/netcfg/sandbox"
	"github.com/headnode/headnode/netcfg/sandbox/sandboxtest"
)

func TestMain(m *testing.M) { os.Exit(sandboxtest.Run(m)) }

// Two raw ICMP sockets in a throwaway namespace, as the daemon has (the
// node probe and the DHCP ping check), each filtered to its identifier:
// each pings loopback, and each reads its own reply only.
func TestKernelKeepsEachSocketsReplies(t *testing.T) {
	sandboxtest.Need(t)
	ns, err := sandbox.New(fmt.Sprintf("hnef%d", os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	if err := ns.Up("lo"); err != nil {
		t.Fatal(err)
	}
	var conns [2]net.PacketConn
	err = ns.Do(func() error {
		for i := range conns {
			c, err := net.ListenPacket("ip4:icmp", "127.0.0.1")
			if err != nil {
				return err
			}
			conns[i] = c
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ids := [2]uint16{0x1111, 0x2222}
	for i, c := range conns {
		defer c.Close()
		if err := Attach(c, ids[i]); err != nil {
			t.Fatalf("attach: %v", err)
		}
	}
	for i, c := range conns {
		msg, _ := (&icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: int(ids[i]), Seq: 1, Data: []byte("echofilter")}}).Marshal(nil)
		if _, err := c.WriteTo(msg, &net.IPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range conns {
		var got []string
		buf := make([]byte, 1500)
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		for {
			n, _, err := c.ReadFrom(buf)
			if err != nil {
				break
			}
			m, err := icmp.ParseMessage(1, buf[:n])
			if err != nil {
				t.Fatal(err)
			}
			e, _ := m.Body.(*icmp.Echo)
			if e == nil {
				got = append(got, fmt.Sprint(m.Type))
				continue
			}
			got = append(got, fmt.Sprintf("%v id %#x", m.Type, e.ID))
		}
		want := fmt.Sprintf("[echo reply id %#x]", ids[i])
		if fmt.Sprint(got) != want {
			t.Errorf("socket %d read %v, want %s (without the filter: both requests and both replies)", i, got, want)
		}
	}
}
