package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
	"github.com/headnode/headnode/display"
	"github.com/headnode/headnode/hw/hidraw"
)

// displayConfig writes a configuration with the LCD and LED on, on
// emulated hardware when sim is set.
func (tp *topo) displayConfig(t *testing.T, sim bool, extra string) string {
	t.Helper()
	path := filepath.Join(tp.dir, "display.toml")
	backend := "auto"
	if sim {
		backend = "sim"
	}
	text := fmt.Sprintf(`[network]
cluster_interface = "eth0"
cluster_address = "192.168.50.1/24"
uplink_interface = "eth1"

[control]
socket = %q

[daemon]
state_dir = %q

[hardware]
backend = %q
hid_trace = %q
%s`, filepath.Join(tp.dir, "control.sock"), filepath.Join(tp.dir, "state"), backend, filepath.Join(tp.dir, "hid.jsonl"), extra)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// On emulated hardware (a 20x4 LCD on a mjkdz backpack at 0x3f, a
// BlinkStick Nano): the uplink address reaches the glass, a new address
// replaces it as soon as netlink reports it, the LED follows health and
// obeys `headnode led`, every feature report is traced, and on SIGTERM
// the LED is left showing "stopped".
func TestE2EDisplayOnEmulatedHardware(t *testing.T) {
	tp := newTopo(t, true)
	cfg := tp.displayConfig(t, true, `
[lcd]
size = "20x4"

[hardware.sim]
lcd_size = "20x4"
lcd_address = 0x3f
lcd_pinmap = "mjkdz"
led = "nano"
`)
	d := tp.startDaemon(t, cfg)
	s, _ := d.waitFor(t, "the address on the LCD and the LED ok", func(s *api.Status) bool {
		l := s.Display.LCD
		return len(l.Rows) == 4 && strings.TrimSpace(l.Rows[0]) == "10.99.0.2" && s.Display.LED.Pattern == "ok"
	})
	l := s.Display.LCD
	if l.State != api.DeviceOK || l.Address != "0x3f" || l.PinMap != "mjkdz" || !l.PinMapDetected || !l.Emulated || !strings.HasSuffix(strings.TrimSpace(l.Rows[1]), "NAT ok") {
		t.Errorf("LCD %+v", l)
	}
	if host, _ := os.Hostname(); strings.TrimSpace(l.Rows[2]) != host[:min(len(host), 20)] {
		t.Errorf("row 3 %q, want the hostname %q", l.Rows[2], host)
	}
	if e := s.Display.LED; e.State != api.DeviceOK || e.Kind != "BlinkStick Nano" || e.LEDs != 2 || e.Mode != "auto" || len(e.Colors) != 2 {
		t.Errorf("LED %+v", e)
	}
	if s.Health.State != api.HealthOK {
		t.Errorf("health %+v", s.Health)
	}

	// Address change -> glass, timed from the change to the status that
	// carries the emulated glass's new text.
	got := make(chan time.Time, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watching := make(chan struct{})
	go d.client.Watch(ctx, func(s *api.Status) bool {
		select {
		case <-watching:
		default:
			close(watching)
		}
		if r := s.Display.LCD.Rows; len(r) > 0 && strings.TrimSpace(r[0]) == "10.99.0.7" {
			got <- time.Now()
			return false
		}
		return true
	})
	<-watching
	changed := time.Now()
	tp.renumberUplink(t)
	select {
	case at := <-got:
		// Includes the emulated bus time of the row (about 6 ms at
		// 100 kHz) and the report back through the daemon's loop.
		t.Logf("address change on the glass %v after the change", at.Sub(changed))
		if at.Sub(changed) > 500*time.Millisecond {
			t.Errorf("the glass took %v", at.Sub(changed))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the new address never reached the LCD")
	}

	// `headnode led`.
	out, errOut, code := run(t, nil, "led", "identify", "--config", cfg)
	if code != 0 || !strings.Contains(out, "identify") {
		t.Errorf("led identify: exit %d, %q %q", code, out, errOut)
	}
	d.waitFor(t, "identify", func(s *api.Status) bool {
		return s.Display.LED.Pattern == "identify" && s.Display.LED.Mode == "identify"
	})
	if _, errOut, code := run(t, nil, "led", "blink", "--config", cfg); code != 2 || errOut != "headnode: unknown LED mode \"blink\": use identify, stopped or auto (or on, off for the boards' node LEDs)\n" {
		t.Errorf("led blink: exit %d, %q", code, errOut)
	}
	if _, _, code := run(t, nil, "led", "auto", "--config", cfg); code != 0 {
		t.Errorf("led auto: exit %d", code)
	}
	d.waitFor(t, "auto", func(s *api.Status) bool { return s.Display.LED.Pattern == "ok" })
	out, _, _ = run(t, nil, "status", "--config", cfg)
	for _, want := range []string{"LCD", "20x4 A00 at 0x3f on i2c-1 (PCF8574, mjkdz), emulated", "BlinkStick Nano BS000001-3.0, ok, emulated"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}

	// SIGTERM: the last report written is the stopped colour.
	d.cmd.Process.Signal(syscall.SIGTERM)
	<-d.exited
	entries := hidTrace(t, filepath.Join(tp.dir, "hid.jsonl"))
	if len(entries) < 3 || entries[0].Dev != "BS000001-3.0" || entries[0].Get != "0402" {
		t.Fatalf("HID trace starts %+v", entries[:min(3, len(entries))])
	}
	red := display.Legend{Brightness: 0.3}.Stopped().Steps[0].Color
	last := entries[len(entries)-1]
	if want := fmt.Sprintf("050000%02x%02x%02x", red.R, red.G, red.B); last.Set != want && entries[len(entries)-2].Set != want {
		t.Errorf("the trace does not end with the stopped colour %s: %+v", want, entries[len(entries)-2:])
	}
}

func hidTrace(t *testing.T, path string) []hidraw.Entry {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []hidraw.Entry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e hidraw.Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.T == "" {
			t.Fatalf("trace line %q: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}

// On this machine there is no I2C bus and no hidraw device: with the LCD
// and LED enabled the daemon runs, NAT works, and health is degraded
// (never failed) with both named. `headnode led stopped` without a daemon
// (systemd's ExecStopPost) looks for the stick itself and says none is
// there.
func TestE2EMissingDisplayDegrades(t *testing.T) {
	tp := newTopo(t, true)
	cfg := tp.displayConfig(t, false, "")
	d := tp.startDaemon(t, cfg)
	s, _ := d.waitFor(t, "both missing", func(s *api.Status) bool {
		return s.Display.LCD.State == api.DeviceMissing && s.Display.LED.State == api.DeviceMissing && s.NAT.State == api.NATOK
	})
	reasons := strings.Join(s.Health.Reasons, "|")
	if s.Health.State != api.HealthDegraded || !strings.Contains(reasons, "LCD missing: i2c bus 1") || !strings.Contains(reasons, "status LED missing: no status LED") {
		t.Errorf("health %+v", s.Health)
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	<-d.exited
	_, errOut, code := run(t, nil, "led", "stopped", "--config", cfg)
	if code != 1 || errOut != "headnode: no status LED (BlinkStick or blink(1)) is plugged in\n" {
		t.Errorf("led stopped without daemon or stick: exit %d, %q", code, errOut)
	}
	if _, _, code := run(t, nil, "led", "identify", "--config", cfg); code != 3 {
		t.Errorf("led identify without a daemon: exit %d, want 3", code)
	}
}
