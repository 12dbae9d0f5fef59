package blinkstick

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/headnode/headnode/hw/hidraw"
)

// Sysfs is a fake /sys and /dev tree with the layout the kernel gives a
// hidraw device on USB, for hidraw.Enumerate(Root):
//
//	sys/devices/usb1/1-1.N/bcdDevice, serial, ...        the USB device
//	sys/devices/usb1/1-1.N/1-1.N:1.0/                    its interface
//	  0003:20A0:41E5.000N/uevent                         the HID device
//	  0003:20A0:41E5.000N/hidraw/hidrawM/device -> ../.. back to it
//	sys/class/hidraw/hidrawM -> ../../devices/.../hidraw/hidrawM
//	dev/hidrawM
//
// Every plug gets a new hidraw number, as with the kernel.
type Sysfs struct {
	Root string

	mu    sync.Mutex
	next  int
	nodes map[string]*Stick // device node path -> stick
	dirs  map[*Stick][]string
}

// NewSysfs makes an empty tree under root.
func NewSysfs(root string) (*Sysfs, error) {
	if err := os.MkdirAll(filepath.Join(root, "sys/class/hidraw"), 0o755); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(root, "dev"), 0o755); err != nil {
		return nil, err
	}
	return &Sysfs{Root: root, nodes: map[string]*Stick{}, dirs: map[*Stick][]string{}}, nil
}

// Plug plugs s in and returns its device node.
func (f *Sysfs) Plug(s *Stick) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.next
	f.next++
	name := fmt.Sprintf("hidraw%d", n)
	usb := filepath.Join(f.Root, fmt.Sprintf("sys/devices/usb1/1-1.%d", n+1))
	hid := filepath.Join(usb, fmt.Sprintf("1-1.%d:1.0/0003:%04X:%04X.%04X", n+1, VendorID, ProductID, n+1))
	raw := filepath.Join(hid, "hidraw", name)
	if err := os.MkdirAll(raw, 0o755); err != nil {
		return "", err
	}
	files := map[string]string{
		filepath.Join(usb, "bcdDevice"): fmt.Sprintf("%04x\n", s.BCDDevice()),
		filepath.Join(usb, "idVendor"):  fmt.Sprintf("%04x\n", VendorID),
		filepath.Join(usb, "idProduct"): fmt.Sprintf("%04x\n", ProductID),
		filepath.Join(usb, "serial"):    s.Serial() + "\n",
		filepath.Join(hid, "uevent"): fmt.Sprintf("DRIVER=hid-generic\nHID_ID=0003:%08X:%08X\nHID_NAME=Agile Innovative Ltd BlinkStick\nHID_PHYS=usb-0000:01:00.0-1.%d/input0\nHID_UNIQ=%s\nMODALIAS=hid:b0003g0001v%08Xp%08X\n",
			VendorID, ProductID, n+1, s.Serial(), VendorID, ProductID),
	}
	for p, text := range files {
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			return "", err
		}
	}
	if err := os.Symlink("../..", filepath.Join(raw, "device")); err != nil {
		return "", err
	}
	classLink := filepath.Join(f.Root, "sys/class/hidraw", name)
	rel, err := filepath.Rel(filepath.Dir(classLink), raw)
	if err != nil {
		return "", err
	}
	if err := os.Symlink(rel, classLink); err != nil {
		return "", err
	}
	node := filepath.Join(f.Root, "dev", name)
	if err := os.WriteFile(node, nil, 0o660); err != nil {
		return "", err
	}
	s.Plug()
	f.nodes[node] = s
	f.dirs[s] = []string{usb, classLink, node}
	return node, nil
}

// Unplug removes s from the tree; open handles to it fail with ENODEV.
func (f *Sysfs) Unplug(s *Stick) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	s.Unplug()
	for node, st := range f.nodes {
		if st == s {
			delete(f.nodes, node)
		}
	}
	for _, p := range f.dirs[s] {
		if err := os.RemoveAll(p); err != nil {
			return err
		}
	}
	delete(f.dirs, s)
	return nil
}

// Open opens a device node of the tree, as hidraw.Open does a real one.
func (f *Sysfs) Open(path string) (hidraw.Feature, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.nodes[path]
	if !ok {
		return nil, &os.PathError{Op: "open", Path: path, Err: syscall.ENOENT}
	}
	return s, nil
}
