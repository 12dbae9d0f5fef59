package hd44780

import (
	"strings"
	"time"

	"github.com/headnode/headnode/hw/lcdrom"
)

// Pins are the controller's inputs as the backpack drives them. Only
// DB4-DB7 are wired on I2C backpacks; D holds them in bits 0-3.
type Pins struct {
	RS, RW, E bool
	D         byte
}

// Execution times at the datasheet's 270 kHz oscillator.
const (
	execShort    = 37 * time.Microsecond
	execData     = 41 * time.Microsecond // 37 µs + tADD
	execClear    = 1520 * time.Microsecond
	powerOnReset = 15 * time.Millisecond
)

// Stats counts what the controller saw, for tests and benchmarks.
type Stats struct {
	Executed       int64 // instructions and data bytes carried out
	DroppedBusy    int64 // bytes that arrived while the controller was busy and were ignored
	SetupViolation int64 // RS or RW changed in the same port state that raised E (tAS)
	HoldViolation  int64 // RS, RW or data changed in the same port state that lowered E (tAH, tH)
	Reads          int64 // completed read cycles
}

// Controller is an emulated HD44780U: it latches on E's falling edge,
// assembles bytes from nibbles in 4-bit mode (and so can lose nibble sync
// exactly as the chip does), carries out the instruction set, ignores what
// arrives while it is busy, and keeps DDRAM and CGRAM.
type Controller struct {
	cols, rows int
	rom        *lcdrom.ROM

	pins    Pins
	latched Pins // RS/RW sampled at E's rising edge, data while E is high

	eightBit bool
	pending  bool // 4-bit mode: the high nibble has arrived
	high     byte

	twoLine, font5x10            bool
	displayOn, cursorOn, blinkOn bool
	increment, shiftOnWrite      bool
	cgMode                       bool
	ac                           byte
	shift                        int // display window offset within a line (0-39)
	ddram                        [0x80]byte
	cgram                        [64]byte
	busyUntil                    time.Time

	stats Stats
}

// NewController returns a controller behind a cols x rows panel, in the
// state the internal reset circuit leaves it: 8-bit interface, one line,
// display off, DDRAM cleared.
func NewController(cols, rows int, rom *lcdrom.ROM) *Controller {
	c := &Controller{cols: cols, rows: rows, rom: rom}
	c.reset(time.Time{})
	return c
}

// reset is the power-on reset: busy for 15 ms from at.
func (c *Controller) reset(at time.Time) {
	c.eightBit, c.pending = true, false
	c.twoLine, c.font5x10 = false, false
	c.displayOn, c.cursorOn, c.blinkOn = false, false, false
	c.increment, c.shiftOnWrite = true, false
	c.cgMode, c.ac, c.shift = false, 0, 0
	for i := range c.ddram {
		c.ddram[i] = ' '
	}
	c.pins = Pins{}
	if !at.IsZero() {
		c.busyUntil = at.Add(powerOnReset)
	}
}

// Drive applies a new state of the input pins at time at.
func (c *Controller) Drive(p Pins, at time.Time) {
	old := c.pins
	c.pins = p
	switch {
	case p.E && !old.E: // rising edge: RS and RW are sampled
		if p.RS != old.RS || p.RW != old.RW {
			c.stats.SetupViolation++
		}
		c.latched = p
	case p.E && old.E:
		c.latched.D = p.D // data may change while E is high
	case !p.E && old.E: // falling edge: the cycle completes
		if p.RS != old.RS || p.RW != old.RW || (!c.latched.RW && p.D != old.D) {
			c.stats.HoldViolation++
		}
		c.complete(at)
	}
}

// complete finishes a bus cycle with the latched values.
func (c *Controller) complete(at time.Time) {
	l := c.latched
	if l.RW {
		c.stats.Reads++
		if !c.eightBit {
			c.pending = !c.pending
			if c.pending {
				return
			}
		}
		if l.RS {
			c.step()
		}
		return
	}
	nibble := l.D & 0x0f
	if c.eightBit {
		// DB0-DB3 are not wired; the chip's pull-ups read them as 1.
		c.execute(l.RS, nibble<<4|0x0f, at)
		return
	}
	if !c.pending {
		c.pending, c.high = true, nibble
		return
	}
	c.pending = false
	c.execute(l.RS, c.high<<4|nibble, at)
}

// Output is what the controller drives onto DB4-DB7 during a read cycle
// (E high, RW high); ok is false when it drives nothing.
func (c *Controller) Output(at time.Time) (d byte, ok bool) {
	if !c.pins.E || !c.latched.RW {
		return 0, false
	}
	var v byte
	if c.latched.RS {
		v = c.read()
	} else {
		v = c.ac & 0x7f
		if at.Before(c.busyUntil) {
			v |= 0x80
		}
	}
	if c.eightBit || !c.pending {
		return v >> 4, true
	}
	return v & 0x0f, true
}

func (c *Controller) read() byte {
	if c.cgMode {
		return c.cgram[c.ac&0x3f]
	}
	return c.ddram[c.ac&0x7f]
}

