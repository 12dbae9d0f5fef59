// Package boards assembles emulated node power boards into one machine for
// `headnode sim` and tests: a ClusterHAT (its EEPROM in an emulated device
// tree, and an XRA1200P/PCA9554 expander on an emulated bus, or GPIO lines
// for v1.x) and ClusterCTRL boards (firmware on their own buses, linked as
// /dev/ClusterCTRL-N). The chips' state is saved to a file on every change,
// so the emulated hardware outlives a daemon restart as real hardware does;
// removing the file is a power cycle of everything.
//
// The machine also has the files Raspberry Pi OS shows about the Pi and
// its USB devices, under SysDir as they are under / on a Pi: the board
// revision (/proc/device-tree/system/linux,revision, /proc/cpuinfo), the
// firmware's throttling flags (the raspberrypi-firmware driver's
// get_throttled and the rpi_volt hwmon's under-voltage alarm), the SoC
// temperature, the ClusterHAT's USB hub in /sys/bus/usb/devices (there
// only while the expander holds it on), and each ClusterCTRL's
// i2c-tiny-usb interface with its i2c-N adapter, which is how the official
// tool finds a board's place on USB.
package boards

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/headnode/headnode/hw/emu"
	"github.com/headnode/headnode/hw/emu/clusterctrl"
	"github.com/headnode/headnode/hw/emu/expander"
	"github.com/headnode/headnode/hw/emu/gpiopin"
	"github.com/headnode/headnode/hw/emu/hateeprom"
)

// Spec describes the machine.
type Spec struct {
	// HAT is the ClusterHAT version, "" for none; 1.x uses GPIO lines.
	HAT string
	// Chip is "xra1200p" or "pca9554".
	Chip       string
	HATBus     int
	HATAddress uint16
	// CTRL lists ClusterCTRL boards by name (clusterctrl.Variants); board
	// i is on bus FirstCTRLBus+i with order 20+i.
	CTRL []string
	// WPLink is the ClusterHAT's write-protect solder link bridged: it
	// holds the expander's WP pin (bit 7) high.
	WPLink bool
	// Pi is the head node's model, "4" (the default) or "5".
	Pi string
	// ExtraHub puts a second hub with the ClusterHAT's USB IDs (a Genesys
	// GL850G, common in other hubs) on the machine's USB.
	ExtraHub bool
	// Dir holds the device tree, the /dev links and the saved state.
	Dir string
}

// FirstCTRLBus is the bus number of the first emulated ClusterCTRL.
const FirstCTRLBus = 11

// V1Lines are the BCM GPIO lines of a ClusterHAT v1.x.
var V1Lines = []int{5, 6, 13, 19, 26}

// USB paths on the emulated machine: the ClusterHAT's hub on port 3 of the
// Pi's own hub, ClusterCTRL board i on port 2+i of that hub, a second
// ClusterHAT-like hub (Spec.ExtraHub) on port 1.
const (
	HATHubPath   = "1-1.3"
	extraHubPath = "1-1.1"
)

// CTRLPath is the USB path of ClusterCTRL board i's own hub.
func CTRLPath(i int) string { return fmt.Sprintf("1-1.%d", 4+i) }

// Machine is the emulated hardware.
type Machine struct {
	HATDir, DevDir string
	// SysDir is the root under which the Pi's /proc and /sys files are.
	SysDir   string
	Expander *expander.Dev
	Pins     map[int]*gpiopin.Pin
	CTRL     map[int]*clusterctrl.Dev

	mu       sync.Mutex
	state    string
	saved    []byte // what state holds, as last written
	hubHigh  bool   // the HAT's hub is on when bit 5 is high (v2.0)
	hubShown bool
}

type saved struct {
	Expander *expander.State           `json:"expander,omitempty"`
	Pins     map[int][2]bool           `json:"pins,omitempty"`
	CTRL     map[int]clusterctrl.State `json:"ctrl,omitempty"`
}

