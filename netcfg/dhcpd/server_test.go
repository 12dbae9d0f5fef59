package dhcpd

import (
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

var update = flag.Bool("update", false, "rewrite golden files")

var (
	head    = netip.MustParsePrefix("192.168.50.1/24")
	macA    = mustMAC("02:00:00:00:00:0a")
	macB    = mustMAC("02:00:00:00:00:0b")
	macC    = mustMAC("02:00:00:00:00:0c")
	pinned  = mustMAC("b8:27:eb:00:00:05")
	gadget2 = mustMAC("00:22:82:ff:ff:02")
)

func mustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

// nodeReservations reserves p1..p4 by name at host 10+N, as the daemon
// does for the nodes.
func nodeReservations() []Reservation {
	var rs []Reservation
	for n := 1; n <= 4; n++ {
		rs = append(rs, Reservation{Name: fmt.Sprintf("p%d", n), Addr: netip.AddrFrom4([4]byte{192, 168, 50, byte(10 + n)})})
	}
	return rs
}

// fixture is a server and a client talking to it through Handle. Tests
// in which leases expire run in a synctest bubble, where time.Sleep moves
// the server's clock at once.
type fixture struct {
	t *testing.T
	s *Server
}

func newFixture(t *testing.T, mod func(*Options)) *fixture {
	t.Helper()
	o := &Options{
		Address:   head,
		PoolFirst: netip.MustParseAddr("192.168.50.128"),
		PoolLast:  netip.MustParseAddr("192.168.50.254"),
		Reservations: append(nodeReservations(),
			Reservation{MAC: pinned, Name: "p5", Addr: netip.MustParseAddr("192.168.50.15")},
			Reservation{MAC: macC, Name: "nas", Addr: netip.MustParseAddr("192.168.50.5")}),
	}
	if mod != nil {
		mod(o)
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	s.SetDNS([]netip.Addr{netip.MustParseAddr("192.168.1.1")})
	return &fixture{t: t, s: s}
}

// answer is what a client makes of a reply.
type answer struct {
	Type     string
	Addr     string // yiaddr, "" when none
	To       string
	Router   string
	Mask     string
	DNS      string
	Hostname string
	Lease    time.Duration
	Server   string
	Message  string
}

func (f *fixture) send(m *dhcpv4.DHCPv4) *answer {
	f.t.Helper()
	r := f.s.Handle(m.ToBytes())
	if r == nil {
		return nil
	}
	resp, err := dhcpv4.FromBytes(r.Packet)
	if err != nil {
		f.t.Fatalf("the server sent a packet that does not parse: %v", err)
	}
	if resp.TransactionID != m.TransactionID || resp.ClientHWAddr.String() != m.ClientHWAddr.String() || resp.OpCode != dhcpv4.OpcodeBootReply {
		f.t.Fatalf("reply does not answer the request: %s", resp.Summary())
	}
	a := &answer{Type: resp.MessageType().String(), To: r.To.String(), Hostname: resp.HostName(), Message: resp.Message()}
	if !resp.YourIPAddr.IsUnspecified() {
		a.Addr = resp.YourIPAddr.String()
	}
	if rt := resp.Router(); len(rt) > 0 {
		a.Router = rt[0].String()
	}
	if m := resp.SubnetMask(); m != nil {
		a.Mask = net.IP(m).String()
	}
	var dns []string
	for _, d := range resp.DNS() {
		dns = append(dns, d.String())
	}
	a.DNS = strings.Join(dns, ",")
	a.Lease = resp.IPAddressLeaseTime(0)
	if sid := resp.ServerIdentifier(); sid != nil {
		a.Server = sid.String()
	}
	return a
}

func discover(mac net.HardwareAddr, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	m, err := dhcpv4.NewDiscovery(mac, mods...)
	if err != nil {
		panic(err)
	}
	return m
}

// request builds a DHCPREQUEST: SELECTING with server "192.168.50.1",
// INIT-REBOOT with server "", RENEWING with ciaddr set.
func request(mac net.HardwareAddr, addr, server string, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	all := []dhcpv4.Modifier{dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest), dhcpv4.WithHwAddr(mac), dhcpv4.WithBroadcast(true)}
	if addr != "" {
		all = append(all, dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.ParseIP(addr))))
	}
	if server != "" {
		all = append(all, dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.ParseIP(server))))
	}
	m, err := dhcpv4.New(append(all, mods...)...)
	if err != nil {
		panic(err)
	}
	return m
}

