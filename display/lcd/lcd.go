package lcd

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"periph.io/x/conn/v3/i2c"

	"github.com/headnode/headnode/hw/lcdrom"
)

// ProbeAddrs are the addresses New tries when Opts.Addr is 0: the factory
// settings of PCF8574T and PCF8574AT backpacks. Lower addresses are not
// probed: 0x20 is where the ClusterHAT's own expander lives, and writing
// detection patterns to it would switch node power.
var ProbeAddrs = []uint16{0x27, 0x3f}

// Opts configures a display.
type Opts struct {
	// Addr is the backpack's I2C address; 0 probes ProbeAddrs.
	Addr uint16
	// PinMap is the backpack's wiring; nil detects it (PCF8574 boards) or
	// uses Adafruit (MCP23008 boards).
	PinMap *PinMap
	// Cols and Rows: 16x2, 20x2, 16x4 or 20x4.
	Cols, Rows int
	// ROM is the module's character ROM; nil means A00.
	ROM *lcdrom.ROM
	// Backlight on or off.
	Backlight bool
	// Sleep waits; nil means time.Sleep. Only the initialisation sleeps.
	Sleep func(time.Duration)
}

// DefaultOpts is a 16x2 A00 module with the backlight on, found and
// identified automatically.
var DefaultOpts = Opts{Cols: 16, Rows: 2, ROM: lcdrom.A00, Backlight: true}

// Unmappable is drawn for a character the ROM does not have.
const Unmappable = '?'

// HD44780 instructions (datasheet Table 6).
const (
	cmdClear       = 0x01
	cmdEntryInc    = 0x06 // increment, no display shift
	cmdDisplayOff  = 0x08
	cmdDisplayOn   = 0x0c // display on, cursor and blink off
	cmdFunction4x2 = 0x28 // 4-bit interface, 2 lines, 5x8 dots
	cmdSetDDRAM    = 0x80
)

// MCP23008 registers.
const (
	mcpIODIR = 0x00
	mcpIOCON = 0x05
	mcpGPIO  = 0x09
	mcpSEQOP = 0x20 // IOCON: no address-pointer increment, so GPIO can be streamed
)

// Delays. Clear needs 1.52 ms at 270 kHz; slow clones run at ~190 kHz.
const (
	powerUpWait = 50 * time.Millisecond // > 40 ms after VCC reaches 2.7 V
	firstWait   = 5 * time.Millisecond  // > 4.1 ms after the first 0x3
	secondWait  = time.Millisecond      // > 100 µs after the second
	clearWait   = 2 * time.Millisecond
)

// ErrReset means the backpack lost power and came back: its expander is in
// its power-on state and the LCD needs initialising.
var ErrReset = errors.New("lcd: the backpack was reset (power loss); it needs re-initialising")

// Dev is an HD44780 display on an I2C backpack.
type Dev struct {
	mu        sync.Mutex
	dev       i2c.Dev
	pins      PinMap
	detected  bool
	cols      int
	rows      int
	rom       *lcdrom.ROM
	backlight bool
	sleep     func(time.Duration)

	port     byte     // the last port state written
	portSet  bool     // port is known
	want     [][]byte // what the screen should show, transcoded
	shown    [][]byte // what it shows, as far as we know; nil rows are unknown
	needInit bool
	powered  bool // an Init has completed since the last error
}

// New finds the backpack on bus, identifies it and initialises the LCD
// (blank screen, backlight as set).
func New(bus i2c.Bus, o *Opts) (*Dev, error) {
	if o == nil {
		o = &DefaultOpts
	}
	d := &Dev{cols: o.Cols, rows: o.Rows, rom: o.ROM, backlight: o.Backlight, sleep: o.Sleep}
	if d.cols == 0 {
		d.cols, d.rows = 16, 2
	}
	if !validSize(d.cols, d.rows) {
		return nil, fmt.Errorf("lcd: %dx%d is not supported; use 16x2, 20x2, 16x4 or 20x4", d.cols, d.rows)
	}
	if d.rom == nil {
		d.rom = lcdrom.A00
	}
	if d.sleep == nil {
		d.sleep = time.Sleep
	}
	addr := o.Addr
	if addr == 0 {
		a, err := Locate(bus)
		if err != nil {
			return nil, err
		}
		addr = a
	}
	d.dev = i2c.Dev{Bus: bus, Addr: addr}
	mcp, err := d.isMCP23008()
	if err != nil {
		return nil, fmt.Errorf("lcd: no backpack answers at 0x%02x on %s: %w", addr, bus, err)
	}
	switch {
	case o.PinMap != nil:
		d.pins = *o.PinMap
		if d.pins.MCP23008 != mcp {
			return nil, fmt.Errorf("lcd: pin map %q is for %s, but the backpack at 0x%02x is %s", d.pins.Name, chipName(d.pins.MCP23008), addr, chipName(mcp))
		}
	case mcp:
		d.pins, d.detected = Adafruit, true
	default:
		p, ok, err := detectPinMap(d.dev)
		if err != nil {
			return nil, fmt.Errorf("lcd: detecting the pin map at 0x%02x: %w", addr, err)
		}
		d.pins, d.detected = p, ok
	}
	d.want = make([][]byte, d.rows)
	for i := range d.want {
		d.want[i] = d.blankRow()
	}
	d.needInit = true
	if err := d.write(); err != nil {
		return nil, err
	}
	return d, nil
}

