package console

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/headnode/headnode/hw/usbtty"
	"github.com/headnode/headnode/power/nodename"
)

// How a head node tells which node a USB serial device belongs to, as the
// vendor's Raspberry Pi OS images do with udev rules (repository
// burtyb/clusterhat-image):
//
//   - Nodes running those images today (ClusterHAT and ClusterCTRL alike)
//     present a composite USB gadget from files/usr/sbin/composite-clusterctrl:
//     vendor 0x3171 (8086 Consultancy), the node's number as its serial
//     number, its console an ACM function on interface 2. The rule in
//     files/etc/udev/rules.d/90-clusterctrl.rules (commit dd66f59, 2026-05)
//     links the tty of vendor 0x3171, product 0x0020-0x0025, interface 02
//     as /dev/ttypi<serial>; interface 04 (ttypi<serial>a) is an admin
//     port, not the console.
//   - Older ClusterHAT images (until 2019) used the kernel's g_cdc gadget
//     (vendor 0x0525, product 0xa4aa), identical on every Zero, so
//     files/etc/udev/rules.d/90-clusterhat.rules (commit 1941b54, removed
//     in c85bfa2) told them apart by USB port path: the ClusterHAT's hub
//     sits on one of the Pi's ports, and its port 1 is P4, 2 is P3, 3 is
//     P2 and 4 is P1. The hub positions it lists are the Pi 3B+'s 1-1.1.2,
//     1-1.1.3, 1-1.3 and 1-1.2, the B+/2/3's 1-1.2 to 1-1.5, and the A+'s
//     1-1 (the hub on its only port).
//
// Anything else (a USB-serial adaptor on a node's UART, another gadget)
// is named per node in the configuration, by device node or, to pin a
// USB port, by its /dev/serial/by-path link.

const (
	vendorClusterCTRL   = 0x3171
	consoleInterface    = 2
	vendorLinuxGadget   = 0x0525
	productCDCComposite = 0xa4aa
)

// hatHubs are the USB port paths of a ClusterHAT's hub in the legacy rule.
var hatHubs = []string{"1-1", "1-1.2", "1-1.3", "1-1.4", "1-1.5", "1-1.1.2", "1-1.1.3"}

// nodeOf returns the node a USB serial device is the console of, and how
// that was found.
func nodeOf(d usbtty.Device) (name, source string, ok bool) {
	if d.Vendor == vendorClusterCTRL && d.Product >= 0x0020 && d.Product <= 0x0025 && d.Interface == consoleInterface {
		n, err := strconv.Atoi(d.Serial)
		if err != nil || n < 1 || n > 252 {
			return "", "", false
		}
		return nodename.Name(n), fmt.Sprintf("USB gadget of node %d at %s", n, d.Port), true
	}
	if d.Vendor == vendorLinuxGadget && d.Product == productCDCComposite {
		i := strings.LastIndexByte(d.Port, '.')
		if i < 0 {
			return "", "", false
		}
		hub, port := d.Port[:i], d.Port[i+1:]
		k, err := strconv.Atoi(port)
		if err != nil || k < 1 || k > 4 || !slices.Contains(hatHubs, hub) {
			return "", "", false
		}
		return nodename.Name(5 - k), fmt.Sprintf("ClusterHAT USB port %s", d.Port), true
	}
	return "", "", false
}

// discover maps the USB serial devices to nodes. When two claim the same
// node, the vendor's current gadget wins over a legacy one, then the
// lower tty name.
func discover(devs []usbtty.Device, baud int) map[string]Device {
	out := map[string]Device{}
	rank := map[string]int{}
	for _, d := range devs {
		name, source, ok := nodeOf(d)
		if !ok {
			continue
		}
		r := 2
		if d.Vendor == vendorClusterCTRL {
			r = 1
		}
		if old, seen := rank[name]; seen && old <= r {
			continue
		}
		rank[name] = r
		out[name] = Device{Path: d.Path, Baud: baud, Source: source}
	}
	return out
}
