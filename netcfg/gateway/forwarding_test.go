package gateway

import (
	"os"
	"path/filepath"
	"testing"
)

func procSys(t *testing.T, value string) Forwarding {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "net/ipv4"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "net/ipv4/ip_forward"), []byte(value), 0o644); err != nil {
		t.Fatal(err)
	}
	return Forwarding{ProcSys: dir}
}

func TestForwardingEnableWritesOnlyWhenOff(t *testing.T) {
	f := procSys(t, "0\n")
	if on, err := f.Enabled(); err != nil || on {
		t.Fatalf("Enabled with 0 = %v, %v", on, err)
	}
	if changed, err := f.Enable(); err != nil || !changed {
		t.Fatalf("Enable from 0 = %v, %v; want changed", changed, err)
	}
	if on, err := f.Enabled(); err != nil || !on {
		t.Fatalf("Enabled after Enable = %v, %v", on, err)
	}
	// Already on: nothing is written (under systemd's ProtectKernelTunables
	// /proc/sys is read-only, and the sysctl.d file has turned it on).
	on := procSys(t, "1")
	if changed, err := on.Enable(); err != nil || changed {
		t.Fatalf("Enable when on = %v, %v; want no change", changed, err)
	}
	if b, _ := os.ReadFile(on.path()); string(b) != "1" {
		t.Errorf("Enable rewrote ip_forward although it was on: %q", b)
	}
	if err := f.Disable(); err != nil {
		t.Fatal(err)
	}
	if on, err := f.Enabled(); err != nil || on {
		t.Fatalf("Enabled after Disable = %v, %v", on, err)
	}
}

func TestOtherForwarder(t *testing.T) {
	for _, c := range []struct {
		names []string
		want  string
	}{
		{[]string{"lo", "eth0", "eth1", "br0"}, ""},
		{[]string{"eth0", "docker0"}, "docker0"},
		{[]string{"cni0", "tailscale0"}, "cni0"},
		{[]string{"wlan0", "wg0"}, "wg0"},
		{nil, ""},
	} {
		if got := OtherForwarder(c.names); got != c.want {
			t.Errorf("OtherForwarder(%q) = %q, want %q", c.names, got, c.want)
		}
	}
}