func renew(mac net.HardwareAddr, addr string) *dhcpv4.DHCPv4 {
	m, _ := dhcpv4.New(dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest), dhcpv4.WithHwAddr(mac), dhcpv4.WithClientIP(net.ParseIP(addr)))
	return m
}

func hostname(h string) dhcpv4.Modifier { return dhcpv4.WithOption(dhcpv4.OptHostName(h)) }

// lease runs DISCOVER/OFFER/REQUEST/ACK and returns the address.
func (f *fixture) lease(mac net.HardwareAddr, mods ...dhcpv4.Modifier) string {
	f.t.Helper()
	o := f.send(discover(mac, mods...))
	if o == nil || o.Type != "OFFER" {
		f.t.Fatalf("%v: no offer: %+v", mac, o)
	}
	a := f.send(request(mac, o.Addr, o.Server, mods...))
	if a == nil || a.Type != "ACK" || a.Addr != o.Addr {
		f.t.Fatalf("%v: offered %s, then %+v", mac, o.Addr, a)
	}
	return a.Addr
}

func (f *fixture) dropped(reason string) int64 { return f.s.Stats().Dropped[reason] }

func TestPoolLeaseCarriesTheNetworkSettings(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, nil)
		o := f.send(discover(macA))
		want := &answer{Type: "OFFER", Addr: "192.168.50.128", To: "255.255.255.255:68", Router: "192.168.50.1", Mask: "255.255.255.0", DNS: "192.168.1.1", Lease: time.Hour, Server: "192.168.50.1"}
		if diff := cmp.Diff(want, o); diff != "" {
			t.Errorf("offer (-want +got):\n%s", diff)
		}
		a := f.send(request(macA, o.Addr, o.Server))
		want.Type = "ACK"
		if diff := cmp.Diff(want, a); diff != "" {
			t.Errorf("ack (-want +got):\n%s", diff)
		}
		if got := f.lease(macB); got != "192.168.50.129" {
			t.Errorf("second machine got %s, want the next pool address", got)
		}
		ls := f.s.Leases()
		if len(ls) != 2 || ls[0].MAC.String() != macA.String() || ls[0].Offered || !ls[0].Expires.Equal(time.Now().Add(time.Hour)) {
			t.Errorf("leases: %+v", ls)
		}
		st := f.s.Stats()
		if st.Received != 4 || st.Offers != 2 || st.Acks != 2 || len(st.Dropped) != 0 {
			t.Errorf("stats %+v", st)
		}
	})
}

