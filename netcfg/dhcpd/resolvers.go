package dhcpd

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"
)

// DNSSource decides which resolvers the nodes get when none are
// configured. Nodes reach the outside through the head's NAT, so the
// resolvers the head itself uses upstream work for them too.
type DNSSource struct {
	// ResolvConf lists resolv.conf files in order of preference; nil
	// means /etc/resolv.conf, then systemd-resolved's upstream list.
	ResolvConf []string
	// Head is the head's cluster address, handed out when the head's only
	// resolver is a local stub and something serves DNS on Head.
	Head netip.Addr
	// Fallback is used when nothing else is known.
	Fallback []netip.Addr
	// ServesDNS reports whether a DNS server answers at an address; nil
	// sends a real query.
	ServesDNS func(netip.Addr) bool
}

// DefaultResolvConf: the file programs use, then the one where
// systemd-resolved lists the upstream servers behind its 127.0.0.53 stub.
var DefaultResolvConf = []string{"/etc/resolv.conf", "/run/systemd/resolve/resolv.conf"}

// Resolvers returns the IPv4 resolvers to hand out: the first
// non-loopback nameservers found in ResolvConf; else the head itself if
// it serves DNS on its cluster address; else Fallback.
func (d DNSSource) Resolvers() []netip.Addr {
	files := d.ResolvConf
	if files == nil {
		files = DefaultResolvConf
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var out []netip.Addr
		for _, a := range nameservers(b) {
			if a.Is4() && !a.IsLoopback() && !a.IsUnspecified() && !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
		if len(out) > 0 {
			return out
		}
	}
	serves := d.ServesDNS
	if serves == nil {
		serves = servesDNS
	}
	if d.Head.IsValid() && serves(d.Head) {
		return []netip.Addr{d.Head}
	}
	return slices.Clone(d.Fallback)
}

// Stamp identifies what the ResolvConf files hold now without reading
// them: each one's device, inode, size and modification time (a
// resolv.conf is replaced by a rename or rewritten in place; either
// changes the stamp). While it stays the same, so does what Resolvers
// reads from the files, and a caller asking every second need not read
// and parse them every second.
func (d DNSSource) Stamp() string {
	files := d.ResolvConf
	if files == nil {
		files = DefaultResolvConf
	}
	var b strings.Builder
	for _, f := range files {
		var st syscall.Stat_t
		if err := syscall.Stat(f, &st); err != nil {
			b.WriteString("-;")
			continue
		}
		fmt.Fprintf(&b, "%d:%d:%d:%d.%d;", st.Dev, st.Ino, st.Size, st.Mtim.Sec, st.Mtim.Nsec)
	}
	return b.String()
}

// nameservers parses the nameserver lines of a resolv.conf.
func nameservers(b []byte) []netip.Addr {
	var out []netip.Addr
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || f[0] != "nameserver" {
			continue
		}
		// An IPv6 nameserver may carry a zone ("fe80::1%eth1").
		if a, err := netip.ParseAddr(f[1]); err == nil {
			out = append(out, a.Unmap())
		}
	}
	return out
}

// servesDNS sends one DNS query (the root's NS records) to a:53 and
// reports whether any DNS answer comes back within half a second. A
// refusal or an error code still proves a server is there.
func servesDNS(a netip.Addr) bool {
	c, err := net.DialTimeout("udp", netip.AddrPortFrom(a, 53).String(), 500*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	// Header: id 0x6864, flags RD, one question; question: root, NS, IN.
	q := []byte{0x68, 0x64, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1}
	if _, err := c.Write(q); err != nil {
		return false
	}
	c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	buf := make([]byte, 512)
	n, err := c.Read(buf)
	return err == nil && n >= 12 && buf[0] == 0x68 && buf[1] == 0x64 && buf[2]&0x80 != 0
}
