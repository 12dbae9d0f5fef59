package dhcpd

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/headnode/headnode/netcfg/sandbox"
	"github.com/headnode/headnode/netcfg/sandbox/sandboxtest"
)

func TestResolversForTheNodes(t *testing.T) {
	dir := t.TempDir()
	file := func(name, text string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(text), 0o644)
		return p
	}
	plain := file("plain", "# from DHCP on eth1\nsearch lan\nnameserver 192.168.1.1\nnameserver fe80::1%eth1\nnameserver 192.168.1.1\nnameserver 9.9.9.9\n")
	stub := file("stub", "nameserver 127.0.0.53\noptions edns0 trust-ad\n")
	upstream := file("upstream", "nameserver 10.0.0.53\n")
	head := netip.MustParseAddr("192.168.50.1")
	fallback := []netip.Addr{netip.MustParseAddr("1.1.1.1")}
	for _, tc := range []struct {
		what   string
		files  []string
		serves bool
		want   string
	}{
		{"the uplink's resolvers, IPv4 only, once each", []string{plain, upstream}, false, "[192.168.1.1 9.9.9.9]"},
		{"systemd-resolved's stub: its upstream servers", []string{stub, upstream}, false, "[10.0.0.53]"},
		{"only a local stub, and DNS served on the head", []string{stub, filepath.Join(dir, "missing")}, true, "[192.168.50.1]"},
		{"only a local stub, nothing on the head", []string{stub}, false, "[1.1.1.1]"},
		{"no resolv.conf at all", []string{filepath.Join(dir, "missing")}, false, "[1.1.1.1]"},
	} {
		src := DNSSource{ResolvConf: tc.files, Head: head, Fallback: fallback, ServesDNS: func(a netip.Addr) bool { return tc.serves && a == head }}
		if got := fmt.Sprint(src.Resolvers()); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.what, got, tc.want)
		}
	}
}

// servesDNS asks a real socket: a DNS server answering on the head's
// address counts; a closed port does not.
func TestKernelServesDNS(t *testing.T) {
	sandboxtest.Need(t)
	ns, err := sandbox.New(fmt.Sprintf("hndns%d", os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	if err := ns.AddAddr("lo", "192.168.50.1/32"); err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddr("192.168.50.1")
	check := func() (ok bool) {
		ns.Do(func() error { ok = servesDNS(a); return nil })
		return ok
	}
	if check() {
		t.Error("a closed port 53 counts as a DNS server")
	}
	var pc net.PacketConn
	if err := ns.Do(func() (err error) { pc, err = net.ListenPacket("udp4", "192.168.50.1:53"); return err }); err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			buf[2] |= 0x80 // a response; REFUSED would do as well
			buf[3] |= 5
			pc.WriteTo(buf[:n], from)
		}
	}()
	if !check() {
		t.Error("a DNS server answering on the head is not seen")
	}
}

// The stamp stays while the files do, and changes when one is rewritten
// in place, replaced by a rename (as resolvconf and NetworkManager do),
// or appears.
func TestResolvConfStamp(t *testing.T) {
	dir := t.TempDir()
	f, missing := filepath.Join(dir, "resolv.conf"), filepath.Join(dir, "later.conf")
	os.WriteFile(f, []byte("nameserver 192.168.1.1\n"), 0o644)
	src := DNSSource{ResolvConf: []string{f, missing}}
	s0 := src.Stamp()
	if s1 := src.Stamp(); s1 != s0 {
		t.Fatalf("stamp changed with nothing changed: %q, %q", s0, s1)
	}
	os.WriteFile(f, []byte("nameserver 192.168.1.2\nnameserver 9.9.9.9\n"), 0o644)
	s1 := src.Stamp()
	if s1 == s0 {
		t.Errorf("rewritten in place, same stamp %q", s1)
	}
	tmp := filepath.Join(dir, "new")
	os.WriteFile(tmp, []byte("nameserver 192.168.1.3\nnameserver 9.9.9.9\n"), 0o644)
	os.Rename(tmp, f)
	s2 := src.Stamp()
	if s2 == s1 {
		t.Errorf("replaced by a rename, same stamp %q", s2)
	}
	os.WriteFile(missing, nil, 0o644)
	if s3 := src.Stamp(); s3 == s2 {
		t.Errorf("a file that appeared, same stamp %q", s3)
	}
}
