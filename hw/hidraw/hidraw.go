package hidraw

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/headnode/headnode/hw/trace"
)

// BusUSB is HID_ID's bus type for USB devices.
const BusUSB = 0x0003

// Info describes one hidraw device, from sysfs.
type Info struct {
	// Path is the device node, e.g. /dev/hidraw0.
	Path string
	// Name is the kernel's name, e.g. hidraw0.
	Name            string
	Bus             uint16
	Vendor, Product uint16
	// Product name as the device reports it (HID_NAME).
	ProductName string
	// Phys is the physical path, e.g. usb-0000:01:00.0-1.3/input0.
	Phys string
	// Serial is the USB serial number (HID_UNIQ).
	Serial string
	// BCDDevice is the USB device release number, when the device has a
	// USB parent (HasBCD).
	BCDDevice uint16
	HasBCD    bool
}

// Enumerate lists the hidraw devices under root ("" or "/" for the real
// system; tests pass a fake tree with the same layout). Devices whose
// uevent cannot be read (unplugged while listing) are left out.
func Enumerate(root string) ([]Info, error) {
	if root == "" {
		root = "/"
	}
	class := filepath.Join(root, "sys/class/hidraw")
	entries, err := os.ReadDir(class)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil // no hidraw devices (or no hidraw support)
	}
	if err != nil {
		return nil, err
	}
	var out []Info
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, "hidraw") {
			continue
		}
		devDir := filepath.Join(class, name, "device")
		info, err := readUevent(filepath.Join(devDir, "uevent"))
		if err != nil {
			continue
		}
		info.Name = name
		info.Path = filepath.Join(root, "dev", name)
		// bcdDevice lives on the USB device, two levels above the HID
		// device (HID device -> USB interface -> USB device). The links
		// must be resolved first: a lexical ".." would walk back up the
		// class directory.
		if real, err := filepath.EvalSymlinks(devDir); err == nil {
			if b, err := os.ReadFile(filepath.Join(filepath.Dir(filepath.Dir(real)), "bcdDevice")); err == nil {
				if v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 16, 16); err == nil {
					info.BCDDevice, info.HasBCD = uint16(v), true
				}
			}
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// readUevent parses HID_ID=0003:000020A0:000041E5, HID_NAME, HID_PHYS and
// HID_UNIQ.
func readUevent(path string) (Info, error) {
	f, err := os.Open(path)
	if err != nil {
		return Info{}, err
	}
	defer f.Close()
	var info Info
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		switch k {
		case "HID_ID":
			parts := strings.Split(v, ":")
			if len(parts) != 3 {
				return Info{}, fmt.Errorf("%s: bad HID_ID %q", path, v)
			}
			var n [3]uint64
			for i, p := range parts {
				if n[i], err = strconv.ParseUint(p, 16, 32); err != nil {
					return Info{}, fmt.Errorf("%s: bad HID_ID %q", path, v)
				}
			}
			info.Bus, info.Vendor, info.Product = uint16(n[0]), uint16(n[1]), uint16(n[2])
		case "HID_NAME":
			info.ProductName = v
		case "HID_PHYS":
			info.Phys = v
		case "HID_UNIQ":
			info.Serial = v
		}
	}
	return info, sc.Err()
}

// ErrUnplugged is returned (wrapped) once the device has gone away.
var ErrUnplugged = syscall.ENODEV

// Device is an open /dev/hidrawN.
type Device struct {
	f    *os.File
	path string
}

// Open opens a hidraw device node for feature reports.
func Open(path string) (*Device, error) {
	f, err := os.OpenFile(path, os.O_RDWR|syscall.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, os.ErrPermission) {
			return nil, fmt.Errorf("%w (add a udev rule giving the daemon's group access to hidraw, see the README)", err)
		}
		return nil, err
	}
	return &Device{f: f, path: path}, nil
}

// ioctl request numbers: _IOC(_IOC_READ|_IOC_WRITE, 'H', nr, len), the
// same on arm, arm64 and amd64.
func ioc(nr, size uintptr) uintptr {
	const read, write = 2, 1
	return (read|write)<<30 | size<<16 | 'H'<<8 | nr
}

func hidiocsfeature(n int) uintptr { return ioc(0x06, uintptr(n)) }
func hidiocgfeature(n int) uintptr { return ioc(0x07, uintptr(n)) }

// SetFeature sends a feature report: b[0] is the report ID.
func (d *Device) SetFeature(b []byte) error {
	_, err := d.ioctl(hidiocsfeature(len(b)), b)
	if err != nil {
		return fmt.Errorf("%s: set feature report %d: %w", d.path, b[0], err)
	}
	return nil
}

// GetFeature reads a feature report: put the report ID in b[0]; the answer
// (starting with the report ID) replaces b's first n bytes.
func (d *Device) GetFeature(b []byte) (int, error) {
	n, err := d.ioctl(hidiocgfeature(len(b)), b)
	if err != nil {
		return 0, fmt.Errorf("%s: get feature report %d: %w", d.path, b[0], err)
	}
	return n, nil
}

func (d *Device) ioctl(req uintptr, b []byte) (int, error) {
	if len(b) < 2 {
		return 0, syscall.EINVAL // the kernel wants a report ID and at least one byte
	}
	rc, err := d.f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n uintptr
	var errno syscall.Errno
	if err := rc.Control(func(fd uintptr) {
		n, _, errno = unix.Syscall(unix.SYS_IOCTL, fd, req, uintptr(unsafe.Pointer(&b[0])))
	}); err != nil {
		return 0, err
	}
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// Close closes the device node.
func (d *Device) Close() error { return d.f.Close() }

// Feature is a device that takes feature reports: a *Device, or an
// emulated one.
type Feature interface {
	SetFeature(b []byte) error
	GetFeature(b []byte) (int, error)
	Close() error
}

// Entry is one line of the HID trace ([hardware] hid_trace), e.g.
// {"t":"...","dev":"BS000001-3.0","set":"01ff0000"}; "get" holds a
// GET_FEATURE's answer; "err" is set when the report failed.
type Entry struct {
	T   string `json:"t"`
	Dev string `json:"dev"`
	Set string `json:"set,omitempty"`
	Get string `json:"get,omitempty"`
	Err string `json:"err,omitempty"`
}

// Traced appends one trace line per feature report to Log.
type Traced struct {
	Feature
	Serial string
	Log    *trace.Log
}

// SetFeature implements Feature.
func (t *Traced) SetFeature(b []byte) error {
	err := t.Feature.SetFeature(b)
	if t.Log.Enabled() {
		e := Entry{T: t.Log.Now(), Dev: t.Serial, Set: fmt.Sprintf("%x", b)}
		if err != nil {
			e.Err = err.Error()
		}
		t.Log.Write(e)
	}
	return err
}

// GetFeature implements Feature.
func (t *Traced) GetFeature(b []byte) (int, error) {
	id := b[0]
	n, err := t.Feature.GetFeature(b)
	if t.Log.Enabled() {
		e := Entry{T: t.Log.Now(), Dev: t.Serial, Get: fmt.Sprintf("%x", b[:n])}
		if err != nil {
			e.Get, e.Err = fmt.Sprintf("%02x", id), err.Error()
		}
		t.Log.Write(e)
	}
	return n, err
}
