package main

// The soak's DHCP flood: a node's DHCP client keeps its lease while
// DISCOVERs from thousands of random MACs arrive from the cluster side.

import (
	"crypto/rand"
	"net"
	"sync"
	"time"

	"github.com/headnode/headnode/netcfg/dhcpd"
	"github.com/insomniacslk/dhcp/dhcpv4"
)

const hostileDHCPFlood = "DHCP flood from random MACs (6000 DISCOVERs from a node) while a known node renews"

// dhcpFloodRow floods the daemon's DHCP server from the inside namespace
// and checks that a known node (one that got its lease first) has its
// renewal answered meanwhile. It returns how long the renewal took and
// whether it was answered.
func (r *soakRig) dhcpFloodRow() (time.Duration, bool, string) {
	var conn net.PacketConn
	if err := r.tp.inside.Do(func() (err error) { conn, err = dhcpd.ListenClient("in0"); return err }); err != nil {
		return 0, false, "client socket: " + err.Error()
	}
	defer conn.Close()
	bcast := &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ServerPort}
	known := net.HardwareAddr{0x02, 0x5a, 0x0a, 0, 0, 1}
	// exchange sends m until a reply with its xid and type want comes, or
	// d passes.
	exchange := func(m *dhcpv4.DHCPv4, want dhcpv4.MessageType, d time.Duration) *dhcpv4.DHCPv4 {
		deadline := time.Now().Add(d)
		buf := make([]byte, 1500)
		for time.Now().Before(deadline) {
			conn.WriteTo(m.ToBytes(), bcast)
			conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			for {
				n, _, err := conn.ReadFrom(buf)
				if err != nil {
					break
				}
				if p, err := dhcpv4.FromBytes(buf[:n]); err == nil && p.TransactionID == m.TransactionID && p.MessageType() == want {
					return p
				}
			}
		}
		return nil
	}
	disc, _ := dhcpv4.NewDiscovery(known, dhcpv4.WithBroadcast(true))
	offer := exchange(disc, dhcpv4.MessageTypeOffer, 5*time.Second)
	if offer == nil {
		return 0, true, "" // DHCP not serving just now (a fault): nothing to measure
	}
	req, _ := dhcpv4.NewRequestFromOffer(offer, dhcpv4.WithBroadcast(true))
	if exchange(req, dhcpv4.MessageTypeAck, 5*time.Second) == nil {
		return 0, true, ""
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		mac := make(net.HardwareAddr, 6)
		for range 6000 {
			rand.Read(mac)
			mac[0] = mac[0]&^1 | 2
			d, _ := dhcpv4.NewDiscovery(mac, dhcpv4.WithBroadcast(true))
			conn.WriteTo(d.ToBytes(), bcast)
		}
	})
	// Renew (INIT-REBOOT, as a rebooting node does) in the middle of it.
	time.Sleep(20 * time.Millisecond)
	start := time.Now()
	renew, _ := dhcpv4.New(dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest), dhcpv4.WithHwAddr(known), dhcpv4.WithBroadcast(true),
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(offer.YourIPAddr)))
	ack := exchange(renew, dhcpv4.MessageTypeAck, 5*time.Second)
	took := time.Since(start)
	wg.Wait()
	if ack == nil || !ack.YourIPAddr.Equal(offer.YourIPAddr) {
		return took, false, "the known node's renewal was not answered during the flood"
	}
	return took, true, ""
}
