package dhcpd

// Tests with real DHCP clients from Debian (busybox udhcpc, ISC dhclient)
// in throwaway network namespaces, one per node, on a bridge in the head's
// namespace, the ClusterHAT layout:
//
//	node1 (in0) --\
//	node2 (in0) ---+-- br0 192.168.50.1/24 [head: this server]
//	node3 (in0) --/

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/headnode/headnode/netcfg/dhcpd/dhcptest"
	"github.com/headnode/headnode/netcfg/sandbox"
	"github.com/insomniacslk/dhcp/dhcpv4"
)

var writeSeeds = flag.Bool("seeds", false, "write the packets real clients send to testdata/fuzz/FuzzHandler")

type lab struct {
	t    *testing.T
	head *sandbox.NS
	dir  string
	seq  int
}

var labSeq struct {
	sync.Mutex
	n int
}

func newLab(t *testing.T) *lab {
	t.Helper()
	dhcptest.Need(t)
	labSeq.Lock()
	labSeq.n++
	prefix := fmt.Sprintf("hnd%d-%d", os.Getpid(), labSeq.n)
	labSeq.Unlock()
	head, err := sandbox.New(prefix + "h")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { head.Close() })
	if err := head.Bridge("br0"); err != nil {
		t.Fatal(err)
	}
	if err := head.AddAddr("br0", "192.168.50.1/24"); err != nil {
		t.Fatal(err)
	}
	return &lab{t: t, head: head, dir: t.TempDir()}
}

// node adds a node namespace with interface in0 (MAC mac) on the bridge.
func (l *lab) node(mac string) *sandbox.NS {
	l.t.Helper()
	l.seq++
	ns, err := sandbox.New(fmt.Sprintf("%sn%d", l.head.Name[:len(l.head.Name)-1], l.seq))
	if err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() { ns.Close() })
	port := fmt.Sprintf("port%d", l.seq)
	if err := sandbox.Veth(l.head, port, ns, "in0"); err != nil {
		l.t.Fatal(err)
	}
	if err := l.head.Enslave(port, "br0"); err != nil {
		l.t.Fatal(err)
	}
	link, err := ns.NL.LinkByName("in0")
	if err == nil {
		err = ns.NL.LinkSetHardwareAddr(link, mustMAC(mac))
	}
	if err != nil {
		l.t.Fatal(err)
	}
	return ns
}

// recorder keeps every packet the server reads, for the fuzz corpus.
type recorder struct {
	net.PacketConn
	mu   sync.Mutex
	pkts [][]byte
}

func (r *recorder) ReadFrom(b []byte) (int, net.Addr, error) {
	n, a, err := r.PacketConn.ReadFrom(b)
	if err == nil {
		r.mu.Lock()
		r.pkts = append(r.pkts, append([]byte(nil), b[:n]...))
		r.mu.Unlock()
	}
	return n, a, err
}

// serve runs a server on br0 until the returned stop is called.
func (l *lab) serve(o *Options) (*Server, func()) {
	l.t.Helper()
	return l.serveWith(o, false)
}

// serveWith is serve, with the ping check when ping is set.
func (l *lab) serveWith(o *Options, ping bool) (*Server, func()) {
	l.t.Helper()
	o.Address = head
	o.PoolFirst, o.PoolLast = netip.MustParseAddr("192.168.50.128"), netip.MustParseAddr("192.168.50.254")
	o.Reservations = append(nodeReservations(), Reservation{MAC: pinned, Name: "p5", Addr: netip.MustParseAddr("192.168.50.15")})
	s, err := New(o)
	if err != nil {
		l.t.Fatal(err)
	}
	s.SetDNS([]netip.Addr{netip.MustParseAddr("192.168.1.1"), netip.MustParseAddr("9.9.9.9")})
	var conn, icmp net.PacketConn
	if err := l.head.Do(func() (err error) {
		if conn, err = Listen("br0"); err != nil || !ping {
			return err
		}
		icmp, err = ListenICMP()
		return err
	}); err != nil {
		l.t.Fatal(err)
	}
	rec := &recorder{PacketConn: conn}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.ServePing(ctx, rec, icmp) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			l.t.Errorf("Serve: %v", err)
		}
		if *writeSeeds {
			saveSeeds(l.t, rec.pkts)
		}
	}
	l.t.Cleanup(stop)
	return s, stop
}

