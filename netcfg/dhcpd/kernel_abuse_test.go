package dhcpd

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/headnode/headnode/netcfg/dhcpd/dhcptest"
	"github.com/headnode/headnode/netcfg/sandbox"
)

// The ping check: a machine squatting on the first pool address (set by
// hand, no lease) answers ping, so a real client is offered the next one;
// the squatted address stays out of use.
func TestKernelPingCheckSkipsAnAddressInUse(t *testing.T) {
	l := newLab(t)
	srv, _ := l.serveWith(&Options{}, true)
	squatter := l.node("02:00:00:00:05:01")
	if err := squatter.AddAddr("in0", "192.168.50.128/24"); err != nil {
		t.Fatal(err)
	}
	got, err := dhcptest.Udhcpc(l.node("02:00:00:00:05:02"), "in0", dhcptest.Options{Dir: l.clientDir()})
	if err != nil {
		t.Fatal(err)
	}
	if got.Address.Addr().String() != "192.168.50.129" {
		t.Errorf("client got %v next to a machine using 192.168.50.128 without a lease; want 192.168.50.129", got.Address)
	}
	// Another client meanwhile: .128 stays out.
	got2, err := dhcptest.Dhclient(l.node("02:00:00:00:05:03"), "in0", dhcptest.Options{Dir: l.clientDir()})
	if err != nil {
		t.Fatal(err)
	}
	if got2.Address.Addr().String() == "192.168.50.128" {
		t.Errorf("the squatted address was offered")
	}
	st := srv.Stats()
	if st.PingInUse != 1 || st.PingChecks < 3 || st.PingErrors != 0 {
		t.Errorf("ping checks: %+v; want 1 in use of 3 or more", st)
	}
}

// A real relay agent (ISC dhcrelay) between a client and the cluster
// network: the request arrives with giaddr set and the answer goes back
// through the relay, which hands it to the client.
//
//	client (in0) --- (down0 192.168.50.250/32) relay (up0 192.168.50.2/24) --- br0 [head]
func TestKernelRelayedClientIsServedThroughTheRelay(t *testing.T) {
	l := newLab(t)
	srv, _ := l.serve(&Options{})
	dhcptest.NeedCommand(t, "dhcrelay", "isc-dhcp-relay")
	relay := l.node("02:00:00:00:06:01")
	l.seq++
	client, err := sandbox.New(fmt.Sprintf("%sn%d", l.head.Name[:len(l.head.Name)-1], l.seq))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	if err := sandbox.Veth(relay, "down0", client, "in0"); err != nil {
		t.Fatal(err)
	}
	if err := relay.AddAddr("in0", "192.168.50.2/24"); err != nil {
		t.Fatal(err)
	}
	if err := relay.AddAddr("down0", "192.168.50.250/32"); err != nil {
		t.Fatal(err)
	}
	cmd := relay.Command("dhcrelay", "-4", "-d", "--no-pid", "-id", "down0", "-iu", "in0", "192.168.50.1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	time.Sleep(300 * time.Millisecond) // dhcrelay opens its sockets
	got, err := dhcptest.Udhcpc(client, "in0", dhcptest.Options{Dir: l.clientDir()})
	if err != nil {
		t.Fatal(err)
	}
	if got.Address != netip.MustParsePrefix("192.168.50.128/24") || got.Router != "192.168.50.1" {
		t.Errorf("relayed client got %+v", got)
	}
	if st := srv.Stats(); st.Relayed < 2 || st.Acks != 1 {
		t.Errorf("stats: %+v; want the DISCOVER and REQUEST relayed, one ACK", st)
	}
}
