package dhcpd_test

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/headnode/headnode/netcfg/dhcpd"
	"github.com/insomniacslk/dhcp/dhcpv4"
)

// A head node at 192.168.50.1/24 that leases .128-.254 and keeps .11 for
// node p1. On the Pi, the daemon runs it with
//
//	conn, err := dhcpd.Listen("eth0")
//	...
//	srv.Serve(ctx, conn)
//
// Here one request is answered in memory: a Pi Zero calling itself p1.
func Example() {
	srv, err := dhcpd.New(&dhcpd.Options{
		Address:      netip.MustParsePrefix("192.168.50.1/24"),
		PoolFirst:    netip.MustParseAddr("192.168.50.128"),
		PoolLast:     netip.MustParseAddr("192.168.50.254"),
		Reservations: []dhcpd.Reservation{{Name: "p1", Addr: netip.MustParseAddr("192.168.50.11")}},
	})
	if err != nil {
		panic(err)
	}
	mac, _ := net.ParseMAC("b8:27:eb:00:00:01")
	discover, _ := dhcpv4.NewDiscovery(mac, dhcpv4.WithOption(dhcpv4.OptHostName("p1")))
	reply := srv.Handle(discover.ToBytes())
	offer, _ := dhcpv4.FromBytes(reply.Packet)
	fmt.Println(reply.Summary, "via", reply.To)
	fmt.Println("name", offer.HostName(), "router", offer.Router()[0], "lease", offer.IPAddressLeaseTime(0))
	// Output:
	// OFFER 192.168.50.11 to b8:27:eb:00:00:01 via 255.255.255.255:68
	// name p1 router 192.168.50.1 lease 1h0m0s
}
