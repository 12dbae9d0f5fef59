// Package sysinfo reads the few facts about the head node itself that
// the 4-row LCD shows: the SoC temperature and the Raspberry Pi firmware's
// throttling flags. Both come from sysfs; root is injectable for tests.
package sysinfo

import (
	"os"
	"path/filepath"
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

// Throttled reports whether the firmware says the Pi is under-voltage,
// frequency-capped, throttled or at its soft temperature limit right now
// (bits 0-3 of get_throttled; the "has occurred" bits 16-19 are ignored).
func Throttled(root string) bool {
	b, err := os.ReadFile(filepath.Join(root, "/sys/devices/platform/soc/soc:firmware/get_throttled"))
	if err != nil {
		return false
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 16, 32)
	return err == nil && v&0xf != 0
}