// New builds the machine and attaches its chips to the buses bus returns.
// A saved state in Dir is restored.
func New(s Spec, bus func(n int) *emu.Bus) (*Machine, error) {
	m := &Machine{HATDir: filepath.Join(s.Dir, "hat"), DevDir: filepath.Join(s.Dir, "dev"), SysDir: filepath.Join(s.Dir, "sys"),
		Pins: map[int]*gpiopin.Pin{}, CTRL: map[int]*clusterctrl.Dev{}, state: filepath.Join(s.Dir, "boards.json")}
	os.RemoveAll(m.HATDir)
	os.RemoveAll(m.DevDir)
	os.RemoveAll(m.SysDir)
	if err := os.MkdirAll(m.DevDir, 0o755); err != nil {
		return nil, err
	}
	if err := m.writePi(s.Pi); err != nil {
		return nil, err
	}
	if s.ExtraHub {
		if err := m.showHub(extraHubPath, true); err != nil {
			return nil, err
		}
	}
	var sv saved
	if b, err := os.ReadFile(m.state); err == nil {
		json.Unmarshal(b, &sv) // a bad file is a power cycle
		m.saved = b
	}
	if s.HAT != "" {
		major, minor, ok := parseVersion(s.HAT)
		if !ok {
			return nil, fmt.Errorf("emulated ClusterHAT version %q: want major.minor", s.HAT)
		}
		if err := hateeprom.WriteTree(m.HATDir, hateeprom.ClusterHAT(major, minor)); err != nil {
			return nil, err
		}
		if major == 1 {
			for _, n := range V1Lines {
				m.line(n, sv.Pins)
			}
			// The v1 hub has no switch: it is always there.
			if err := m.showHub(HATHubPath, true); err != nil {
				return nil, err
			}
		} else {
			chip := expander.XRA1200P
			if s.Chip == "pca9554" {
				chip = expander.PCA9554
			}
			m.Expander = expander.New(chip)
			// The power-on-state link in its default place: P1-P4 held
			// low while the pins are inputs (nodes off).
			for pin := range 4 {
				m.Expander.SetExternal(pin, expander.Low)
			}
			if s.WPLink {
				m.Expander.SetExternal(7, expander.High)
			}
			if sv.Expander != nil {
				m.Expander.Restore(*sv.Expander)
			}
			m.hubHigh = major == 2 && minor == 0
			m.Expander.OnChange(func() { m.save(); m.syncHub() })
			bus(s.HATBus).Attach(s.HATAddress, m.Expander)
			m.syncHub()
		}
	}
	// Other lines (a fan on GPIO18, say) come when asked for, restored
	// from the saved state if they were driven before.
	for n := range sv.Pins {
		if _, ok := m.Pins[n]; !ok {
			m.line(n, sv.Pins)
		}
	}
	for i, name := range s.CTRL {
		v, ok := clusterctrl.Variants[strings.ToLower(name)]
		if !ok {
			return nil, fmt.Errorf("unknown ClusterCTRL board %q", name)
		}
		n := FirstCTRLBus + i
		d := clusterctrl.New(clusterctrl.Opts{Variant: v, Order: byte(20 + i), Busy: 1})
		if st, ok := sv.CTRL[n]; ok {
			d.Restore(st)
		}
		d.OnChange(m.save)
		bus(n).Attach(clusterctrl.Address, d)
		if err := hateeprom.LinkClusterCTRL(m.DevDir, n); err != nil {
			return nil, err
		}
		if err := m.showI2CTinyUSB(i, v, n); err != nil {
			return nil, err
		}
		m.CTRL[n] = d
	}
	return m, nil
}

// line makes BCM GPIO n with the SoC's reset pull, restored from saved.
func (m *Machine) line(n int, saved map[int][2]bool) *gpiopin.Pin {
	p := gpiopin.New(fmt.Sprintf("GPIO%d", n), gpiopin.ResetPull(n))
	if v, ok := saved[n]; ok {
		p.Restore(v[0], v[1])
	}
	p.OnChange(m.save)
	m.Pins[n] = p
	return p
}

