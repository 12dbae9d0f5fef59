package sysinfo

import (
	"os"
	"path/filepath"
	"testing"
)

func TestReadsSysfs(t *testing.T) {
	root := t.TempDir()
	write := func(p, s string) {
		os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755)
		os.WriteFile(filepath.Join(root, p), []byte(s), 0o644)
	}
	if _, ok := Temperature(root); ok || Throttled(root) {
		t.Error("values from an empty tree")
	}
	write("sys/class/thermal/thermal_zone0/temp", "48312\n")
	write("sys/devices/platform/soc/soc:firmware/get_throttled", "50000\n")
	if c, ok := Temperature(root); !ok || c != 48.312 {
		t.Errorf("temperature %v %v", c, ok)
	}
	if Throttled(root) {
		t.Error("past throttling reported as now")
	}
	write("sys/devices/platform/soc/soc:firmware/get_throttled", "50005\n")
	if !Throttled(root) {
		t.Error("under-voltage now not reported")
	}
}

func TestThrottlingSources(t *testing.T) {
	root := t.TempDir()
	write := func(p, s string) {
		os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755)
		os.WriteFile(filepath.Join(root, p), []byte(s), 0o644)
	}
	if got := ReadThrottling(root); got != (Throttling{}) {
		t.Errorf("empty tree: %+v", got)
	}
	write("sys/class/hwmon/hwmon2/name", "cpu_thermal\n")
	write("sys/class/hwmon/hwmon3/name", "rpi_volt\n")
	write("sys/class/hwmon/hwmon3/in0_lcrit_alarm", "1\n")
	if got := ReadThrottling(root); got != (Throttling{Flags: UnderVoltageOccurred, Source: "hwmon"}) {
		t.Errorf("hwmon only: %+v", got)
	}
	// The firmware driver's attribute, wherever the device tree puts the
	// device (a Pi 5's is not soc:firmware), wins: it has every flag.
	write("sys/bus/platform/drivers/raspberrypi-firmware/107c000000.soc:firmware/get_throttled", "e0008\n")
	if got := ReadThrottling(root); got != (Throttling{Flags: 0xe0008, Source: "firmware"}) {
		t.Errorf("firmware: %+v", got)
	}
}

func TestRevisionAndPi5(t *testing.T) {
	root := t.TempDir()
	if _, ok := Revision(root); ok || IsPi5(root) {
		t.Error("revision from an empty tree")
	}
	os.MkdirAll(filepath.Join(root, "proc/device-tree/system"), 0o755)
	os.WriteFile(filepath.Join(root, "proc/device-tree/system/linux,revision"), []byte{0x00, 0xa0, 0x20, 0x82}, 0o644)
	if r, ok := Revision(root); !ok || r != "0x00a02082" {
		t.Errorf("revision %q %v", r, ok)
	}
	for rev, want := range map[string]bool{"d04170": true, "c04170": true, "1d04170": true, "c03114": false, "a02082": false, "0010": false, "900092": false} {
		os.WriteFile(filepath.Join(root, "proc/cpuinfo"), []byte("processor\t: 0\nRevision\t: "+rev+"\nSerial\t\t: 1\n"), 0o644)
		if IsPi5(root) != want {
			t.Errorf("Revision %s: Pi 5 %v, want %v", rev, !want, want)
		}
	}
}