func TestNodesGetTheirAddressAndName(t *testing.T) {
	f := newFixture(t, nil)
	for _, tc := range []struct {
		what           string
		mac            net.HardwareAddr
		mods           []dhcpv4.Modifier
		addr, hostname string
	}{
		{"MAC pinned to p5", pinned, nil, "192.168.50.15", "p5"},
		{"MAC pinned to an address with a name", macC, nil, "192.168.50.5", "nas"},
		{"ClusterCTRL gadget of p2", gadget2, nil, "192.168.50.12", "p2"},
		{"asks as p3", macA, []dhcpv4.Modifier{hostname("p3")}, "192.168.50.13", "p3"},
		{"asks as p3 too, while p3 holds it", macB, []dhcpv4.Modifier{hostname("p3")}, "192.168.50.128", ""},
		{"asks as p5, which is pinned to another MAC", mustMAC("02:00:00:00:00:99"), []dhcpv4.Modifier{hostname("p5")}, "192.168.50.129", ""},
		{"asks as p9, which is not a reserved node", mustMAC("02:00:00:00:00:98"), []dhcpv4.Modifier{hostname("p9")}, "192.168.50.130", ""},
	} {
		o := f.send(discover(tc.mac, tc.mods...))
		if o == nil || o.Addr != tc.addr || o.Hostname != tc.hostname {
			t.Errorf("%s: offer %+v, want %s named %q", tc.what, o, tc.addr, tc.hostname)
			continue
		}
		a := f.send(request(tc.mac, o.Addr, o.Server, tc.mods...))
		if a == nil || a.Type != "ACK" || a.Addr != tc.addr || a.Hostname != tc.hostname {
			t.Errorf("%s: ack %+v", tc.what, a)
		}
	}
	// A node that named itself in its DISCOVER but not in its REQUEST
	// still gets what it was offered.
	o := f.send(discover(mustMAC("02:00:00:00:00:44"), hostname("p4")))
	a := f.send(request(mustMAC("02:00:00:00:00:44"), o.Addr, o.Server))
	if o.Addr != "192.168.50.14" || a == nil || a.Type != "ACK" || a.Addr != o.Addr || a.Hostname != "p4" {
		t.Errorf("p4 without its name in the REQUEST: offer %+v, then %+v", o, a)
	}
	// A pinned machine asking for another address is told no, with its
	// own: it starts over and gets it.
	n := f.send(request(pinned, "192.168.50.200", ""))
	if n == nil || n.Type != "NAK" || !strings.Contains(n.Message, "yours is 192.168.50.15") || n.To != "255.255.255.255:68" {
		t.Errorf("pinned machine asking for another address: %+v", n)
	}
}

func TestMachinesKeepTheirAddress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, nil)
		a := f.lease(macA)
		time.Sleep(2 * time.Hour) // expired
		b := f.lease(macB)
		if b == a {
			t.Fatalf("a new machine got %s, the address another machine had", a)
		}
		if again := f.lease(macA); again != a {
			t.Errorf("machine A came back and got %s, want its old %s", again, a)
		}
		// Renewing: unicast to the client's address, lease extended.
		time.Sleep(30 * time.Minute)
		r := f.send(renew(macA, a))
		if r == nil || r.Type != "ACK" || r.Addr != a || r.To != a+":68" {
			t.Errorf("renewal: %+v", r)
		}
		if l := f.s.Leases()[0]; !l.Expires.Equal(time.Now().Add(time.Hour)) {
			t.Errorf("renewal did not extend the lease: %+v", l)
		}
	})
}

func TestFullPoolReusesTheLongestExpired(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, func(o *Options) {
			o.PoolFirst, o.PoolLast = netip.MustParseAddr("192.168.50.200"), netip.MustParseAddr("192.168.50.201")
		})
		a := f.lease(macA)
		time.Sleep(time.Minute)
		b := f.lease(macB)
		if r := f.send(discover(mustMAC("02:00:00:00:00:0d"))); r != nil || f.dropped(DropPoolExhausted) != 1 {
			t.Fatalf("third machine with a full pool: %+v, drops %v", r, f.s.Stats().Dropped)
		}
		time.Sleep(time.Hour) // A expired first, then B
		if got := f.lease(mustMAC("02:00:00:00:00:0d")); got != a {
			t.Errorf("third machine got %s, want %s (expired longest ago)", got, a)
		}
		// Full again (B comes back for its address); a release frees an
		// address at once.
		if got := f.lease(macB); got != b {
			t.Fatalf("B came back to %s, want %s", got, b)
		}
		if r := f.send(discover(mustMAC("02:00:00:00:00:0e"))); r != nil {
			t.Fatalf("fourth machine with a full pool: %+v", r)
		}
		rel, _ := dhcpv4.New(dhcpv4.WithMessageType(dhcpv4.MessageTypeRelease), dhcpv4.WithHwAddr(macB), dhcpv4.WithClientIP(net.ParseIP(b)))
		f.send(rel)
		if got := f.lease(mustMAC("02:00:00:00:00:0e")); got != b {
			t.Errorf("after B released %s, the fourth machine got %s", b, got)
		}
	})
}

