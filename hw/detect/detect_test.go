package detect_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/headnode/headnode/hw/detect"
	"github.com/headnode/headnode/hw/emu/hateeprom"
)

func TestReadHATFromEmulatedTree(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "hat")
	if err := hateeprom.WriteTree(dir, hateeprom.ClusterHAT(2, 5)); err != nil {
		t.Fatal(err)
	}
	h, err := detect.ReadHAT(dir)
	if err != nil {
		t.Fatal(err)
	}
	if h.Product != "ZC4:ClusterHAT" || h.ProductVer != 0x25 || h.ProductID != 4 || h.Vendor != "8086 Consultancy" {
		t.Errorf("read %+v", h)
	}
	// All five files are required, as the official tool requires them.
	os.Remove(filepath.Join(dir, "uuid"))
	if _, err := detect.ReadHAT(dir); !errors.Is(err, detect.ErrNoHAT) {
		t.Errorf("without uuid: %v, want ErrNoHAT", err)
	}
	if _, err := detect.ReadHAT(filepath.Join(t.TempDir(), "none")); !errors.Is(err, detect.ErrNoHAT) {
		t.Errorf("no tree: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "uuid"), []byte("x\x00"), 0o644)
	os.WriteFile(filepath.Join(dir, "product_ver"), []byte("junk\x00"), 0o644)
	if _, err := detect.ReadHAT(dir); err == nil || errors.Is(err, detect.ErrNoHAT) {
		t.Errorf("bad product_ver: %v", err)
	}
}

func TestClusterCTRLBuses(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []int{11, 3, 4} {
		if err := hateeprom.LinkClusterCTRL(dir, n); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, "ClusterCTRL-x"), nil, 0o644)
	got, err := detect.ClusterCTRLBuses(dir)
	if err != nil || !slices.Equal(got, []int{3, 4, 11}) {
		t.Errorf("buses %v, %v", got, err)
	}
	if got, err := detect.ClusterCTRLBuses(filepath.Join(dir, "absent")); err != nil || len(got) != 0 {
		t.Errorf("no dir: %v %v", got, err)
	}
}

func TestUSBPaths(t *testing.T) {
	root := t.TempDir()
	dev := func(path, vendor, product string) {
		d := filepath.Join(root, "sys/bus/usb/devices", path)
		os.MkdirAll(d, 0o755)
		os.WriteFile(filepath.Join(d, "idVendor"), []byte(vendor+"\n"), 0o644)
		os.WriteFile(filepath.Join(d, "idProduct"), []byte(product+"\n"), 0o644)
	}
	dev("usb1", "1d6b", "0002")
	dev("1-1", "2109", "3431")
	dev("1-1.3", "05e3", "0608")
	dev("1-1.3:1.0", "05e3", "0608")
	dev("1-1.4.2", "3171", "0041")
	if got := detect.USBDevicesOf(root, detect.ClusterHATHubs); fmt.Sprint(got) != "[1-1.3 1-1.4.2]" {
		t.Errorf("ClusterHAT hubs %v", got)
	}
	os.MkdirAll(filepath.Join(root, "sys/bus/usb/drivers/i2c-tiny-usb/1-1.2.1:1.0/i2c-11"), 0o755)
	os.MkdirAll(filepath.Join(root, "sys/bus/usb/drivers/i2c-tiny-usb/1-1.5:1.0/i2c-12"), 0o755)
	if p, ok := detect.I2CTinyUSBPath(root, 11); !ok || p != "1-1.2.1" {
		t.Errorf("bus 11: %q %v", p, ok)
	}
	if _, ok := detect.I2CTinyUSBPath(root, 13); ok {
		t.Error("bus 13 found")
	}
}
