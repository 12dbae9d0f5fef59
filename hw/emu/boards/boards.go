// Package boards assembles emulated node power boards into one machine for
// `headnode sim` and tests: a ClusterHAT (its EEPROM in an emulated device
// tree, and an XRA1200P/PCA9554 expander on an emulated bus, or GPIO lines
// for v1.x) and ClusterCTRL boards (firmware on their own buses, linked as
// /dev/ClusterCTRL-N). The chips' state is saved to a file on every change,
// so the emulated hardware outlives a daemon restart as real hardware does;
// removing the file is a power cycle of everything.
package boards

import (
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
	// Dir holds the device tree, the /dev links and the saved state.
	Dir string
}

// FirstCTRLBus is the bus number of the first emulated ClusterCTRL.
const FirstCTRLBus = 11

// V1Lines are the BCM GPIO lines of a ClusterHAT v1.x.
var V1Lines = []int{5, 6, 13, 19, 26}

// Machine is the emulated hardware.
type Machine struct {
	HATDir, DevDir string
	Expander       *expander.Dev
	Pins           map[int]*gpiopin.Pin
	CTRL           map[int]*clusterctrl.Dev

	mu    sync.Mutex
	state string
}

type saved struct {
	Expander *expander.State           `json:"expander,omitempty"`
	Pins     map[int][2]bool           `json:"pins,omitempty"`
	CTRL     map[int]clusterctrl.State `json:"ctrl,omitempty"`
}

// New builds the machine and attaches its chips to the buses bus returns.
// A saved state in Dir is restored.
func New(s Spec, bus func(n int) *emu.Bus) (*Machine, error) {
	m := &Machine{HATDir: filepath.Join(s.Dir, "hat"), DevDir: filepath.Join(s.Dir, "dev"), Pins: map[int]*gpiopin.Pin{}, CTRL: map[int]*clusterctrl.Dev{}, state: filepath.Join(s.Dir, "boards.json")}
	os.RemoveAll(m.HATDir)
	os.RemoveAll(m.DevDir)
	if err := os.MkdirAll(m.DevDir, 0o755); err != nil {
		return nil, err
	}
	var sv saved
	if b, err := os.ReadFile(m.state); err == nil {
		json.Unmarshal(b, &sv) // a bad file is a power cycle
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
				p := gpiopin.New(fmt.Sprintf("GPIO%d", n), false)
				if v, ok := sv.Pins[n]; ok {
					p.Restore(v[0], v[1])
				}
				p.OnChange(m.save)
				m.Pins[n] = p
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
			if sv.Expander != nil {
				m.Expander.Restore(*sv.Expander)
			}
			m.Expander.OnChange(m.save)
			bus(s.HATBus).Attach(s.HATAddress, m.Expander)
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
		m.CTRL[n] = d
	}
	return m, nil
}

func parseVersion(s string) (major, minor int, ok bool) {
	a, b, found := strings.Cut(s, ".")
	x, err1 := strconv.Atoi(a)
	y, err2 := strconv.Atoi(b)
	return x, y, found && err1 == nil && err2 == nil && x >= 1 && x <= 3 && y >= 0 && y <= 15
}

// GPIO returns emulated line n.
func (m *Machine) GPIO(n int) (*gpiopin.Pin, error) {
	p, ok := m.Pins[n]
	if !ok {
		return nil, errors.New("GPIO" + strconv.Itoa(n) + " is not wired on the emulated machine")
	}
	return p, nil
}

// Reboot is a power cycle of every board, as after the controller
// rebooted and took their supply with it.
func (m *Machine) Reboot() {
	if m.Expander != nil {
		m.Expander.Reset()
	}
	for _, p := range m.Pins {
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
	tmp := m.state + ".tmp"
	if os.WriteFile(tmp, b, 0o644) == nil {
		os.Rename(tmp, m.state)
	}
}
