// Package usbtty lists the serial devices on USB that sysfs shows: which
// USB device and interface each tty belongs to, where that device sits in
// the USB tree (its port path), and what it says it is (vendor, product,
// serial number). It is what a udev rule matches on (ATTRS{idVendor},
// KERNELS, ENV{ID_USB_INTERFACE_NUM}), read without udev, so that a
// console that appears and disappears with its node's power can be found
// again each time.
//
// The layout read is the kernel's (Documentation/ABI/stable/sysfs-bus-usb
// and sysfs-class-tty): /sys/class/tty/NAME/device links to the tty's
// parent, which is the USB interface (cdc-acm: ttyACMn) or a usb-serial
// port below it (ttyUSBn); the interface's directory has bInterfaceNumber
// and its parent is the USB device, named by its port path ("1-1.3") and
// holding idVendor, idProduct, serial and product.
package usbtty

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Device is one serial device on USB.
type Device struct {
	// Name is the kernel's name, e.g. ttyACM0; Path its device node
	// under the root's dev directory.
	Name, Path string
	// Port is the USB device's port path, e.g. "1-1.3" (bus 1, root
	// port 1, hub port 3): what udev calls KERNELS.
	Port string
	// Vendor and Product are the USB IDs.
	Vendor, Product uint16
	// Serial and ProductName are the device's strings ("" when it has
	// none).
	Serial, ProductName string
	// Interface is the USB interface number of the tty.
	Interface int
}

// List returns the USB serial devices under root ("" or "/" for this
// system; tests and emulated machines pass a tree of the same layout), by
// name. Entries that vanish while being read (a node powered off that
// moment) are left out.
func List(root string) ([]Device, error) {
	if root == "" {
		root = "/"
	}
	class := filepath.Join(root, "sys/class/tty")
	entries, err := os.ReadDir(class)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Device
	for _, e := range entries {
		name := e.Name()
		// The class link says where the tty is (one readlink): most of a
		// system's ttys are virtual consoles and UARTs, not on USB.
		target, err := os.Readlink(filepath.Join(class, name))
		if err != nil || !strings.Contains(target, "/usb") {
			continue
		}
		dev, err := filepath.EvalSymlinks(filepath.Join(class, name, "device"))
		if err != nil {
			continue // gone while listing
		}
		d, ok := read(dev)
		if !ok {
			continue
		}
		d.Name = name
		d.Path = filepath.Join(root, "dev", name)
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// read finds the interface at or above dev (a usb-serial port sits one
// below it) and the USB device above that.
func read(dev string) (Device, bool) {
	iface := dev
	for range 3 {
		if _, err := os.Stat(filepath.Join(iface, "bInterfaceNumber")); err == nil {
			break
		}
		iface = filepath.Dir(iface)
	}
	n, err := strconv.ParseUint(attr(iface, "bInterfaceNumber"), 16, 8)
	if err != nil {
		return Device{}, false
	}
	usb := filepath.Dir(iface)
	v, err1 := strconv.ParseUint(attr(usb, "idVendor"), 16, 16)
	p, err2 := strconv.ParseUint(attr(usb, "idProduct"), 16, 16)
	if err1 != nil || err2 != nil {
		return Device{}, false
	}
	return Device{
		Port: filepath.Base(usb), Vendor: uint16(v), Product: uint16(p),
		Serial: attr(usb, "serial"), ProductName: attr(usb, "product"), Interface: int(n),
	}, true
}

func attr(dir, name string) string {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