func TestAuthoritativeAnswers(t *testing.T) {
	f := newFixture(t, nil)
	a := f.lease(macA)
	for _, tc := range []struct {
		what string
		m    *dhcpv4.DHCPv4
		want string
	}{
		{"another machine's address", request(macB, a, ""), "NAK"},
		{"an address of another network", request(macB, "10.0.0.5", ""), "NAK"},
		{"an address outside the pool", request(macB, "192.168.50.50", ""), "NAK"},
		{"the head's own address", request(macB, "192.168.50.1", ""), "NAK"},
		{"a free pool address after a restart (INIT-REBOOT)", request(macB, "192.168.50.140", ""), "ACK"},
	} {
		r := f.send(tc.m)
		if r == nil || r.Type != tc.want {
			t.Errorf("%s: %+v, want %s", tc.what, r, tc.want)
		}
	}
	if st := f.s.Stats(); st.Naks != 4 {
		t.Errorf("naks %d, want 4", st.Naks)
	}
}

func TestAnotherServerChosen(t *testing.T) {
	f := newFixture(t, nil)
	o := f.send(discover(macA))
	if r := f.send(request(macA, "192.168.50.77", "192.168.50.254")); r != nil {
		t.Fatalf("answered a request for another server: %+v", r)
	}
	st := f.s.Stats()
	if st.Dropped[DropOtherServer] != 1 || st.OtherServer != netip.MustParseAddr("192.168.50.254") {
		t.Errorf("stats %+v", st)
	}
	if len(f.s.Leases()) != 0 {
		t.Errorf("our offer of %s was not withdrawn: %+v", o.Addr, f.s.Leases())
	}
}

func TestReleaseAndDecline(t *testing.T) {
	f := newFixture(t, nil)
	a := f.lease(macA)
	rel, _ := dhcpv4.New(dhcpv4.WithMessageType(dhcpv4.MessageTypeRelease), dhcpv4.WithHwAddr(macA), dhcpv4.WithClientIP(net.ParseIP(a)))
	if r := f.send(rel); r != nil || len(f.s.Leases()) != 0 {
		t.Errorf("release: reply %+v, leases %+v", r, f.s.Leases())
	}
	if got := f.lease(macA); got != a {
		t.Errorf("after release, same machine got %s, want %s", got, a)
	}
	dec, _ := dhcpv4.New(dhcpv4.WithMessageType(dhcpv4.MessageTypeDecline), dhcpv4.WithHwAddr(macA),
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.ParseIP(a))), dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.ParseIP("192.168.50.1"))))
	f.send(dec)
	if got := f.lease(macB); got == a {
		t.Errorf("declined address %s offered again at once", a)
	}
	if got := f.lease(macA); got == a {
		t.Errorf("declined address %s offered to the decliner again", a)
	}
	// A decline of a lease the client does not hold changes nothing.
	f.send(dec)
	if f.dropped(DropUnknownLease) != 1 {
		t.Errorf("drops %v", f.s.Stats().Dropped)
	}
}

func TestInform(t *testing.T) {
	f := newFixture(t, nil)
	m, _ := dhcpv4.NewInform(macA, net.ParseIP("192.168.50.7"))
	r := f.send(m)
	if r == nil || r.Type != "ACK" || r.Addr != "" || r.Lease != 0 || r.To != "192.168.50.7:68" || r.Router != "192.168.50.1" {
		t.Errorf("inform: %+v", r)
	}
	if len(f.s.Leases()) != 0 {
		t.Error("an INFORM created a lease")
	}
}