func validSize(cols, rows int) bool {
	return (cols == 16 || cols == 20) && (rows == 2 || rows == 4)
}

func chipName(mcp bool) string {
	if mcp {
		return "an MCP23008"
	}
	return "a PCF8574"
}

// Locate returns the first of ProbeAddrs where a device answers a 1-byte
// read (periph cannot send an address-only probe).
func Locate(bus i2c.Bus) (uint16, error) {
	var b [1]byte
	var errs []string
	for _, a := range ProbeAddrs {
		err := bus.Tx(a, nil, b[:])
		if err == nil {
			return a, nil
		}
		errs = append(errs, fmt.Sprintf("0x%02x: %v", a, err))
	}
	return 0, fmt.Errorf("lcd: no backpack found on %s (%s); check the wiring, or set its address", bus, strings.Join(errs, "; "))
}

// isMCP23008 tells the two expanders apart without driving anything into
// the LCD (duinoWitchery's method): an MCP23008 reads back IODIR = 0xff
// after [0x00, 0xff]; a PCF8574 reads back the port it was last given,
// 0x00.
func (d *Dev) isMCP23008() (bool, error) {
	if err := d.dev.Tx([]byte{0x00, 0xff}, nil); err != nil {
		return false, err
	}
	var r [1]byte
	if err := d.dev.Tx([]byte{0x00}, r[:]); err != nil {
		return false, err
	}
	return r[0] == 0xff, nil
}

// detectPinMap works out a PCF8574 board's wiring from how its pins read
// back. RW is high throughout, so the LCD never takes a write. For the
// candidate E bit, everything is set high but E: with the right candidate
// the LCD is idle and every pin reads back as written (but the backlight
// pin, which an active-high transistor pulls low); with a wrong one the
// real E is high and the LCD drives its data lines in a read cycle. Two
// rounds, so that a data nibble of all ones cannot fake a match.
func detectPinMap(dev i2c.Dev) (PinMap, bool, error) {
	candidates := []PinMap{Standard, MJKDZ, LCDXIO}
	match := make([]int, len(candidates))
	var blHigh [3]bool
	var r [1]byte
	for range 2 {
		for i, c := range candidates {
			v := byte(0xff) &^ c.bit(c.E)
			if err := dev.Tx([]byte{0xff, v}, r[:]); err != nil {
				return PinMap{}, false, err
			}
			bl := c.bit(c.BL)
			if r[0]&^bl == v&^bl {
				match[i]++
				blHigh[i] = r[0]&bl != 0
			}
		}
	}
	found := -1
	for i, n := range match {
		if n == 2 {
			if found >= 0 {
				return Standard, false, nil
			}
			found = i
		}
	}
	if found < 0 {
		return Standard, false, nil
	}
	p := candidates[found]
	// A pin that reads high while weakly pulled up has no transistor base
	// loading it: the backlight is switched by a PNP, active low.
	p.BLActiveLow = blHigh[found]
	if p.Name == "standard" && p.BLActiveLow {
		p = StandardBLLow
	}
	if p.Name != "standard" && !p.BLActiveLow {
		p.Name += "-bl-high"
	}
	return p, true, nil
}

// Info describes the display.
type Info struct {
	Addr     uint16
	Chip     string // "PCF8574" or "MCP23008"
	PinMap   string
	Detected bool // the pin map was detected rather than configured or guessed
	Cols     int
	Rows     int
	ROM      string
}

// Info returns what New found.
func (d *Dev) Info() Info {
	chip := "PCF8574"
	if d.pins.MCP23008 {
		chip = "MCP23008"
	}
	return Info{Addr: d.dev.Addr, Chip: chip, PinMap: d.pins.Name, Detected: d.detected, Cols: d.cols, Rows: d.rows, ROM: d.rom.Name()}
}

func (d *Dev) String() string {
	return fmt.Sprintf("hd44780 %dx%d at 0x%02x (%s, %s)", d.cols, d.rows, d.dev.Addr, d.Info().Chip, d.pins.Name)
}

