package hidraw_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/headnode/headnode/hw/emu/blinkstick"
	"github.com/headnode/headnode/hw/hidraw"
	"github.com/headnode/headnode/hw/trace"
)

// Discovery reads the kernel's layout: HID_ID, HID_UNIQ from the uevent,
// and bcdDevice from the USB device two levels above the HID device,
// reached through the symlinks (a lexical path would miss it).
func TestEnumerateFakeSysfs(t *testing.T) {
	fs, err := blinkstick.NewSysfs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	strip := blinkstick.New(blinkstick.Strip, &blinkstick.Opts{Serial: "BS012345-3.1"})
	nano := blinkstick.New(blinkstick.Nano, nil)
	for _, s := range []*blinkstick.Stick{strip, nano} {
		if _, err := fs.Plug(s); err != nil {
			t.Fatal(err)
		}
	}
	infos, err := hidraw.Enumerate(fs.Root)
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 2 {
		t.Fatalf("found %+v", infos)
	}
	i := infos[0]
	if i.Name != "hidraw0" || i.Path != filepath.Join(fs.Root, "dev/hidraw0") || i.Bus != hidraw.BusUSB ||
		i.Vendor != 0x20a0 || i.Product != 0x41e5 || i.Serial != "BS012345-3.1" || !i.HasBCD || i.BCDDevice != 0x0201 {
		t.Errorf("strip: %+v", i)
	}
	if infos[1].BCDDevice != 0x0202 || infos[1].Serial != "BS000001-3.0" {
		t.Errorf("nano: %+v", infos[1])
	}
	fs.Unplug(strip)
	infos, _ = hidraw.Enumerate(fs.Root)
	if len(infos) != 1 || infos[0].Serial != "BS000001-3.0" {
		t.Errorf("after unplugging the strip: %+v", infos)
	}
	if infos, err := hidraw.Enumerate(t.TempDir()); err != nil || len(infos) != 0 {
		t.Errorf("a system without hidraw: %v %v", infos, err)
	}
}

// The ioctl numbers, checked against the values of the C headers.
func TestIoctlNumbers(t *testing.T) {
	for n, want := range map[int]uintptr{4: 0xC0044806, 6: 0xC0064806, 26: 0xC01A4806, 33: 0xC0214806, 194: 0xC0C24806} {
		if got := hidraw.HIDIOCSFEATURE(n); got != want {
			t.Errorf("HIDIOCSFEATURE(%d) = %#x, want %#x", n, got, want)
		}
	}
	if got := hidraw.HIDIOCGFEATURE(33); got != 0xC0214807 {
		t.Errorf("HIDIOCGFEATURE(33) = %#x", got)
	}
}

// A file that is not a hidraw node refuses the ioctl; the error names the
// node and the report.
func TestFeatureOnANonHIDFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "hidraw9")
	os.WriteFile(p, nil, 0o600)
	d, err := hidraw.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	err = d.SetFeature([]byte{1, 2, 3, 4})
	if !errors.Is(err, syscall.ENOTTY) || !strings.Contains(err.Error(), "hidraw9: set feature report 1") {
		t.Errorf("SetFeature on a plain file: %v", err)
	}
	if _, err := d.GetFeature([]byte{1}); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("a 1-byte report: %v", err)
	}
}

func TestTraceFormat(t *testing.T) {
	p := filepath.Join(t.TempDir(), "hid.jsonl")
	log, err := trace.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	s := blinkstick.New(blinkstick.Strip, nil)
	tr := &hidraw.Traced{Feature: s, Serial: s.Serial(), Log: log}
	tr.SetFeature([]byte{1, 0xff, 0, 0})
	b := []byte{4, 0}
	tr.GetFeature(b)
	tr.SetFeature([]byte{0x42, 0})
	log.Close()
	data, _ := os.ReadFile(p)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 3 {
		t.Fatalf("trace:\n%s", data)
	}
	var e []hidraw.Entry
	for _, l := range lines {
		var x hidraw.Entry
		if err := json.Unmarshal([]byte(l), &x); err != nil {
			t.Fatal(err)
		}
		e = append(e, x)
	}
	if e[0].Dev != "BS000001-3.0" || e[0].Set != "01ff0000" || e[0].T == "" || e[0].Err != "" {
		t.Errorf("set line %s", lines[0])
	}
	if e[1].Get != "0402" {
		t.Errorf("get line %s", lines[1])
	}
	if e[2].Err == "" {
		t.Errorf("a refused report is not marked: %s", lines[2])
	}
}
