package daemon

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/headnode/headnode/cmd/headnode/internal/config"
)

func TestClusterSide(t *testing.T) {
	cfg := config.Default()
	cfg.Network.ClusterInterface = "br0"
	cfg.Bridge.Enabled = true
	for _, c := range []struct {
		name   string
		master int
		want   bool
	}{
		{"br0", 0, true}, {"lo", 0, true}, {"ethpi3", 0, true}, {"ethupi1", 0, true},
		{"eth0", 7, true}, // a port of br0 (index 7)
		{"eth0", 0, false}, {"eth1", 0, false}, {"docker0", 0, false}, {"tailscale0", 0, false},
	} {
		if got := clusterSide(cfg, c.name, c.master, 7); got != c.want {
			t.Errorf("clusterSide(%s, master %d) = %v", c.name, c.master, got)
		}
	}
}

func TestFixedClash(t *testing.T) {
	cfg := config.Default()
	cfg.Network.ClusterAddress = "192.168.50.1/24"
	cfg.Network.ClusterInterface = "eth0"
	head := netip.MustParsePrefix(cfg.Network.ClusterAddress)
	lan := inUse{p: netip.MustParsePrefix("192.168.50.0/24"), what: "eth1's network 192.168.50.0/24", addr: true}
	vpn := inUse{p: netip.MustParsePrefix("192.168.0.0/16"), what: "a route to 192.168.0.0/16 via wg0"}
	first := inUse{p: netip.MustParsePrefix("10.213.0.0/16"), what: "docker0's network 10.213.0.0/16", addr: true}
	if got := fixedClash(cfg, head, []inUse{vpn}); got != "" {
		t.Errorf("a route alone refused the address: %s", got)
	}
	got := fixedClash(cfg, head, []inUse{vpn, lan, first})
	want := `network.cluster_address = "192.168.50.1/24": the cluster network 192.168.50.0/24 overlaps eth1's network 192.168.50.0/24, so nothing was changed on eth0; 172.16.231.1/24 is free: use it, or cluster_address = "auto"`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	all := inUse{p: netip.MustParsePrefix("0.0.0.0/1"), what: "a route to 0.0.0.0/1"}
	all2 := inUse{p: netip.MustParsePrefix("128.0.0.0/1"), what: "a route to 128.0.0.0/1"}
	if got := fixedClash(cfg, head, []inUse{lan, all, all2}); !strings.Contains(got, "no candidate is free either") {
		t.Errorf("nothing free: %s", got)
	}
}
