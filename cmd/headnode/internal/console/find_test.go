package console

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/headnode/headnode/hw/emu/gadget"
	"github.com/headnode/headnode/hw/usbtty"
)

// Lines of the vendor's udev rules (burtyb/clusterhat-image), as the
// expected answers: files/etc/udev/rules.d/90-clusterhat.rules at commit
// 1941b54, one hub position of each Pi model it covers.
const legacyRules = `
SUBSYSTEM=="tty", KERNELS=="1-1.1.2.1", ATTRS{idProduct}=="a4aa", ATTRS{idVendor}=="0525", SYMLINK+="ttypi4"
SUBSYSTEM=="tty", KERNELS=="1-1.1.2.4", ATTRS{idProduct}=="a4aa", ATTRS{idVendor}=="0525", SYMLINK+="ttypi1"
SUBSYSTEM=="tty", KERNELS=="1-1.1.3.2", ATTRS{idProduct}=="a4aa", ATTRS{idVendor}=="0525", SYMLINK+="ttypi3"
SUBSYSTEM=="tty", KERNELS=="1-1.3.3", ATTRS{idProduct}=="a4aa", ATTRS{idVendor}=="0525", SYMLINK+="ttypi2"
SUBSYSTEM=="tty", KERNELS=="1-1.2.1", ATTRS{idProduct}=="a4aa", ATTRS{idVendor}=="0525", SYMLINK+="ttypi4"
SUBSYSTEM=="tty", KERNELS=="1-1.5.4", ATTRS{idProduct}=="a4aa", ATTRS{idVendor}=="0525", SYMLINK+="ttypi1"
SUBSYSTEM=="tty", KERNELS=="1-1.4.2", ATTRS{idProduct}=="a4aa", ATTRS{idVendor}=="0525", SYMLINK+="ttypi3"
SUBSYSTEM=="tty", KERNELS=="1-1.1", ATTRS{idProduct}=="a4aa", ATTRS{idVendor}=="0525", SYMLINK+="ttypi4"
SUBSYSTEM=="tty", KERNELS=="1-1.4", ATTRS{idProduct}=="a4aa", ATTRS{idVendor}=="0525", SYMLINK+="ttypi1"
`

var ruleRE = regexp.MustCompile(`KERNELS=="([^"]+)".*SYMLINK\+="ttypi(\d+)"`)

// Each device is found as the node the vendor's rules link it for: the
// current gadget by its serial number on interface 2 (not the admin port
// on interface 4), the legacy gadget by the ClusterHAT hub port it is on;
// other devices are no node's.
func TestDiscoverAsTheVendorRules(t *testing.T) {
	root := t.TempDir()
	tree, err := gadget.New(root)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{} // tty -> node
	plug := func(u gadget.USB, node string) {
		t.Helper()
		u.Target = "/dev/null"
		name, err := tree.Plug(u)
		if err != nil {
			t.Fatal(err)
		}
		if node != "" {
			want[name] = node
		}
	}
	// files/etc/udev/rules.d/90-clusterctrl.rules at dd66f59: vendor
	// 3171, product 0020-0025, interface 02 -> ttypi<serial>.
	// (Each device on a port of its own: the tree keeps one per port.)
	plug(gadget.USB{Port: "1-1.7.3", Vendor: 0x3171, Product: 0x0021, Serial: "7", Interface: 2}, "p7")
	plug(gadget.USB{Port: "1-1.7.4", Vendor: 0x3171, Product: 0x0020, Serial: "12", Interface: 2}, "p12")
	plug(gadget.USB{Port: "1-1.7.5", Vendor: 0x3171, Product: 0x0020, Serial: "13", Interface: 4}, "") // ttypi13a
	plug(gadget.USB{Port: "1-1.7.2", Vendor: 0x3171, Product: 0x0026, Serial: "9", Interface: 2}, "")
	plug(gadget.USB{Port: "1-1.7.1", Vendor: 0x3171, Product: 0x0021, Serial: "0", Interface: 2}, "")
	plug(gadget.USB{Port: "1-1.7.6", Vendor: 0x3171, Product: 0x0021, Serial: "x", Interface: 2}, "")
	for _, m := range ruleRE.FindAllStringSubmatch(legacyRules, -1) {
		plug(gadget.USB{Port: m[1], Vendor: 0x0525, Product: 0xa4aa, Interface: 2}, "p"+m[2])
	}
	// Not at a ClusterHAT hub port, or not the legacy gadget.
	plug(gadget.USB{Port: "1-1.6.1", Vendor: 0x0525, Product: 0xa4aa, Interface: 2}, "")
	plug(gadget.USB{Port: "1-1.3.5", Vendor: 0x0525, Product: 0xa4aa, Interface: 2}, "")
	plug(gadget.USB{Port: "1-1.6.2", Vendor: 0x0403, Product: 0x6001, Interface: 0}, "")

	devs, err := usbtty.List(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range devs {
		node, source, ok := nodeOf(d)
		if w := want[d.Name]; node != w || ok != (w != "") {
			t.Errorf("%s (%04x:%04x serial %q interface %d at %s) is %q (%s), want %q", d.Name, d.Vendor, d.Product, d.Serial, d.Interface, d.Port, node, source, w)
		}
	}
}

// When two devices claim one node, the current gadget wins, then the
// lower tty.
func TestDiscoverPrefersTheCurrentGadget(t *testing.T) {
	devs := []usbtty.Device{
		{Name: "ttyACM0", Path: "/dev/ttyACM0", Port: "1-1.3.4", Vendor: 0x0525, Product: 0xa4aa, Interface: 2},
		{Name: "ttyACM1", Path: "/dev/ttyACM1", Port: "1-1.2.1", Vendor: 0x3171, Product: 0x0021, Serial: "1", Interface: 2},
		{Name: "ttyACM2", Path: "/dev/ttyACM2", Port: "1-1.2.2", Vendor: 0x3171, Product: 0x0021, Serial: "1", Interface: 2},
		{Name: "ttyACM3", Path: "/dev/ttyACM3", Port: "1-1.3.3", Vendor: 0x0525, Product: 0xa4aa, Interface: 2},
	}
	got := discover(devs, 115200)
	var s []string
	for _, n := range []string{"p1", "p2"} {
		s = append(s, fmt.Sprintf("%s=%s@%d", n, got[n].Path, got[n].Baud))
	}
	if w := "p1=/dev/ttyACM1@115200 p2=/dev/ttyACM3@115200"; strings.Join(s, " ") != w || len(got) != 2 {
		t.Errorf("discover: %v, want %s", got, w)
	}
}
