package detect

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Default roots on a Raspberry Pi.
const (
	HATDir = "/proc/device-tree/hat"
	DevDir = "/dev"
)

// HAT is the identity a HAT's EEPROM gives (the vendor info atom).
type HAT struct {
	Product    string `json:"product"`
	ProductVer uint16 `json:"product_ver"`
	ProductID  uint16 `json:"product_id"`
	UUID       string `json:"uuid"`
	Vendor     string `json:"vendor"`
}

// ErrNoHAT means no HAT EEPROM was read at boot (or it is incomplete).
var ErrNoHAT = errors.New("no HAT EEPROM in the device tree")

// ReadHAT reads the HAT identity under dir (HATDir on a Pi). As the
// official tool requires, all five files must be present; each is a
// NUL-terminated string, the numbers hexadecimal ("0x0023").
func ReadHAT(dir string) (HAT, error) {
	read := func(name string) (string, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return "", err
		}
		return strings.ReplaceAll(string(b), "\x00", ""), nil
	}
	var vals [5]string
	for i, name := range []string{"product", "product_ver", "product_id", "uuid", "vendor"} {
		v, err := read(name)
		if errors.Is(err, fs.ErrNotExist) {
			return HAT{}, ErrNoHAT
		}
		if err != nil {
			return HAT{}, fmt.Errorf("HAT EEPROM: %w", err)
		}
		vals[i] = v
	}
	h := HAT{Product: vals[0], UUID: vals[3], Vendor: vals[4]}
	ver, err := strconv.ParseUint(vals[1], 0, 16)
	if err != nil {
		return HAT{}, fmt.Errorf("HAT EEPROM: product_ver %q is not a number", vals[1])
	}
	h.ProductVer = uint16(ver)
	if id, err := strconv.ParseUint(vals[2], 0, 16); err == nil {
		h.ProductID = uint16(id) // not checked by the official tool either
	}
	return h, nil
}

// ClusterCTRLBuses returns the I2C bus numbers of the ClusterCTRL boards
// linked in dir (DevDir on a Pi) as ClusterCTRL-N, in ascending order.
func ClusterCTRLBuses(dir string) ([]int, error) {
	matches, err := filepath.Glob(filepath.Join(dir, "ClusterCTRL-*"))
	if err != nil {
		return nil, err
	}
	var buses []int
	for _, m := range matches {
		n, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(m), "ClusterCTRL-"))
		if err != nil || n < 0 {
			continue
		}
		buses = append(buses, n)
	}
	sort.Ints(buses)
	return buses, nil
}

// USBDevice is a vendor and product ID pair.
type USBDevice struct{ Vendor, Product uint16 }

// ClusterHATHubs are the USB hubs the official tool takes for a
// ClusterHAT's (possible_clusterhat): the Genesys Logic GL850G it carries
// and 8086 Consultancy's own IDs.
var ClusterHATHubs = []USBDevice{{0x05e3, 0x0608}, {0x3171, 0x0040}, {0x3171, 0x0041}}

// USBDevicesOf returns the sysfs names (the USB paths, "1-1.3") of the
// devices under root/sys/bus/usb/devices with one of ids, sorted.
func USBDevicesOf(root string, ids []USBDevice) []string {
	dirs, _ := filepath.Glob(filepath.Join(root, "sys/bus/usb/devices/*"))
	var out []string
	for _, d := range dirs {
		name := filepath.Base(d)
		if strings.Contains(name, ":") || strings.HasPrefix(name, "usb") {
			continue // interfaces and root hubs
		}
		id := func(f string) uint16 {
			b, err := os.ReadFile(filepath.Join(d, f))
			if err != nil {
				return 0
			}
			v, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 16, 16)
			return uint16(v)
		}
		dev := USBDevice{id("idVendor"), id("idProduct")}
		for _, want := range ids {
			if dev == want {
				out = append(out, name)
			}
		}
	}
	sort.Strings(out)
	return out
}

// I2CTinyUSBPath returns the USB path ("1-1.2.1") of the i2c-tiny-usb
// interface whose adapter is I2C bus n, as the official tool finds it
// (usbpathfrombus): root/sys/bus/usb/drivers/i2c-tiny-usb/PATH:C.I/i2c-N.
func I2CTinyUSBPath(root string, n int) (string, bool) {
	ifaces, _ := filepath.Glob(filepath.Join(root, "sys/bus/usb/drivers/i2c-tiny-usb/*", fmt.Sprintf("i2c-%d", n)))
	for _, p := range ifaces {
		path, _, ok := strings.Cut(filepath.Base(filepath.Dir(p)), ":")
		if ok {
			return path, true
		}
	}
	return "", false
}