// Encode transcodes s into the ROM's character codes, rune by rune; a rune
// the ROM cannot draw becomes '?'.
func (d *Dev) Encode(s string) []byte { return Encode(d.rom, s) }

// Encode transcodes s for rom.
func Encode(rom *lcdrom.ROM, s string) []byte {
	out := make([]byte, 0, len(s))
	for _, r := range s {
		if r == utf8.RuneError {
			out = append(out, Unmappable)
			continue
		}
		c, ok := rom.Code(r)
		if !ok {
			c = Unmappable
		}
		out = append(out, c)
	}
	return out
}

func (d *Dev) blankRow() []byte {
	b := make([]byte, d.cols)
	for i := range b {
		b[i] = ' '
	}
	return b
}

// Write shows rows (missing rows are blank; longer rows are cut). Only
// rows that differ from the screen are written, each in one I2C
// transaction, and of each only the characters from the first to the
// last that differ. After an error the next Write (or Refresh) re-initialises
// the LCD and writes every row.
func (d *Dev) Write(rows []string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := range d.rows {
		row := d.blankRow()
		if i < len(rows) {
			enc := d.Encode(rows[i])
			copy(row, enc)
		}
		d.want[i] = row
	}
	return d.write()
}

// Refresh re-initialises the LCD and redraws every row: the cure for a
// controller that lost nibble sync or had its settings changed by noise.
func (d *Dev) Refresh() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.needInit = true
	return d.write()
}

// SetBacklight turns the backlight on or off.
func (d *Dev) SetBacklight(on bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.backlight = on
	if d.needInit {
		return d.write()
	}
	bl := d.pins.bit(d.pins.BL)
	v := d.port&^bl | d.pins.port(false, 0, on)&bl
	if err := d.fail(d.send(append(d.newTx(), v))); err != nil {
		return err
	}
	d.port = v
	return nil
}

// Check reads the expander to see whether it was reset (a power glitch on
// the backpack blanks the LCD without any failed write). It returns
// ErrReset then, and the next Write re-initialises.
func (d *Dev) Check() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	reset, err := d.wasReset()
	if err != nil {
		return d.fail(err)
	}
	if reset {
		return d.fail(ErrReset)
	}
	return nil
}

// wasReset reads the expander (one byte) and reports whether it is in its
// power-on state rather than the state we left it in.
func (d *Dev) wasReset() (bool, error) {
	var r [1]byte
	if d.pins.MCP23008 {
		if err := d.dev.Tx([]byte{mcpIODIR}, r[:]); err != nil {
			return false, err
		}
		return r[0] != 0x00, nil // we make every pin an output; reset makes them inputs
	}
	if err := d.dev.Tx(nil, r[:]); err != nil {
		return false, err
	}
	// We always leave E low; reset sets every pin high.
	return d.portSet && r[0]&d.pins.bit(d.pins.E) != 0, nil
}

// Halt blanks the screen and turns the backlight off.
func (d *Dev) Halt() error {
	d.mu.Lock()
	d.backlight = false
	d.mu.Unlock()
	return d.Write(nil)
}

// Rows returns what the display shows (as far as the driver knows),
// decoded through the ROM.
func (d *Dev) Rows() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]string, d.rows)
	for i, row := range d.want {
		var b strings.Builder
		for _, c := range row {
			b.WriteRune(d.rom.Glyph(c))
		}
		out[i] = b.String()
	}
	return out
}

func (d *Dev) fail(err error) error {
	if err != nil {
		d.needInit = true
		d.powered = false
		d.shown = nil
	}
	return err
}

// write brings the screen to want: initialising first if needed, then each
// row that differs from shown.
func (d *Dev) write() error {
	// A backpack that lost power since the last write is back in its
	// reset state, and the controller in 8-bit mode: written to as if
	// nothing happened, it shows garbage that the periodic check can no
	// longer see (our write left the port as we always leave it). One
	// read before writing catches it.
	if !d.needInit && d.changed() {
		reset, err := d.wasReset()
		if err != nil {
			return d.fail(err)
		}
		if reset {
			// As after any failure: a full power-up initialisation.
			d.fail(ErrReset)
		}
	}
	if d.needInit {
		if err := d.fail(d.init()); err != nil {
			return err
		}
		d.needInit = false
		d.powered = true
		// Clear left every row blank.
		d.shown = make([][]byte, d.rows)
		for i := range d.shown {
			d.shown[i] = d.blankRow()
		}
	}
	for r, row := range d.want {
		if d.shown[r] != nil && string(d.shown[r]) == string(row) {
			continue
		}
		// Only the characters from the first to the last that differ:
		// a renumbered uplink ("10.99.0.2" to "10.99.0.7") is one
		// character, a tenth of a row's bus time (6.4 ms at 100 kHz).
		from, to := 0, len(row)
		if old := d.shown[r]; old != nil {
			for from < to && old[from] == row[from] {
				from++
			}
			for to > from && old[to-1] == row[to-1] {
				to--
			}
		}
		b := d.newTx()
		b = d.appendByte(b, false, cmdSetDDRAM|(rowOffset(r, d.cols)+byte(from)))
		for _, c := range row[from:to] {
			b = d.appendByte(b, true, c)
		}
		if err := d.fail(d.send(b)); err != nil {
			return fmt.Errorf("lcd: writing row %d: %w", r+1, err)
		}
		d.shown[r] = append([]byte(nil), row...)
	}
	return nil
}

