package daemon

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
	"github.com/headnode/headnode/cmd/headnode/internal/config"
	"github.com/headnode/headnode/netcfg/dnsd"
)

// The local names come from the state, first claim first: the head, the
// boards' nodes, [[nodes]], static leases, then leases; a lease that
// calls itself p1 does not take p1's name, and an offer or a name that is
// not a label is not served.
func TestDNSRecordsFromTheState(t *testing.T) {
	cfg := config.Default()
	// The parts see the address the subnet choice resolved "auto" to.
	cfg.Network.ClusterAddress = "192.168.50.1/24"
	cfg.Nodes = []config.Node{{Name: "p5", Address: "192.168.50.55"}}
	cfg.DHCP.Static = []config.DHCPStatic{{MAC: "02:00:00:00:00:01", Name: "nas", Address: "192.168.50.5"}, {MAC: "02:00:00:00:00:02", Name: "p6"}}
	st := &state{cfg: cfg, dns: dnsState{head: dnsd.Record{Name: "pi", Addr: netip.MustParseAddr("192.168.50.1")}}}
	st.status.Power.Nodes = []api.Node{{Name: "p1", Address: "192.168.50.11"}, {Name: "p2"}}
	st.status.DHCP.Leases = []api.Lease{
		{Address: "192.168.50.128", Hostname: "p1"},
		{Address: "192.168.50.129", Hostname: "builder"},
		{Address: "192.168.50.130", Hostname: "laptop", Offered: true},
		{Address: "192.168.50.131"},
	}
	got := fmt.Sprint(dnsRecords(st))
	want := "[{pi 192.168.50.1} {p1 192.168.50.11} {p5 192.168.50.55} {nas 192.168.50.5} {p6 192.168.50.16} {p1 192.168.50.128} {builder 192.168.50.129}]"
	if got != want {
		t.Errorf("records\n got %s\nwant %s", got, want)
	}
	srv, err := dnsd.New(dnsd.Options{Domain: "cluster.home.arpa", Subnet: netip.MustParsePrefix("192.168.50.0/24")})
	if err != nil {
		t.Fatal(err)
	}
	srv.SetRecords(dnsRecords(st))
	if got := fmt.Sprint(srv.Records()); got != "[{pi 192.168.50.1} {p1 192.168.50.11} {p5 192.168.50.55} {nas 192.168.50.5} {p6 192.168.50.16} {builder 192.168.50.129}]" {
		t.Errorf("served: %s", got)
	}
	// The head is the nodes' resolver while DNS runs, unless [dhcp] dns
	// names others; the domain goes with it.
	head := netip.MustParseAddr("192.168.50.1")
	if got := fmt.Sprint(dnsSource(cfg, head)(), " ", dnsDomain(cfg)); got != "[192.168.50.1] cluster.home.arpa" {
		t.Errorf("DHCP hands out %s", got)
	}
	cfg.DHCP.DNS = []string{"192.168.1.53"}
	if got := fmt.Sprint(dnsSource(cfg, head)()); got != "[192.168.1.53]" {
		t.Errorf("with [dhcp] dns: %s", got)
	}
	cfg.DNS.Enabled = false
	cfg.DHCP.DNS = nil
	if got := dnsDomain(cfg); got != "" {
		t.Errorf("domain without DNS: %q", got)
	}
}