func TestLeasesSurviveARestart(t *testing.T) {
	file := filepath.Join(t.TempDir(), "state", "dhcp-leases.json")
	f := newFixture(t, func(o *Options) { o.LeaseFile = file })
	a := f.lease(macA, hostname("builder"))
	p3 := f.lease(macB, hostname("p3"))
	if err := f.s.Flush(); err != nil {
		t.Fatal(err)
	}

	g := newFixture(t, func(o *Options) { o.LeaseFile = file })
	ls := g.s.Leases()
	if len(ls) != 2 || ls[0].Addr.String() != p3 || ls[1].Addr.String() != a || ls[1].Hostname != "builder" || ls[0].Hostname != "p3" || !ls[0].Reserved {
		t.Fatalf("leases after restart: %+v", ls)
	}
	if got := g.lease(macC, hostname("other")); got == a {
		t.Errorf("after a restart a new machine got %s, which A holds", a)
	}
	if got := g.lease(mustMAC("02:00:00:00:00:0e")); got == a {
		t.Errorf("after a restart a new machine got %s, which A holds", a)
	}
	r := g.send(request(macA, a, "")) // INIT-REBOOT
	if r == nil || r.Type != "ACK" || r.Addr != a {
		t.Errorf("A rebooting after the restart: %+v", r)
	}
}

func TestDamagedLeaseFileStartsEmpty(t *testing.T) {
	file := filepath.Join(t.TempDir(), "dhcp-leases.json")
	os.WriteFile(file, []byte("{not json"), 0o644)
	s, err := New(&Options{Address: head, PoolFirst: netip.MustParseAddr("192.168.50.128"), PoolLast: netip.MustParseAddr("192.168.50.254"), LeaseFile: file})
	if s == nil || err == nil || !strings.Contains(err.Error(), "starting without the old leases") {
		t.Fatalf("New with a damaged file: %v, %v", s, err)
	}
}

func TestUnwritableLeaseFileIsReportedNotFatal(t *testing.T) {
	// Root ignores permissions; a path through a regular file fails for
	// everyone.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "file"), nil, 0o644)
	s, err := New(&Options{Address: head, PoolFirst: netip.MustParseAddr("192.168.50.128"), PoolLast: netip.MustParseAddr("192.168.50.254"), LeaseFile: filepath.Join(dir, "file", "leases.json")})
	if s == nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, s: s}
	if got := f.lease(macA); got != "192.168.50.128" {
		t.Errorf("got %s", got)
	}
	if err := f.s.Flush(); err == nil {
		t.Error("Flush to a path through a file worked")
	}
	if st := f.s.Stats(); !strings.Contains(st.SaveError, "not a directory") {
		t.Errorf("a failed save is not reported: %+v", st)
	}
}