// changed reports whether any row differs from what the screen shows.
func (d *Dev) changed() bool {
	for r, row := range d.want {
		if d.shown[r] == nil || string(d.shown[r]) != string(row) {
			return true
		}
	}
	return false
}

// rowOffset is the DDRAM address of the first character of row r: the
// second and fourth rows are line 2 (0x40); the third and fourth continue
// lines 1 and 2 after the first cols characters.
func rowOffset(r, cols int) byte {
	off := byte(0)
	if r%2 == 1 {
		off = 0x40
	}
	if r >= 2 {
		off += byte(cols)
	}
	return off
}

// init is the datasheet's initialisation by instruction (Fig. 24). After
// an error or at first use it waits for the supply first; its first three
// 0x3 nibbles bring the controller to 8-bit mode from any state, including
// 4-bit out of nibble sync.
func (d *Dev) init() error {
	if d.pins.MCP23008 {
		// Stream GPIO without pointer increments; every pin an output.
		if err := d.dev.Tx([]byte{mcpIOCON, mcpSEQOP}, nil); err != nil {
			return err
		}
		if err := d.dev.Tx([]byte{mcpIODIR, 0x00}, nil); err != nil {
			return err
		}
	}
	if !d.powered {
		// E low first: a re-powered PCF8574 holds every pin high.
		d.portSet = false
		if err := d.send(append(d.newTx(), d.pins.port(false, 0, d.backlight))); err != nil {
			return err
		}
		d.port, d.portSet = d.pins.port(false, 0, d.backlight), true
		d.sleep(powerUpWait)
	}
	steps := []struct {
		nibbles []byte // sent in 8-bit mode: one E pulse each
		bytes   []byte // sent in 4-bit mode
		wait    time.Duration
	}{
		{nibbles: []byte{0x3}, wait: firstWait},
		{nibbles: []byte{0x3}, wait: secondWait},
		// The bus spaces these by ≥ 180 µs at 100 kHz (≥ 45 µs at 400 kHz).
		{nibbles: []byte{0x3, 0x2}, bytes: []byte{cmdFunction4x2, cmdDisplayOff, cmdClear}, wait: clearWait},
		{bytes: []byte{cmdEntryInc, cmdDisplayOn}},
	}
	for _, s := range steps {
		b := d.newTx()
		for _, n := range s.nibbles {
			b = d.appendNibble(b, false, n)
		}
		for _, c := range s.bytes {
			b = d.appendByte(b, false, c)
		}
		if err := d.send(b); err != nil {
			return err
		}
		if s.wait > 0 {
			d.sleep(s.wait)
		}
	}
	return nil
}

// newTx starts a transaction's bytes: for an MCP23008, the GPIO register.
func (d *Dev) newTx() []byte {
	if d.pins.MCP23008 {
		return []byte{mcpGPIO}
	}
	return nil
}

// appendByte appends the port states that send c as two nibbles.
func (d *Dev) appendByte(b []byte, rs bool, c byte) []byte {
	b = d.appendNibble(b, rs, c>>4)
	return d.appendNibble(b, rs, c&0x0f)
}

// appendNibble appends the port states for one E pulse: when RS changes,
// a state with the new RS and E low first (address set-up before E rises);
// then E high with the data, then E low with the same data and RS (hold).
func (d *Dev) appendNibble(b []byte, rs bool, n byte) []byte {
	v := d.pins.port(rs, n, d.backlight)
	rsBit := d.pins.bit(d.pins.RS)
	if !d.portSet || v&rsBit != d.port&rsBit {
		b = append(b, v)
	}
	e := d.pins.bit(d.pins.E)
	b = append(b, v|e, v)
	d.port, d.portSet = v, true
	return b
}

// send writes one transaction.
func (d *Dev) send(b []byte) error {
	_, err := d.dev.Write(b)
	return err
}
