package expander

import (
	"fmt"
	"sync"

	"github.com/headnode/headnode/hw/emu"
)

// Registers (XRA1200P names; the PCA9554 has only the first four).
const (
	RegInput    = 0x00 // GSR / input port: pin levels, read-only
	RegOutput   = 0x01 // OCR / output port latch
	RegPolarity = 0x02 // PIR / input polarity inversion
	RegConfig   = 0x03 // GCR / configuration: 1 = input, 0 = output
	RegPullUp   = 0x04 // PUR / pull-up enable (XRA1200P)
	RegIntEn    = 0x05 // IER
	RegTriState = 0x06 // TSCR / output three-state control
	RegIntStat  = 0x07 // ISR
	RegRiseEn   = 0x08 // REIR
	RegFallEn   = 0x09 // FEIR
	RegFilter   = 0x0A // IFR
)

// Chip selects the part number.
type Chip int

const (
	// XRA1200P has programmable pull-ups (on at reset) and registers
	// 0x00-0x0A.
	XRA1200P Chip = iota
	// PCA9554 has fixed weak pull-ups and registers 0x00-0x03; a command
	// byte above 0x03 is not acknowledged.
	PCA9554
)

func (c Chip) String() string {
	if c == PCA9554 {
		return "PCA9554"
	}
	return "XRA1200P"
}

// Drive is what the board drives onto a pin from outside the chip.
type Drive int

const (
	// Float: nothing drives the pin; an input reads the pull-up (high when
	// enabled, low otherwise).
	Float Drive = iota
	// Low: a link or resistor holds the pin low, stronger than the
	// internal pull-up.
	Low
	// High: a link holds the pin high.
	High
)

// Dev is one emulated expander. It implements emu.Device.
type Dev struct {
	chip Chip

	mu       sync.Mutex
	regs     [11]byte
	external [8]Drive
	writes   [11]int // register writes since New, per register
	onChange func()
}

// New returns an expander in its power-on reset state.
func New(chip Chip) *Dev {
	d := &Dev{chip: chip}
	d.resetLocked()
	return d
}

// Chip returns the part number.
func (d *Dev) Chip() Chip { return d.chip }

func (d *Dev) nregs() int {
	if d.chip == PCA9554 {
		return 4
	}
	return 11
}

// Reset returns every register to its power-on default: all pins inputs,
// output latch 0xFF, pull-ups on (XRA1200P). This is what the expander sees
// when its supply drops, as when a Pi 4 controller reboots.
func (d *Dev) Reset() {
	d.mu.Lock()
	d.resetLocked()
	f := d.onChange
	d.mu.Unlock()
	if f != nil {
		f()
	}
}

func (d *Dev) resetLocked() {
	d.regs = [11]byte{}
	d.regs[RegOutput] = 0xFF
	d.regs[RegConfig] = 0xFF
	if d.chip == XRA1200P {
		d.regs[RegPullUp] = 0xFF
		d.regs[RegFilter] = 0xFF
	}
}

// SetExternal sets what the board drives onto pin (0-7).
func (d *Dev) SetExternal(pin int, v Drive) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.external[pin] = v
}

// OnChange registers f to be called (outside the lock) after any register
// write or reset, so the state can be saved.
func (d *Dev) OnChange(f func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.onChange = f
}

// Level returns the level of pin (0-7) as a meter on the board would
// measure it: for an output, the latch; for an input, the external drive or
// the pull-up.
func (d *Dev) Level(pin int) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.levelLocked(pin)
}

func (d *Dev) levelLocked(pin int) bool {
	bit := byte(1) << pin
	isOutput := d.regs[RegConfig]&bit == 0
	triStated := d.chip == XRA1200P && d.regs[RegTriState]&bit != 0
	if isOutput && !triStated {
		return d.regs[RegOutput]&bit != 0
	}
	switch d.external[pin] {
	case Low:
		return false
	case High:
		return true
	}
	if d.chip == PCA9554 {
		return true // fixed 100 kΩ pull-up
	}
	return d.regs[RegPullUp]&bit != 0
}

// Reg returns a register's content as the chip holds it (the input
// register as it would read).
func (d *Dev) Reg(r byte) byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.readLocked(r)
}

// Writes returns how many times register r was written since New.
func (d *Dev) Writes(r byte) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.writes[r]
}

func (d *Dev) readLocked(r byte) byte {
	if r == RegInput {
		var v byte
		for pin := 0; pin < 8; pin++ {
			if d.levelLocked(pin) {
				v |= 1 << pin
			}
		}
		return v ^ d.regs[RegPolarity]
	}
	return d.regs[r]
}

// Tx implements emu.Device.
func (d *Dev) Tx(w, r []byte) error {
	d.mu.Lock()
	if len(w) == 0 {
		// A read without a command byte reads the last register selected;
		// the emulation keeps none, so it is refused, which the drivers
		// never do.
		d.mu.Unlock()
		return fmt.Errorf("%s: read without a register: %w", d.chip, emu.ErrNACK)
	}
	reg := w[0]
	if int(reg) >= d.nregs() {
		d.mu.Unlock()
		return fmt.Errorf("%s: register 0x%02x does not exist: %w", d.chip, reg, emu.ErrNACK)
	}
	changed := false
	for _, v := range w[1:] {
		d.writes[reg]++
		switch reg {
		case RegInput, RegIntStat:
			// read-only: the write is acknowledged and ignored
		default:
			if d.regs[reg] != v {
				changed = true
			}
			d.regs[reg] = v
		}
	}
	for i := range r {
		r[i] = d.readLocked(reg)
	}
	f := d.onChange
	d.mu.Unlock()
	if changed && f != nil {
		f()
	}
	return nil
}

// State is the content of the registers, for saving an emulated board
// across daemon restarts.
type State struct {
	Regs []byte `json:"regs"`
}

// Save returns the register file.
func (d *Dev) Save() State {
	d.mu.Lock()
	defer d.mu.Unlock()
	return State{Regs: append([]byte(nil), d.regs[:]...)}
}

// Restore loads a register file saved by Save. A state of the wrong size
// is ignored (the chip stays as it is).
func (d *Dev) Restore(s State) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(s.Regs) == len(d.regs) {
		copy(d.regs[:], s.Regs)
	}
}
