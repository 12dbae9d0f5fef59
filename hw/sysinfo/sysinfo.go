// Package sysinfo reads the facts about the head node itself that headnode
// shows: the SoC temperature, the Raspberry Pi firmware's throttling flags,
// the board revision and whether it is a Pi 5. All come from files
// Raspberry Pi OS provides (sysfs, procfs, the device tree), without
// vcgencmd or cgo; root is injectable for tests and emulation.
//
// Throttling: the kernel's raspberrypi-firmware driver
// (drivers/firmware/raspberrypi.c in raspberrypi/linux) has a get_throttled
// attribute on its platform device, the firmware's flags in hex without a
// "0x" ("%x\n"): the value `vcgencmd get_throttled` prints. It is found
// through the driver's directory, /sys/bus/platform/drivers/
// raspberrypi-firmware/*/get_throttled, which links to the device wherever
// the device tree puts it (soc:firmware on a Pi 0-4). Current kernels mark
// the attribute deprecated (reading it logs one "deprecated, use hwmon
// sysfs instead" warning per boot) and give the value the raspberrypi-hwmon
// driver (drivers/hwmon/raspberrypi-hwmon.c) last fetched; that driver
// asks the firmware every 2 s, clearing the "has occurred" bits each time,
// so bits 16-19 mean "within the last 2 s or so". Without the attribute,
// the hwmon device named rpi_volt gives under-voltage alone, as its
// in0_lcrit_alarm (the sticky under-voltage bit, 16).
package sysinfo

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// Temperature returns the first thermal zone's temperature in °C (the SoC
// on a Pi).
func Temperature(root string) (float64, bool) {
	b, err := os.ReadFile(filepath.Join(root, "/sys/class/thermal/thermal_zone0/temp"))
	if err != nil {
		return 0, false
	}
	milli, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, false
	}
	return float64(milli) / 1000, true
}

// Throttling flags (the firmware's get_throttled bits).
const (
	UnderVoltage         = 1 << 0
	FrequencyCapped      = 1 << 1
	ThrottledNow         = 1 << 2
	SoftTempLimit        = 1 << 3
	UnderVoltageOccurred = 1 << 16
	CappedOccurred       = 1 << 17
	ThrottledOccurred    = 1 << 18
	SoftTempOccurred     = 1 << 19
)

// Throttling is what the firmware says about power and temperature.
type Throttling struct {
	// Flags are get_throttled's bits; with Source "hwmon" only
	// UnderVoltageOccurred can be set.
	Flags uint32
	// Source is "firmware" (get_throttled), "hwmon" (rpi_volt's
	// under-voltage alarm alone) or "" (neither: not a Pi, or too old a
	// kernel).
	Source string
}

// ReadThrottling reads the throttling flags: get_throttled of the
// raspberrypi-firmware driver, else the rpi_volt hwmon's under-voltage
// alarm.
func ReadThrottling(root string) Throttling {
	paths, _ := filepath.Glob(filepath.Join(root, "sys/bus/platform/drivers/raspberrypi-firmware/*/get_throttled"))
	paths = append(paths, filepath.Join(root, "sys/devices/platform/soc/soc:firmware/get_throttled"))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 16, 32); err == nil {
			return Throttling{Flags: uint32(v), Source: "firmware"}
		}
	}
	hwmons, _ := filepath.Glob(filepath.Join(root, "sys/class/hwmon/hwmon*"))
	for _, h := range hwmons {
		if name, err := os.ReadFile(filepath.Join(h, "name")); err != nil || strings.TrimSpace(string(name)) != "rpi_volt" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(h, "in0_lcrit_alarm"))
		if err != nil {
			continue
		}
		t := Throttling{Source: "hwmon"}
		if strings.TrimSpace(string(b)) == "1" {
			t.Flags = UnderVoltageOccurred
		}
		return t
	}
	return Throttling{}
}

// Throttled reports whether the firmware says the Pi is under-voltage,
// frequency-capped, throttled or at its soft temperature limit right now
// (bits 0-3 of get_throttled; the "has occurred" bits 16-19 are ignored).
func Throttled(root string) bool {
	t := ReadThrottling(root)
	return t.Source == "firmware" && t.Flags&0xf != 0
}

// Revision returns the board revision code from the device tree
// (/proc/device-tree/system/linux,revision, four bytes big-endian), as
// "0x" and eight hex digits, e.g. "0x00c03114" for a Pi 4 Model B.
func Revision(root string) (string, bool) {
	b, err := os.ReadFile(filepath.Join(root, "proc/device-tree/system/linux,revision"))
	if err != nil || len(b) == 0 {
		return "", false
	}
	return "0x" + hexString(b), true
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&0xf])
	}
	return string(out)
}

// pi5Revision is the official tool's test of a /proc/cpuinfo Revision line
// for a Pi 5 (burtyb/clusterhat-image files/usr/sbin/clusterctrl at
// dd66f59ffe9e6e981288c9a49b0affbb7ca0c751, is_pi5, line 347): a
// new-style code whose processor digit (the fourth from the right of
// seven, with the leading digit blank for codes of six) is 4, BCM2712.
var pi5Revision = regexp.MustCompile(`^Revision\s*:\s*[ 123][0-9a-fA-F][0-9a-fA-F]4[0-9a-fA-F][0-9a-fA-F][0-9a-fA-F]$`)

// IsPi5 reports whether /proc/cpuinfo names a Pi 5, as the official tool
// decides it.
func IsPi5(root string) bool {
	b, err := os.ReadFile(filepath.Join(root, "proc/cpuinfo"))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if pi5Revision.MatchString(line) {
			return true
		}
	}
	return false
}