func saveSeeds(t *testing.T, pkts [][]byte) {
	dir := filepath.Join("testdata", "fuzz", "FuzzHandler")
	os.MkdirAll(dir, 0o755)
	for _, p := range pkts {
		m, err := dhcpv4.FromBytes(p)
		if err != nil {
			continue
		}
		name := fmt.Sprintf("real-%s-%x", strings.ToLower(m.MessageType().String()), p[4:8])
		os.WriteFile(filepath.Join(dir, name), fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", p), 0o644)
	}
	t.Logf("wrote %d seeds to %s", len(pkts), dir)
}

func (l *lab) clientDir() string {
	d, err := os.MkdirTemp(l.dir, "client")
	if err != nil {
		l.t.Fatal(err)
	}
	return d
}

// reach checks that the node can talk to the head from its new address.
func reach(t *testing.T, head, node *sandbox.NS, from netip.Addr) {
	t.Helper()
	ln, err := head.Listen("192.168.50.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	c, err := node.Dial(ln.Addr().String(), net.Dialer{Timeout: 2 * time.Second})
	if err != nil {
		t.Errorf("%s cannot reach the head: %v", node.Name, err)
		return
	}
	defer c.Close()
	if got := c.LocalAddr().(*net.TCPAddr).IP.String(); got != from.String() {
		t.Errorf("%s talks from %s, want its leased %s", node.Name, got, from)
	}
}

func TestKernelRealClientsGetLeases(t *testing.T) {
	l := newLab(t)
	srv, _ := l.serve(&Options{})
	for _, tc := range []struct {
		what, mac, hostname string
		dhclient            bool
		addr, name          string
	}{
		{"udhcpc, unknown machine", "02:00:00:00:01:01", "", false, "192.168.50.128/24", ""},
		{"dhclient, unknown machine", "02:00:00:00:01:02", "", true, "192.168.50.129/24", ""},
		{"dhclient, MAC pinned to p5", pinned.String(), "", true, "192.168.50.15/24", "p5"},
		{"udhcpc, asks as p3", "02:00:00:00:01:03", "p3", false, "192.168.50.13/24", "p3"},
		{"dhclient, ClusterCTRL gadget of p2", gadget2.String(), "", true, "192.168.50.12/24", "p2"},
		{"udhcpc, ClusterCTRL gadget of p4, calls itself p1", "00:22:82:ff:ff:04", "p1", false, "192.168.50.14/24", "p4"},
	} {
		node := l.node(tc.mac)
		run := dhcptest.Udhcpc
		if tc.dhclient {
			run = dhcptest.Dhclient
		}
		got, err := run(node, "in0", dhcptest.Options{Dir: l.clientDir(), Hostname: tc.hostname})
		if err != nil {
			t.Errorf("%s: %v", tc.what, err)
			continue
		}
		want := dhcptest.Lease{Address: netip.MustParsePrefix(tc.addr), Router: "192.168.50.1", DNS: []string{"192.168.1.1", "9.9.9.9"}, Hostname: tc.name, Server: "192.168.50.1", Lease: time.Hour}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.what, got, want)
			continue
		}
		reach(t, l.head, node, got.Address.Addr())
	}
	if n := len(srv.Leases()); n != 6 {
		t.Errorf("%d leases, want 6: %+v", n, srv.Leases())
	}
	if d := srv.Stats().Dropped; len(d) != 0 {
		t.Errorf("real clients' packets were dropped: %v", d)
	}
}

func TestKernelLeasesKeptAcrossRestart(t *testing.T) {
	l := newLab(t)
	file := filepath.Join(l.dir, "state", "dhcp-leases.json")
	_, stop := l.serve(&Options{LeaseFile: file})
	a, b := l.node("02:00:00:00:02:0a"), l.node("02:00:00:00:02:0b")
	dirA, dirB := l.clientDir(), l.clientDir()
	la, err := dhcptest.Dhclient(a, "in0", dhcptest.Options{Dir: dirA})
	if err != nil {
		t.Fatal(err)
	}
	lb, err := dhcptest.Udhcpc(b, "in0", dhcptest.Options{Dir: dirB})
	if err != nil {
		t.Fatal(err)
	}
	stop()

	srv, _ := l.serve(&Options{LeaseFile: file})
	if n := len(srv.Leases()); n != 2 {
		t.Errorf("after the restart the server knows %d leases, want 2", n)
	}
	c := l.node("02:00:00:00:02:0c")
	lc, err := dhcptest.Udhcpc(c, "in0", dhcptest.Options{Dir: l.clientDir()})
	if err != nil {
		t.Fatal(err)
	}
	if lc.Address == la.Address || lc.Address == lb.Address {
		t.Errorf("a new machine got %v after the restart; A has %v, B has %v", lc.Address, la.Address, lb.Address)
	}
	// dhclient remembers its lease and asks for it again (INIT-REBOOT);
	// udhcpc starts from scratch (DISCOVER). Both keep their address.
	if again, err := dhcptest.Dhclient(a, "in0", dhcptest.Options{Dir: dirA}); err != nil || again.Address != la.Address {
		t.Errorf("A after the restart: %+v, %v; want %v", again, err, la.Address)
	}
	if again, err := dhcptest.Udhcpc(b, "in0", dhcptest.Options{Dir: dirB}); err != nil || again.Address != lb.Address {
		t.Errorf("B after the restart: %+v, %v; want %v", again, err, lb.Address)
	}
}

func TestKernelProbeFindsAnotherServer(t *testing.T) {
	l := newLab(t)
	probe := func() netip.Addr {
		var conn net.PacketConn
		if err := l.head.Do(func() (err error) { conn, err = ListenClient("br0"); return err }); err != nil {
			t.Fatal(err)
		}
		a, err := Probe(context.Background(), conn, nil, 600*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	other := l.node("02:00:00:00:03:01")
	if a := probe(); a.IsValid() {
		t.Fatalf("probe found %v on a network without a DHCP server", a)
	}
	if err := other.AddAddr("in0", "192.168.50.254/24"); err != nil {
		t.Fatal(err)
	}
	if _, err := dhcptest.Udhcpd(t, other, "in0", "192.168.50.254", "192.168.50.100", "192.168.50.110", l.clientDir()); err != nil {
		t.Fatal(err)
	}
	if a := probe(); a != netip.MustParseAddr("192.168.50.254") {
		t.Errorf("probe found %v, want the other server 192.168.50.254", a)
	}
}