// writePi writes the files that describe the Pi: a Pi 4 Model B (revision
// c03114) or a Pi 5 (d04170), not throttled, at 45 °C.
func (m *Machine) writePi(model string) error {
	rev := [4]byte{0x00, 0xc0, 0x31, 0x14}
	if model == "5" {
		rev = [4]byte{0x00, 0xd0, 0x41, 0x70}
	}
	files := map[string]string{
		"proc/device-tree/system/linux,revision": string(rev[:]),
		"proc/cpuinfo":                           fmt.Sprintf("processor\t: 0\nRevision\t: %x\nSerial\t\t: 100000000badc0de\nModel\t\t: emulated\n", rev[1:]),
		"sys/bus/platform/drivers/raspberrypi-firmware/soc:firmware/get_throttled": "0\n",
		"sys/class/hwmon/hwmon0/name":            "rpi_volt\n",
		"sys/class/hwmon/hwmon0/in0_lcrit_alarm": "0\n",
		"sys/class/thermal/thermal_zone0/temp":   "45000\n",
	}
	for name, content := range files {
		path := filepath.Join(m.SysDir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// showHub makes (or removes) a hub with the ClusterHAT's USB IDs, a
// Genesys Logic GL850G (05e3:0608), at path in /sys/bus/usb/devices.
func (m *Machine) showHub(path string, there bool) error {
	dir := filepath.Join(m.SysDir, "sys/bus/usb/devices", path)
	if !there {
		return os.RemoveAll(dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, v := range map[string]string{"idVendor": "05e3\n", "idProduct": "0608\n", "bDeviceClass": "09\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// syncHub shows the ClusterHAT's hub on USB while the expander holds it on:
// bit 5 high on a v2.0, low on later boards (high holds them in reset, as
// the expander's pull-up does while its pins are inputs).
func (m *Machine) syncHub() {
	on := m.Expander.Level(5) == m.hubHigh
	m.mu.Lock()
	defer m.mu.Unlock()
	if on != m.hubShown && m.showHub(HATHubPath, on) == nil {
		m.hubShown = on
	}
}

// showI2CTinyUSB makes ClusterCTRL board i's i2c-tiny-usb interface
// (configuration 1, interface 0) and its adapter i2c-bus, as the kernel
// shows them in /sys/bus/usb/drivers/i2c-tiny-usb: the board's hub at
// CTRLPath(i), its controller below at the board's GETPATH 0 ports.
func (m *Machine) showI2CTinyUSB(i int, v clusterctrl.Variant, bus int) error {
	path := CTRLPath(i)
	if len(v.Paths) > 0 {
		for _, p := range v.Paths[0] {
			path += fmt.Sprintf(".%d", p)
		}
	}
	return os.MkdirAll(filepath.Join(m.SysDir, "sys/bus/usb/drivers/i2c-tiny-usb", path+":1.0", fmt.Sprintf("i2c-%d", bus)), 0o755)
}

func parseVersion(s string) (major, minor int, ok bool) {
	a, b, found := strings.Cut(s, ".")
	x, err1 := strconv.Atoi(a)
	y, err2 := strconv.Atoi(b)
	return x, y, found && err1 == nil && err2 == nil && x >= 1 && x <= 3 && y >= 0 && y <= 15
}

// GPIO returns emulated BCM line n (0-27, the lines on the header).
func (m *Machine) GPIO(n int) (*gpiopin.Pin, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p, ok := m.Pins[n]; ok {
		return p, nil
	}
	if n < 0 || n > 27 {
		return nil, errors.New("GPIO" + strconv.Itoa(n) + " is not on the emulated machine's header (GPIO0-27)")
	}
	return m.line(n, nil), nil
}

// Reboot is a power cycle of every board, as after the controller
// rebooted and took their supply with it.
func (m *Machine) Reboot() {
	if m.Expander != nil {
		m.Expander.Reset()
	}
	m.mu.Lock()
	pins := make([]*gpiopin.Pin, 0, len(m.Pins))
	for _, p := range m.Pins {
		pins = append(pins, p)
	}
	m.mu.Unlock()
	for _, p := range pins {
		p.Reset()
	}
	for _, d := range m.CTRL {
		d.Reset()
	}
	m.save()
}

func (m *Machine) save() {
	m.mu.Lock()
	defer m.mu.Unlock()
	sv := saved{Pins: map[int][2]bool{}, CTRL: map[int]clusterctrl.State{}}
	if m.Expander != nil {
		st := m.Expander.Save()
		sv.Expander = &st
	}
	for n, p := range m.Pins {
		o, l := p.Save()
		sv.Pins[n] = [2]bool{o, l}
	}
	for n, d := range m.CTRL {
		sv.CTRL[n] = d.Save()
	}
	b, _ := json.Marshal(sv)
	if bytes.Equal(b, m.saved) {
		return // most register writes change nothing that is kept
	}
	// Rewritten in place, not renamed over: every change made a new inode
	// (a few milliseconds each on a busy ext4, and the power part writes
	// the expander several times at start), and a file torn by a crash
	// is read as a power cycle, which a real board survives too.
	if os.WriteFile(m.state, b, 0o644) == nil {
		m.saved = b
	}
}

// HATHubPresent reports whether the emulated ClusterHAT's USB hub is on
// the machine's USB (its /sys/bus/usb/devices entry under sysDir, the
// Machine's SysDir): not while the expander holds the hub off, as in a
// `hub off` or the first half of a `hub reset`. Whatever emulates the
// nodes' gadget links (headnode sim, tests) drops them while it is gone,
// as a real hub's devices vanish with it and each Zero's usb0 loses
// carrier.
func HATHubPresent(sysDir string) bool {
	_, err := os.Stat(filepath.Join(sysDir, "sys/bus/usb/devices", HATHubPath))
	return err == nil
}
