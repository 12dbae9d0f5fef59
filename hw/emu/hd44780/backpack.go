package hd44780

import (
	"fmt"
	"sync"
	"time"

	"github.com/headnode/headnode/hw/emu"
	"github.com/headnode/headnode/hw/lcdrom"
)

// Wiring is how a backpack connects its expander's port bits to the LCD:
// bit numbers 0-7, -1 for a line that is not wired (RW tied to ground; no
// backlight transistor).
type Wiring struct {
	RS, RW, E int
	D         [4]int // D4, D5, D6, D7
	BL        int
	// BLActiveLow: the backlight is on when BL is low (a PNP transistor).
	// An active-high backlight uses an NPN transistor whose base loads the
	// pin, so a weakly driven high reads back low.
	BLActiveLow bool
}

// The backpacks found in the wild (sources in the package documentation).
var (
	// Standard is the common blue PCF8574 board (LCM1602 IIC, YwRobot,
	// DFRobot, SainSmart).
	Standard = Wiring{RS: 0, RW: 1, E: 2, BL: 3, D: [4]int{4, 5, 6, 7}}
	// StandardBLLow is the Robot Arduino LCM1602: the standard map with
	// an active-low backlight.
	StandardBLLow = Wiring{RS: 0, RW: 1, E: 2, BL: 3, D: [4]int{4, 5, 6, 7}, BLActiveLow: true}
	// MJKDZ is the mjkdz / GY-I2CLCD PCF8574 board.
	MJKDZ = Wiring{RS: 6, RW: 5, E: 4, BL: 7, D: [4]int{0, 1, 2, 3}, BLActiveLow: true}
	// LCDXIO is the ElectroFun LCDXIO board, lcdproc's default map.
	LCDXIO = Wiring{RS: 4, RW: 5, E: 6, BL: 7, D: [4]int{0, 1, 2, 3}, BLActiveLow: true}
	// Adafruit is the Adafruit #292 I2C/SPI backpack (MCP23008 side); RW
	// is grounded.
	Adafruit = Wiring{RS: 1, RW: -1, E: 2, BL: 7, D: [4]int{3, 4, 5, 6}}
)

// Chip is the backpack's port expander.
type Chip int

// Expanders.
const (
	PCF8574 Chip = iota
	MCP23008
)

func (c Chip) String() string {
	if c == MCP23008 {
		return "MCP23008"
	}
	return "PCF8574"
}

// Board is a named backpack: its expander and wiring.
type Board struct {
	Name   string
	Chip   Chip
	Wiring Wiring
}

// Boards are the emulated backpacks by the names [hardware.sim] lcd_pinmap
// accepts.
var Boards = []Board{
	{"standard", PCF8574, Standard},
	{"standard-bl-low", PCF8574, StandardBLLow},
	{"mjkdz", PCF8574, MJKDZ},
	{"lcdxio", PCF8574, LCDXIO},
	{"adafruit", MCP23008, Adafruit},
}

// BoardByName looks a board up by name.
func BoardByName(name string) (Board, bool) {
	for _, b := range Boards {
		if b.Name == name {
			return b, true
		}
	}
	return Board{}, false
}

// Opts configures an emulated module.
type Opts struct {
	Cols, Rows int
	ROM        *lcdrom.ROM
	// Now is the clock bus time is modelled from, and Wait lets it pass:
	// a transaction returns when its last byte is on the wire, as a real
	// I2C transfer does. nil means time.Now and time.Sleep; tests pass a
	// fake clock's.
	Now  func() time.Time
	Wait func(time.Duration)
	// BusHz is the I2C clock; 0 means the PCF8574's 100 kHz.
	BusHz int
}

// DefaultOpts is a 16x2 A00 module on a 100 kHz bus.
var DefaultOpts = Opts{Cols: 16, Rows: 2, ROM: lcdrom.A00, BusHz: 100_000}

// MCP23008 registers used here.
const (
	regIODIR  = 0x00
	regIOCON  = 0x05
	regGPIO   = 0x09
	regOLAT   = 0x0a
	numRegs   = 0x0b
	iconSEQOP = 0x20
)

// Module is a backpack with an LCD on it. It implements emu.Device; attach
// it to an emu.Bus at the backpack's address.
type Module struct {
	mu      sync.Mutex
	board   Board
	lcd     *Controller
	now     func() time.Time
	wait    func(time.Duration)
	period  time.Duration // one SCL period
	powered bool
	lastEnd time.Time

	latch byte // PCF8574 port latch (power-on: all high)
	reg   [numRegs]byte
	ptr   byte
}

// New returns a powered module; the LCD is in its power-on reset state, as
// if it had been powered long ago and never initialised.
func New(b Board, o *Opts) *Module {
	if o == nil {
		o = &DefaultOpts
	}
	opts := *o
	if opts.Cols == 0 {
		opts.Cols, opts.Rows = 16, 2
	}
	if opts.ROM == nil {
		opts.ROM = lcdrom.A00
	}
	if opts.Now == nil {
		opts.Now, opts.Wait = time.Now, time.Sleep
	}
	if opts.Wait == nil {
		opts.Wait = func(time.Duration) {}
	}
	if opts.BusHz == 0 {
		opts.BusHz = 100_000
	}
	m := &Module{board: b, now: opts.Now, wait: opts.Wait, period: time.Second / time.Duration(opts.BusHz), powered: true}
	m.lcd = NewController(opts.Cols, opts.Rows, opts.ROM)
	m.resetExpander()
	m.apply(time.Time{})
	return m
}

