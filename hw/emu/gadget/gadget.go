// Package gadget emulates USB serial devices as a head node's kernel
// shows them: a Pi Zero's serial gadget (or a USB-serial adaptor) plugged
// in at a USB port path gets the sysfs entries and the device node that
// the kernel's cdc-acm driver would make, in a tree of its own that
// package hw/usbtty reads as it reads the system's:
//
//	sys/devices/usb1/1-1/1-1.3/idVendor, idProduct, serial, product
//	sys/devices/usb1/1-1/1-1.3/1-1.3:1.2/bInterfaceNumber
//	sys/devices/usb1/1-1/1-1.3/1-1.3:1.2/tty/ttyACM0/device -> ../..
//	sys/class/tty/ttyACM0 -> ../../devices/usb1/1-1/1-1.3/1-1.3:1.2/tty/ttyACM0
//	dev/ttyACM0 -> the device that carries the bytes (a pty)
//
// Each plug takes the lowest free ttyACM number, as cdc-acm does, so a
// device that comes back may come back under another name.
package gadget

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Dir is where an emulated machine whose state lives in dir keeps its
// USB tree: the daemon's machine reads it, `headnode sim` plugs into it.
func Dir(dir string) string { return filepath.Join(dir, "usb") }

// USB is one device to plug in.
type USB struct {
	// Port is the port path, e.g. "1-1.3"; bus 1 is assumed.
	Port            string
	Vendor, Product uint16
	Serial, Name    string
	// Interface is the number of the tty's USB interface.
	Interface int
	// Target is the device node that carries the bytes; dev/ttyACMn
	// links to it.
	Target string
}

// Tree is an emulated USB tree.
type Tree struct {
	Root string

	mu      sync.Mutex
	plugged map[string]string // tty name -> the USB device's directory
}

// New makes an empty tree under root, removing what an earlier run left.
func New(root string) (*Tree, error) {
	if err := os.RemoveAll(root); err != nil {
		return nil, err
	}
	for _, d := range []string{"sys/class/tty", "sys/devices/usb1", "dev"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return nil, err
		}
	}
	return &Tree{Root: root, plugged: map[string]string{}}, nil
}

// Plug plugs u in and returns its tty name.
func (t *Tree) Plug(u USB) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !strings.HasPrefix(u.Port, "1-") {
		return "", fmt.Errorf("port path %q: want 1-N[.N...]", u.Port)
	}
	name := ""
	for n := 0; ; n++ {
		name = fmt.Sprintf("ttyACM%d", n)
		if _, used := t.plugged[name]; !used {
			break
		}
	}
	// 1-1.3 is below 1-1, which is below usb1.
	parts := strings.Split(u.Port, ".")
	dir := filepath.Join(t.Root, "sys/devices/usb1")
	for i := range parts {
		dir = filepath.Join(dir, strings.Join(parts[:i+1], "."))
	}
	for _, d := range t.plugged {
		if d == dir {
			return "", fmt.Errorf("USB port %s already has a device", u.Port)
		}
	}
	iface := filepath.Join(dir, fmt.Sprintf("%s:1.%d", u.Port, u.Interface))
	ttyDir := filepath.Join(iface, "tty", name)
	if err := os.MkdirAll(ttyDir, 0o755); err != nil {
		return "", err
	}
	files := map[string]string{
		filepath.Join(dir, "idVendor"):           fmt.Sprintf("%04x\n", u.Vendor),
		filepath.Join(dir, "idProduct"):          fmt.Sprintf("%04x\n", u.Product),
		filepath.Join(dir, "serial"):             u.Serial + "\n",
		filepath.Join(dir, "product"):            u.Name + "\n",
		filepath.Join(iface, "bInterfaceNumber"): fmt.Sprintf("%02x\n", u.Interface),
		filepath.Join(ttyDir, "dev"):             "166:0\n",
	}
	for p, text := range files {
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			return "", err
		}
	}
	if err := os.Symlink("../..", filepath.Join(ttyDir, "device")); err != nil {
		return "", err
	}
	class := filepath.Join(t.Root, "sys/class/tty", name)
	rel, err := filepath.Rel(filepath.Dir(class), ttyDir)
	if err != nil {
		return "", err
	}
	if err := os.Symlink(rel, class); err != nil {
		return "", err
	}
	if err := os.Symlink(u.Target, filepath.Join(t.Root, "dev", name)); err != nil {
		return "", err
	}
	t.plugged[name] = dir
	return name, nil
}

// Unplug removes the device plugged in as name, as the kernel does when
// the node loses power: the device node first, then sysfs.
func (t *Tree) Unplug(name string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	dir, ok := t.plugged[name]
	if !ok {
		return fmt.Errorf("%s is not plugged in", name)
	}
	delete(t.plugged, name)
	var first error
	for _, p := range []string{filepath.Join(t.Root, "dev", name), filepath.Join(t.Root, "sys/class/tty", name), dir} {
		if err := os.RemoveAll(p); err != nil && first == nil {
			first = err
		}
	}
	return first
}
