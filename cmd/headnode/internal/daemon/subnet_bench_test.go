package daemon

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/headnode/headnode/cmd/headnode/internal/config"
	"github.com/headnode/headnode/netcfg/dhcpd"
	"github.com/headnode/headnode/netcfg/subnet"
)

// staticDoc is a configuration pinning n machines by MAC, half to node
// names (their addresses by the layout) and half to addresses of their
// own, with cluster_address = "auto".
func staticDoc(n int) []byte {
	var b strings.Builder
	b.WriteString("[subnet]\nnodes = 0\n")
	for i := range n {
		fmt.Fprintf(&b, "[[dhcp.static]]\nmac = \"02:00:00:00:%02x:%02x\"\n", i>>8, i&0xff)
		if i%2 == 0 {
			fmt.Fprintf(&b, "name = \"p%d\"\n", i+1)
		} else {
			fmt.Fprintf(&b, "name = \"m%d\"\naddress = \"10.213.%d.%d\"\n", i, 4+i/250, 1+i%250)
		}
	}
	return []byte(b.String())
}

// loadStatic is what the daemon does with the file at start: parse and
// validate it, choose the subnet, reserve every machine and node, and
// build the DHCP server.
func loadStatic(tb testing.TB, doc []byte) int {
	cfg, err := config.Parse(doc, "bench.toml")
	if err != nil {
		tb.Fatal(err)
	}
	l, err := subnet.Choose(nil, cfg.Subnet.CandidatePrefixes(), cfg.NodeCount(), netip.Prefix{})
	if err != nil {
		tb.Fatal(err)
	}
	cfg.Network.ClusterAddress = l.Head.String()
	first, last, err := cfg.DHCP.PoolRange(l.Head)
	if err != nil {
		tb.Fatal(err)
	}
	rs := dhcpReservations(cfg, l.Head, first, last)
	if _, err := dhcpd.New(&dhcpd.Options{Address: l.Head, PoolFirst: first, PoolLast: last, Reservations: rs, LeaseTime: time.Hour}); err != nil {
		tb.Fatal(err)
	}
	return len(rs)
}

// A thousand static leases are a /21 (p1-p1013 below the pool), each
// machine reserved and accepted by the server.
func TestThousandStaticLeases(t *testing.T) {
	doc := staticDoc(1000)
	cfg, err := config.Parse(doc, "t.toml")
	if err != nil {
		t.Fatal(err)
	}
	if bits, _ := subnet.Size(cfg.NodeCount()); bits != 21 {
		t.Errorf("%d nodes: /%d, want /21", cfg.NodeCount(), bits)
	}
	start := time.Now()
	n := loadStatic(t, doc)
	// 500 pinned to addresses, 500 to node names, and every other node
	// of the 1013 reserved by name.
	if n != 1000+(1013-500) {
		t.Errorf("%d reservations", n)
	}
	t.Logf("1000 static leases: parsed, laid out and loaded into the DHCP server in %v", time.Since(start).Round(time.Microsecond))
}

// BenchmarkStaticLeases measures loading [[dhcp.static]] tables from
// the configuration file to a running server's reservations.
func BenchmarkStaticLeases(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		doc := staticDoc(n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				loadStatic(b, doc)
			}
		})
	}
}