func (m *Module) resetExpander() {
	m.latch = 0xff
	m.reg = [numRegs]byte{regIODIR: 0xff}
	m.ptr = 0
}

// Tx implements emu.Device.
func (m *Module) Tx(w, r []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.powered {
		return fmt.Errorf("hd44780 backpack without power: %w", emu.ErrNACK)
	}
	start := m.now()
	if start.Before(m.lastEnd) {
		start = m.lastEnd
	}
	// The address byte takes 9 SCL periods; each further byte 9 more.
	at := func(i int) time.Time { return start.Add(time.Duration(9*(i+2)) * m.period) }
	if m.board.Chip == MCP23008 {
		m.mcpTx(w, r, at)
	} else {
		for i, b := range w {
			m.latch = b
			m.apply(at(i))
		}
		for i := range r {
			r[i] = m.pcfRead(at(len(w) + i))
		}
	}
	m.lastEnd = start.Add(time.Duration(9*(len(w)+len(r)+1)+2) * m.period)
	if d := m.lastEnd.Sub(m.now()); d > 0 {
		m.wait(d)
	}
	return nil
}

// port returns the levels the expander drives (before the LCD's own drive).
func (m *Module) port() byte {
	if m.board.Chip == MCP23008 {
		// Inputs float; the LCD's inputs read them as low.
		return m.reg[regOLAT] &^ m.reg[regIODIR]
	}
	return m.latch
}

func bit(v byte, n int) bool { return n >= 0 && v&(1<<n) != 0 }

// apply drives the LCD's pins from the port.
func (m *Module) apply(at time.Time) {
	v, w := m.port(), m.board.Wiring
	p := Pins{RS: bit(v, w.RS), RW: bit(v, w.RW), E: bit(v, w.E)}
	for i, n := range w.D {
		if bit(v, n) {
			p.D |= 1 << i
		}
	}
	m.lcd.Drive(p, at)
}

// pcfRead is a PCF8574 port read: a pin latched low reads low; a pin
// latched high is only weakly pulled up, so whatever drives it low wins:
// the LCD during a read cycle, or an active-high backlight transistor.
func (m *Module) pcfRead(at time.Time) byte {
	v, w := m.latch, m.board.Wiring
	if w.BL >= 0 && !w.BLActiveLow {
		v &^= 1 << w.BL
	}
	if d, ok := m.lcd.Output(at); ok {
		for i, n := range w.D {
			if d&(1<<i) == 0 {
				v &^= 1 << n
			}
		}
	}
	return v
}

func (m *Module) mcpTx(w, r []byte, at func(int) time.Time) {
	if len(w) > 0 {
		m.ptr = w[0] % numRegs
		for i, b := range w[1:] {
			switch m.ptr {
			case regGPIO, regOLAT:
				m.reg[regOLAT] = b
			default:
				m.reg[m.ptr] = b
			}
			if m.ptr == regIODIR || m.ptr == regGPIO || m.ptr == regOLAT {
				m.apply(at(i + 1))
			}
			m.advance()
		}
	}
	for i := range r {
		if m.ptr == regGPIO {
			r[i] = m.port()
		} else {
			r[i] = m.reg[m.ptr]
		}
		_ = at(len(w) + i)
		m.advance()
	}
}

// advance moves the register pointer unless IOCON.SEQOP disables it; past
// OLAT it wraps to IODIR, as on the chip.
func (m *Module) advance() {
	if m.reg[regIOCON]&iconSEQOP != 0 {
		return
	}
	m.ptr = (m.ptr + 1) % numRegs
}

// PowerOff cuts the backpack's supply: it stops answering (NACK) and
// forgets everything.
func (m *Module) PowerOff() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.powered = false
}

// PowerOn restores the supply: the expander comes up in its reset state
// and the LCD runs its power-on reset (busy for 15 ms, 8-bit, one line,
// display off, DDRAM cleared).
func (m *Module) PowerOn() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.powered = true
	m.resetExpander()
	m.lcd.reset(m.now())
	m.apply(m.now())
}

// Glitch is electrical noise on E: one spurious pulse, which in 4-bit mode
// shifts every later byte by a nibble until the controller is
// re-initialised.
func (m *Module) Glitch() {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	p := m.lcd.pins
	p.E = true
	m.lcd.Drive(p, now)
	p.E = false
	m.lcd.Drive(p, now)
}

// Screen renders the panel as text, one string per row.
func (m *Module) Screen() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.powered {
		return blank(m.lcd.rows, m.lcd.cols)
	}
	return m.lcd.Screen()
}

func blank(rows, cols int) []string {
	out := make([]string, rows)
	for i := range out {
		out[i] = fmt.Sprintf("%*s", cols, "")
	}
	return out
}

// Backlight reports whether the backlight is lit.
func (m *Module) Backlight() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	w := m.board.Wiring
	if !m.powered || w.BL < 0 {
		return false
	}
	return bit(m.port(), w.BL) != w.BLActiveLow
}

// State returns the controller's configuration.
func (m *Module) State() State {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lcd.State()
}

// Stats returns the controller's counters.
func (m *Module) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lcd.Stats()
}

// CGRAM returns the pattern of custom character n.
func (m *Module) CGRAM(n int) [8]byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lcd.CGRAM(n)
}

// Board returns the backpack.
func (m *Module) Board() Board { return m.board }
