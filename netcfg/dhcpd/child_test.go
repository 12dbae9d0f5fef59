package dhcpd

// The server as a process of its own, for the tests that kill it: the
// test binary started again with HEADNODE_DHCPD_CHILD set. It prints one
// line per event the parent checks against the lease file:
//
//	START <leases loaded>
//	ACK <mac> <address>      (after the ACK left Handle)
//	REL <mac>                (after a RELEASE was handled)
//	DECL <mac>               (after a DECLINE was handled)

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

const childEnv = "HEADNODE_DHCPD_CHILD"

// childWriteInterval is the write interval the children run with: the
// crash tests' durability bound scales with it.
const childWriteInterval = 20 * time.Millisecond

func runChild(mode string) int {
	file := os.Getenv("HEADNODE_DHCPD_LEASES")
	o := &Options{
		Address:       netip.MustParsePrefix(os.Getenv("HEADNODE_DHCPD_ADDRESS")),
		LeaseFile:     file,
		WriteInterval: childWriteInterval,
		Limits:        Limits{ClientRate: 1e6, ClientBurst: 1e6, NewRate: 1e6, NewBurst: 1e6},
	}
	o.PoolFirst, o.PoolLast = netip.MustParseAddr(os.Getenv("HEADNODE_DHCPD_FIRST")), netip.MustParseAddr(os.Getenv("HEADNODE_DHCPD_LAST"))
	s, err := New(o)
	if err != nil {
		fmt.Printf("ERR %v\n", err)
		return 2
	}
	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(out, "START %d\n", len(s.Leases()))
	out.Flush()
	switch mode {
	case "churn":
		churn(s, out)
	case "serve":
		// On the interface named, writing an ACK line per ACK sent.
		conn, err := Listen(os.Getenv("HEADNODE_DHCPD_IFACE"))
		if err != nil {
			fmt.Fprintf(out, "ERR %v\n", err)
			out.Flush()
			return 2
		}
		al := &ackLog{PacketConn: conn, out: out}
		if os.Getenv("HEADNODE_DHCPD_STATS") != "" {
			go func() {
				for range time.Tick(time.Second) {
					st := s.Stats()
					al.mu.Lock()
					fmt.Fprintf(out, "STATS %+v\n", st)
					out.Flush()
					al.mu.Unlock()
				}
			}()
		}
		// With the ping check, as the daemon serves.
		icmp, err := ListenICMP()
		if err != nil {
			fmt.Fprintf(out, "ERR %v\n", err)
			out.Flush()
			return 2
		}
		err = s.ServePing(context.Background(), al, icmp)
		fmt.Fprintf(out, "ERR %v\n", err)
		out.Flush()
		return 2
	}
	return 2
}

// churn changes leases as fast as it can until killed: 300 machines on a
// pool smaller than that, getting, releasing and declining addresses.
func churn(s *Server, out *bufio.Writer) {
	go s.keep(context.Background())
	rng := rand.New(rand.NewPCG(uint64(os.Getpid()), uint64(time.Now().UnixNano())))
	held := map[int]string{}
	for {
		i := rng.IntN(300)
		mac := net.HardwareAddr{0x02, 0xc0, 0, 0, byte(i >> 8), byte(i)}
		switch op := rng.IntN(10); {
		case op < 6 || held[i] == "":
			r := s.Handle(discoverPkt(mac))
			if r == nil {
				break
			}
			o, _ := dhcpv4.FromBytes(r.Packet)
			req, _ := dhcpv4.New(dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest), dhcpv4.WithHwAddr(mac),
				dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(o.YourIPAddr)), dhcpv4.WithOption(dhcpv4.OptServerIdentifier(o.ServerIdentifier())))
			if a := s.Handle(req.ToBytes()); a != nil {
				if m, _ := dhcpv4.FromBytes(a.Packet); m.MessageType() == dhcpv4.MessageTypeAck {
					held[i] = m.YourIPAddr.String()
					fmt.Fprintf(out, "ACK %s %s\n", mac, held[i])
					out.Flush()
				}
			}
		case op < 9:
			rel, _ := dhcpv4.New(dhcpv4.WithMessageType(dhcpv4.MessageTypeRelease), dhcpv4.WithHwAddr(mac), dhcpv4.WithClientIP(net.ParseIP(held[i])))
			s.Handle(rel.ToBytes())
			delete(held, i)
			fmt.Fprintf(out, "REL %s\n", mac)
			out.Flush()
		default:
			dec, _ := dhcpv4.New(dhcpv4.WithMessageType(dhcpv4.MessageTypeDecline), dhcpv4.WithHwAddr(mac),
				dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.ParseIP(held[i]))), dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.ParseIP(strings.Split(os.Getenv("HEADNODE_DHCPD_ADDRESS"), "/")[0]))))
			s.Handle(dec.ToBytes())
			delete(held, i)
			fmt.Fprintf(out, "DECL %s\n", mac)
			out.Flush()
		}
		time.Sleep(100 * time.Microsecond)
	}
}

func discoverPkt(mac net.HardwareAddr) []byte {
	d, _ := dhcpv4.NewDiscovery(mac)
	return d.ToBytes()
}

// ackLog writes a line for every ACK the server sends.
type ackLog struct {
	net.PacketConn
	mu  sync.Mutex
	out *bufio.Writer
}

func (a *ackLog) WriteTo(b []byte, to net.Addr) (int, error) {
	n, err := a.PacketConn.WriteTo(b, to)
	a.mu.Lock()
	defer a.mu.Unlock()
	if m, perr := dhcpv4.FromBytes(b); err == nil && perr == nil {
		switch m.MessageType() {
		case dhcpv4.MessageTypeAck:
			fmt.Fprintf(a.out, "ACK %s %s\n", m.ClientHWAddr, m.YourIPAddr)
		case dhcpv4.MessageTypeNak:
			fmt.Fprintf(a.out, "NAK %s\n", m.ClientHWAddr)
		}
		a.out.Flush()
	}
	return n, err
}