func (c *Controller) execute(rs bool, b byte, at time.Time) {
	if at.Before(c.busyUntil) {
		c.stats.DroppedBusy++
		return
	}
	c.stats.Executed++
	exec := execShort
	switch {
	case rs:
		if c.cgMode {
			c.cgram[c.ac&0x3f] = b & 0x1f
		} else {
			c.ddram[c.ac&0x7f] = b
		}
		c.step()
		if c.shiftOnWrite && !c.cgMode {
			c.shiftDisplay(c.increment)
		}
		exec = execData
	case b&0x80 != 0:
		c.cgMode, c.ac = false, b&0x7f
	case b&0x40 != 0:
		c.cgMode, c.ac = true, b&0x3f
	case b&0x20 != 0:
		c.eightBit = b&0x10 != 0
		c.twoLine = b&0x08 != 0
		c.font5x10 = b&0x04 != 0
		c.pending = false
	case b&0x10 != 0:
		right := b&0x04 != 0
		if b&0x08 != 0 {
			c.shiftDisplay(!right)
		} else {
			c.moveCursor(right)
		}
	case b&0x08 != 0:
		c.displayOn, c.cursorOn, c.blinkOn = b&4 != 0, b&2 != 0, b&1 != 0
	case b&0x04 != 0:
		c.increment, c.shiftOnWrite = b&2 != 0, b&1 != 0
	case b&0x02 != 0:
		c.cgMode, c.ac, c.shift = false, 0, 0
		exec = execClear
	case b&0x01 != 0:
		for i := range c.ddram {
			c.ddram[i] = ' '
		}
		c.cgMode, c.ac, c.shift, c.increment = false, 0, 0, true
		exec = execClear
	}
	c.busyUntil = at.Add(exec)
}

// step moves the address counter after a data access.
func (c *Controller) step() { c.moveCursor(c.increment) }

func (c *Controller) moveCursor(forward bool) {
	if c.cgMode {
		if forward {
			c.ac = (c.ac + 1) & 0x3f
		} else {
			c.ac = (c.ac - 1) & 0x3f
		}
		return
	}
	if !c.twoLine {
		a := int(c.ac) % 80
		if forward {
			c.ac = byte((a + 1) % 80)
		} else {
			c.ac = byte((a + 79) % 80)
		}
		return
	}
	// Two lines: 0x00-0x27 and 0x40-0x67, each wrapping into the other.
	switch {
	case forward && c.ac == 0x27:
		c.ac = 0x40
	case forward && c.ac >= 0x67:
		c.ac = 0x00
	case forward:
		c.ac++
	case c.ac == 0x40:
		c.ac = 0x27
	case c.ac == 0x00:
		c.ac = 0x67
	default:
		c.ac--
	}
}

// shiftDisplay moves the visible window: left means the text moves left.
func (c *Controller) shiftDisplay(left bool) {
	if left {
		c.shift = (c.shift + 1) % 40
	} else {
		c.shift = (c.shift + 39) % 40
	}
}

// Screen renders what the panel shows, one string of cols characters per
// row, through the character ROM. Rows follow the usual module wiring: row
// 0 and 2 are the first and second half of DDRAM line 1 (rows 2 and 3
// exist on 4-row panels only), rows 1 and 3 of line 2.
func (c *Controller) Screen() []string {
	out := make([]string, c.rows)
	for r := range c.rows {
		var b strings.Builder
		for col := range c.cols {
			b.WriteRune(c.cell(r, col))
		}
		out[r] = b.String()
	}
	return out
}

func (c *Controller) cell(r, col int) rune {
	if !c.displayOn {
		return ' '
	}
	if !c.twoLine {
		if r != 0 {
			return ' '
		}
		return c.rom.Glyph(c.ddram[(col+c.shift)%80])
	}
	base := 0x00
	if r%2 == 1 {
		base = 0x40
	}
	pos := (r/2)*c.cols + col
	return c.rom.Glyph(c.ddram[base+(pos+c.shift)%40])
}

// State is the controller's configuration, for tests.
type State struct {
	EightBit, TwoLine, Font5x10  bool
	DisplayOn, CursorOn, BlinkOn bool
	Increment, ShiftOnWrite      bool
	AwaitingLowNibble            bool
	Address                      byte
	CGRAMSelected                bool
	Shift                        int
}

// State returns the controller's configuration.
func (c *Controller) State() State {
	return State{
		EightBit: c.eightBit, TwoLine: c.twoLine, Font5x10: c.font5x10,
		DisplayOn: c.displayOn, CursorOn: c.cursorOn, BlinkOn: c.blinkOn,
		Increment: c.increment, ShiftOnWrite: c.shiftOnWrite,
		AwaitingLowNibble: c.pending, Address: c.ac, CGRAMSelected: c.cgMode, Shift: c.shift,
	}
}

// CGRAM returns the eight pattern rows of custom character n (0-7).
func (c *Controller) CGRAM(n int) [8]byte {
	var out [8]byte
	copy(out[:], c.cgram[(n&7)*8:])
	return out
}

// Stats returns the counters.
func (c *Controller) Stats() Stats { return c.stats }
