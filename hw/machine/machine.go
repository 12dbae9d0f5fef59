// Package machine is the hardware headnode runs on, chosen once: the
// Raspberry Pi's own I2C buses, GPIO lines, hidraw devices, device tree
// and /dev, or an emulated machine built from the chip models of package
// hw/emu, which offers the same things through the same interfaces. Code
// that takes its hardware from a Machine cannot tell which one it has,
// except where it asks so as to tell users (Emulated, Glass) or to break
// the hardware on purpose (Faults).
//
// Every I2C bus is wrapped once with tracing and error counting and every
// HID device can be traced, on both kinds of machine alike, so the traces
// ([hardware] i2c_trace and hid_trace) read the same.
//
// An emulated machine lives as long as its Machine: a reload of the
// configuration must not reset its chips, just as it does not power-cycle
// real ones. Its power boards save their state in the Spec's Dir on every
// change, so they also outlive a restart of the program.
package machine

import (
	"cmp"
	"fmt"
	"slices"
	"sync"

	"github.com/headnode/headnode/hw/detect"
	"github.com/headnode/headnode/hw/gpio"
	"github.com/headnode/headnode/hw/hidraw"
	"github.com/headnode/headnode/hw/i2cbus"
	"github.com/headnode/headnode/hw/machine/simspec"
	"github.com/headnode/headnode/hw/trace"
)

// Options chooses the machine.
type Options struct {
	// Backend is "sim" for the emulated machine Sim describes; anything
	// else ("auto", as [hardware] backend says) is the hardware this
	// program runs on.
	Backend string
	Sim     simspec.Spec
	// I2CTrace and HIDTrace, when not nil, get every I2C transaction and
	// every HID feature report.
	I2CTrace, HIDTrace *trace.Log
}

// Line is a GPIO line by BCM number, as a ClusterHAT v1.x drives them.
type Line interface {
	Name() string
	// State returns whether the line is an output and its level, without
	// changing the line.
	State() (output, high bool, err error)
	// Drive makes the line an output at the level, level first.
	Drive(high bool) error
}

// Machine is the hardware. Its methods are safe for concurrent use.
type Machine struct {
	i2cTrace, hidTrace *trace.Log
	emu                *emulated // nil on the real machine

	mu    sync.Mutex
	buses map[int]*i2cbus.Traced
}

// Open returns the machine o chooses. The real machine opens its devices
// as they are asked for, so it is never missing anything yet. The errors
// name the parts of an emulated machine that could not be built, which
// then goes on without them; its boards are reported by BoardsErr.
func Open(o Options) (*Machine, []error) {
	m := &Machine{i2cTrace: o.I2CTrace, hidTrace: o.HIDTrace, buses: map[int]*i2cbus.Traced{}}
	var errs []error
	if o.Backend == "sim" {
		m.emu, errs = newEmulated(o.Sim)
	}
	return m, errs
}

// BoardsErr reports why the machine's power boards cannot be looked for:
// an emulated machine whose boards could not be built (its directory is
// not writable, say). It is nil on the real machine, whose boards are
// looked for and found or not.
func (m *Machine) BoardsErr() error {
	if m.emu == nil {
		return nil
	}
	return m.emu.boardsErr
}

// Emulated reports whether the machine is emulated, for telling users so.
func (m *Machine) Emulated() bool { return m.emu != nil }

// I2C returns bus n, opened on first use and shared after that; its
// transactions are serialised by the kernel (or the emulated bus).
func (m *Machine) I2C(n int) (*i2cbus.Traced, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if b, ok := m.buses[n]; ok {
		return b, nil
	}
	var t *i2cbus.Traced
	if m.emu != nil {
		t = i2cbus.NewTraced(m.emu.bus(n), n, m.i2cTrace)
	} else {
		b, err := i2cbus.Open(n)
		if err != nil {
			return nil, err
		}
		t = i2cbus.NewTraced(b, n, m.i2cTrace)
	}
	m.buses[n] = t
	return t, nil
}

// OpenI2C returns the buses opened so far, by number, for their counters.
func (m *Machine) OpenI2C() []*i2cbus.Traced {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*i2cbus.Traced, 0, len(m.buses))
	for _, b := range m.buses {
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b *i2cbus.Traced) int { return cmp.Compare(a.N, b.N) })
	return out
}

// GPIO returns BCM line n.
func (m *Machine) GPIO(n int) (Line, error) {
	if m.emu != nil {
		if m.emu.boards == nil {
			return nil, fmt.Errorf("GPIO%d: %w", n, m.emu.boardsErr)
		}
		p, err := m.emu.boards.GPIO(n)
		if err != nil {
			return nil, err
		}
		return p, nil
	}
	l, err := gpio.Open(n)
	if err != nil {
		return nil, err
	}
	return l, nil
}

// HATDir is where a HAT's EEPROM shows in the device tree (detect.ReadHAT).
func (m *Machine) HATDir() string {
	if m.emu != nil {
		return m.emu.hatDir
	}
	return detect.HATDir
}

// DevDir holds the /dev/ClusterCTRL-N links of ClusterCTRL boards
// (detect.ClusterCTRLBuses).
func (m *Machine) DevDir() string {
	if m.emu != nil {
		return m.emu.devDir
	}
	return detect.DevDir
}

// SysRoot is the root under which the Pi's /proc and /sys files about
// itself and its USB devices are found ("/" on the real machine): its
// revision, throttling, temperature, and where the boards sit on USB.
func (m *Machine) SysRoot() string {
	if m.emu != nil {
		return m.emu.sysDir
	}
	return "/"
}

// HIDRoot is the root of the sysfs and /dev trees HID devices are listed
// in (hidraw.Enumerate); "" is this system's own.
func (m *Machine) HIDRoot() string {
	if m.emu != nil {
		return m.emu.hidRoot
	}
	return ""
}

// OpenHID opens a device node listed under HIDRoot.
func (m *Machine) OpenHID(path string) (hidraw.Feature, error) {
	if m.emu != nil {
		return m.emu.openHID(path)
	}
	d, err := hidraw.Open(path)
	if err != nil {
		return nil, err
	}
	return d, nil
}

// TraceHID returns dev with every feature report appended to the HID
// trace under the device's serial, or dev itself when the trace is off.
func (m *Machine) TraceHID(dev hidraw.Feature, serial string) hidraw.Feature {
	if m.hidTrace == nil {
		return dev
	}
	return &hidraw.Traced{Feature: dev, Serial: serial, Log: m.hidTrace}
}

// Glass returns the text on the LCD's glass, row by row, when the machine
// can see it: an emulated one reads it back from the controller. A real
// LCD cannot be read back, so ok is false there.
func (m *Machine) Glass() (rows []string, ok bool) {
	if m.emu == nil || m.emu.lcd == nil {
		return nil, false
	}
	return m.emu.lcd.Screen(), true
}

// Faults injects faults into an emulated machine; it is nil on the real
// one.
func (m *Machine) Faults() *Faults {
	if m.emu == nil {
		return nil
	}
	return &Faults{e: m.emu}
}