func TestBadPacketsAreDroppedAndCounted(t *testing.T) {
	f := newFixture(t, nil)
	good := discover(macA).ToBytes()
	mutate := func(fn func(b []byte) []byte) []byte { return fn(append([]byte(nil), good...)) }
	relayed := discover(macA, dhcpv4.WithGatewayIP(net.ParseIP("10.1.1.1"))).ToBytes()
	noType := discover(macA, dhcpv4.WithoutOption(dhcpv4.OptionDHCPMessageType)).ToBytes()
	offer := discover(macA, dhcpv4.WithMessageType(dhcpv4.MessageTypeOffer)).ToBytes()
	tokenRing := discover(macA, dhcpv4.WithHWType(iana.HWTypeIEEE802)).ToBytes()
	for _, tc := range []struct {
		what   string
		pkt    []byte
		reason string
	}{
		{"empty", nil, DropMalformed},
		{"truncated header", good[:100], DropMalformed},
		{"wrong magic cookie", mutate(func(b []byte) []byte { b[236] = 0; return b }), DropMalformed},
		{"option running past the end", mutate(func(b []byte) []byte { return append(b[:240], 12, 200, 'x') }), DropMalformed},
		{"a reply, not a request", mutate(func(b []byte) []byte { b[0] = 2; return b }), DropNotRequest},
		{"token ring", tokenRing, DropNotEthernet},
		{"hardware length 16", mutate(func(b []byte) []byte { b[2] = 16; return b }), DropNotEthernet},
		{"relayed from another network", relayed, DropRelayed},
		{"no message type", noType, DropMessageType},
		{"an OFFER sent to the server", offer, DropMessageType},
	} {
		before := f.dropped(tc.reason)
		if r := f.s.Handle(tc.pkt); r != nil {
			t.Errorf("%s: answered with %s", tc.what, r.Summary)
		}
		if f.dropped(tc.reason) != before+1 {
			t.Errorf("%s: not counted as %q: %v", tc.what, tc.reason, f.s.Stats().Dropped)
		}
	}
	if len(f.s.Leases()) != 0 {
		t.Errorf("bad packets created leases: %+v", f.s.Leases())
	}
	// Junk in the host name is neither recorded nor shown.
	f.lease(macB, hostname("evil\x1b[2Jname"))
	if l := f.s.Leases()[0]; l.Hostname != "" {
		t.Errorf("recorded host name %q", l.Hostname)
	}
}

func TestConflictingReservationsNameBoth(t *testing.T) {
	base := Options{Address: head, PoolFirst: netip.MustParseAddr("192.168.50.128"), PoolLast: netip.MustParseAddr("192.168.50.254")}
	for _, tc := range []struct {
		rs   []Reservation
		want string
	}{
		{[]Reservation{{MAC: macA, Addr: netip.MustParseAddr("192.168.50.5")}, {MAC: macA, Addr: netip.MustParseAddr("192.168.50.6")}},
			"reservation 1 (02:00:00:00:00:0a 192.168.50.6): MAC 02:00:00:00:00:0a is also in reservation 0 (02:00:00:00:00:0a 192.168.50.5)"},
		{[]Reservation{{MAC: macA, Addr: netip.MustParseAddr("192.168.50.5")}, {MAC: macB, Addr: netip.MustParseAddr("192.168.50.5")}},
			"reservation 1 (02:00:00:00:00:0b 192.168.50.5): address 192.168.50.5 is also in reservation 0 (02:00:00:00:00:0a 192.168.50.5)"},
		{[]Reservation{{MAC: macA, Addr: netip.MustParseAddr("10.0.0.5")}},
			"reservation 0 (02:00:00:00:00:0a 10.0.0.5): 10.0.0.5 is not a host address of 192.168.50.0/24"},
		{[]Reservation{{Name: "nas", Addr: netip.MustParseAddr("192.168.50.5")}},
			"reservation 0 (nas 192.168.50.5): a reservation without a MAC address needs a node name (pN)"},
	} {
		o := base
		o.Reservations = tc.rs
		if _, err := New(&o); err == nil || err.Error() != tc.want {
			t.Errorf("got %v\nwant %s", err, tc.want)
		}
	}
}

// The wire format of an OFFER, pinned: what a client on the cluster sees
// byte for byte.
func TestOfferGolden(t *testing.T) {
	f := newFixture(t, nil)
	m := discover(pinned, dhcpv4.WithTransactionID(dhcpv4.TransactionID{0xde, 0xad, 0xbe, 0xef}))
	r := f.s.Handle(m.ToBytes())
	if r == nil {
		t.Fatal("no offer")
	}
	golden := filepath.Join("testdata", "offer-p5.hex")
	got := fmt.Sprintf("%x\n", r.Packet)
	if *update {
		os.WriteFile(golden, []byte(got), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		resp, _ := dhcpv4.FromBytes(r.Packet)
		t.Errorf("offer differs from %s; it is now:\n%s", golden, resp.Summary())
	}
}
