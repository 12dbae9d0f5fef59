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
