package usbtty

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/headnode/headnode/hw/emu/gadget"
)

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func link(t *testing.T, target, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
}

// The three kinds of tty a head node has: a node's USB gadget (cdc-acm,
// from the emulated tree), a USB-serial adaptor (usb-serial puts the
// port between the interface and the tty) and the Pi's own UART (not on
// USB, left out). A tty that vanishes while listing is left out too.
func TestList(t *testing.T) {
	root := t.TempDir()
	tree, err := gadget.New(root)
	if err != nil {
		t.Fatal(err)
	}
	name, err := tree.Plug(gadget.USB{Port: "1-1.3", Vendor: 0x3171, Product: 0x0021, Serial: "4", Name: "ClusterCTRL", Interface: 2, Target: "/dev/null"})
	if err != nil {
		t.Fatal(err)
	}
	// An FTDI adaptor, laid out as the kernel does (ftdi_sio).
	usb := filepath.Join(root, "sys/devices/platform/soc/3f980000.usb/usb1/1-1/1-1.5")
	write(t, filepath.Join(usb, "idVendor"), "0403\n")
	write(t, filepath.Join(usb, "idProduct"), "6001\n")
	write(t, filepath.Join(usb, "serial"), "A10K3XYZ\n")
	write(t, filepath.Join(usb, "product"), "FT232R USB UART\n")
	write(t, filepath.Join(usb, "1-1.5:1.0/bInterfaceNumber"), "00\n")
	port := filepath.Join(usb, "1-1.5:1.0/ttyUSB0")
	write(t, filepath.Join(port, "tty/ttyUSB0/dev"), "188:0\n")
	link(t, "../../../ttyUSB0", filepath.Join(port, "tty/ttyUSB0/device"))
	link(t, "../../devices/platform/soc/3f980000.usb/usb1/1-1/1-1.5/1-1.5:1.0/ttyUSB0/tty/ttyUSB0", filepath.Join(root, "sys/class/tty/ttyUSB0"))
	// The Pi's UART.
	uart := filepath.Join(root, "sys/devices/platform/soc/3f201000.serial")
	write(t, filepath.Join(uart, "tty/ttyAMA0/dev"), "204:64\n")
	link(t, "../../..", filepath.Join(uart, "tty/ttyAMA0/device"))
	link(t, "../../devices/platform/soc/3f201000.serial/tty/ttyAMA0", filepath.Join(root, "sys/class/tty/ttyAMA0"))
	// A tty whose device is already gone.
	link(t, "../../devices/gone/tty/ttyACM9", filepath.Join(root, "sys/class/tty/ttyACM9"))

	got, err := List(root)
	if err != nil {
		t.Fatal(err)
	}
	want := []Device{
		{Name: name, Path: filepath.Join(root, "dev", name), Port: "1-1.3", Vendor: 0x3171, Product: 0x0021, Serial: "4", ProductName: "ClusterCTRL", Interface: 2},
		{Name: "ttyUSB0", Path: filepath.Join(root, "dev/ttyUSB0"), Port: "1-1.5", Vendor: 0x0403, Product: 0x6001, Serial: "A10K3XYZ", ProductName: "FT232R USB UART", Interface: 0},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}

	if err := tree.Unplug(name); err != nil {
		t.Fatal(err)
	}
	got, _ = List(root)
	if len(got) != 1 || got[0].Name != "ttyUSB0" {
		t.Errorf("after the gadget was unplugged: %+v", got)
	}
	if got, err := List(filepath.Join(root, "nothing")); err != nil || got != nil {
		t.Errorf("a system without ttys: %v, %v", got, err)
	}
}

// What the daemon's once-a-second look for consoles costs on this
// machine's own sysfs.
func BenchmarkListThisSystem(b *testing.B) {
	entries, _ := os.ReadDir("/sys/class/tty")
	b.ReportMetric(float64(len(entries)), "ttys")
	for b.Loop() {
		if _, err := List(""); err != nil {
			b.Fatal(err)
		}
	}
}
