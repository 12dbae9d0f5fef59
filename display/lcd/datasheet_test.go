package lcd

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"periph.io/x/conn/v3/physic"
)

// event is one thing the driver does to the world: an I2C transaction
// (w written, n bytes read) or a wait.
type event struct {
	w       []byte
	n       int
	wait    time.Duration
	atLeast bool // an expected wait: this long or longer
}

func (e event) String() string {
	switch {
	case e.isWait() && e.atLeast:
		return fmt.Sprintf("wait >= %s", e.wait)
	case e.isWait():
		return fmt.Sprintf("wait %s", e.wait)
	}
	return fmt.Sprintf("tx % x read %d", e.w, e.n)
}

// recorder is a bus with one expander on it that answers every read with
// answer, and a clock: it logs the transactions and the driver's sleeps in
// the order they happen.
type recorder struct {
	answer byte
	log    []event
}

func (r *recorder) String() string                  { return "recorder" }
func (r *recorder) SetSpeed(physic.Frequency) error { return nil }
func (r *recorder) Tx(addr uint16, w, rd []byte) error {
	for i := range rd {
		rd[i] = r.answer
	}
	r.log = append(r.log, event{w: append([]byte{}, w...), n: len(rd)})
	return nil
}
func (r *recorder) sleep(d time.Duration) { r.log = append(r.log, event{wait: d}) }

// tx and wait write the expected sequences below.
func tx(b ...byte) event            { return event{w: b} }
func txRead(n int, b ...byte) event { return event{w: b, n: n} }
func wait(min time.Duration) event  { return event{wait: min} }
func (e event) isWait() bool        { return e.w == nil && e.n == 0 }
func (e event) matches(got event) bool {
	if e.isWait() || got.isWait() {
		return e.isWait() && got.isWait() && got.wait >= e.wait
	}
	return e.n == got.n && string(e.w) == string(got.w)
}

// The HD44780U datasheet's "Initializing by Instruction" for the 4-bit
// interface (ADE-207-272(Z), Figure 24, page 46), written out by hand as
// the bytes a backpack's expander must see, and compared with what New
// puts on the bus. The steps, with RS = R/W = 0 throughout:
//
//	wait > 40 ms after VCC rises to 2.7 V (> 15 ms after 4.5 V)
//	DB7-DB4 = 0011 (function set, 8 bits)    wait > 4.1 ms
//	DB7-DB4 = 0011                           wait > 100 µs
//	DB7-DB4 = 0011
//	DB7-DB4 = 0010 (set the interface to 4 bits; from here on every
//	instruction is two nibbles, high first)
//	0010 NF00 function set: N = 1 two lines, F = 0 5x8 dots -> 0x28
//	0000 1000 display off                                    -> 0x08
//	0000 0001 display clear (1.52 ms, Table 6)               -> 0x01
//	0000 01IS entry mode set: I/D = 1 increment, S = 0       -> 0x06
//
// after which the driver turns the display on (0x0C: D = 1, cursor and
// blink off; Table 6 "Display on/off control"). Instructions without a
// wait after them are spaced by the bus: each byte of an I2C write takes 9
// SCL periods, so consecutive E falls are at least 18 periods (180 µs at
// 100 kHz, 45 µs at 400 kHz) apart, more than the 37 µs instructions
// take. Bytes are only ever latched on E's falling edge, so each nibble is
// two port states: data with E high, then the same data with E low.
func TestInitialisationByInstruction(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer byte // what a one-byte read of register 0 returns
		opts   Opts
		want   []event
	}{{
		// The standard PCF8574 backpack: P0 RS, P1 RW, P2 E, P3
		// backlight (high = on), P4-P7 D4-D7. A nibble n with the
		// backlight on is the port value n<<4 | 0x08, and 0x04 more
		// while E is high.
		name: "PCF8574 standard", answer: 0x00,
		opts: Opts{Addr: 0x27, PinMap: &Standard},
		want: []event{
			// Which expander (not part of Figure 24): an MCP23008
			// reads back IODIR = 0xFF, a PCF8574 its port, 0x00.
			tx(0x00, 0xff), txRead(1, 0x00),
			tx(0x08), // E low, backlight on, before anything else
			wait(40 * time.Millisecond),
			tx(0x3c, 0x38), // 0011
			wait(4100 * time.Microsecond),
			tx(0x3c, 0x38), // 0011
			wait(100 * time.Microsecond),
			tx(0x3c, 0x38, // 0011
				0x2c, 0x28, // 0010: 4-bit interface
				0x2c, 0x28, 0x8c, 0x88, // 0x28 function set
				0x0c, 0x08, 0x8c, 0x88, // 0x08 display off
				0x0c, 0x08, 0x1c, 0x18), // 0x01 clear
			wait(1520 * time.Microsecond),
			tx(0x0c, 0x08, 0x6c, 0x68, // 0x06 entry mode: increment
				0x0c, 0x08, 0xcc, 0xc8), // 0x0C display on
		},
	}, {
		// The Adafruit #292 backpack's MCP23008: GP1 RS, GP2 E, GP3-GP6
		// D4-D7, GP7 backlight (high = on), RW grounded. Every write
		// starts with the GPIO register (0x09); IOCON.SEQOP (0x05 bit
		// 5) stops the pointer moving on, so the bytes after it all
		// land on GPIO. A nibble n is n<<3 | 0x80, and 0x04 more while
		// E is high.
		name: "MCP23008 Adafruit", answer: 0xff,
		opts: Opts{Addr: 0x20},
		want: []event{
			tx(0x00, 0xff), txRead(1, 0x00),
			tx(0x05, 0x20), // IOCON: SEQOP
			tx(0x00, 0x00), // IODIR: every pin an output
			tx(0x09, 0x80), // E low, backlight on
			wait(40 * time.Millisecond),
			tx(0x09, 0x9c, 0x98), // 0011
			wait(4100 * time.Microsecond),
			tx(0x09, 0x9c, 0x98), // 0011
			wait(100 * time.Microsecond),
			tx(0x09, 0x9c, 0x98, // 0011
				0x94, 0x90, // 0010
				0x94, 0x90, 0xc4, 0xc0, // 0x28
				0x84, 0x80, 0xc4, 0xc0, // 0x08
				0x84, 0x80, 0x8c, 0x88), // 0x01
			wait(1520 * time.Microsecond),
			tx(0x09, 0x84, 0x80, 0xb4, 0xb0, // 0x06
				0x84, 0x80, 0xe4, 0xe0), // 0x0C
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			bus := &recorder{answer: tc.answer}
			o := tc.opts
			o.Cols, o.Rows, o.Backlight, o.Sleep = 16, 2, true, bus.sleep
			if _, err := New(bus, &o); err != nil {
				t.Fatal(err)
			}
			ok := len(bus.log) == len(tc.want)
			for i := 0; ok && i < len(tc.want); i++ {
				ok = tc.want[i].matches(bus.log[i])
			}
			if !ok {
				t.Errorf("New did on the bus:\n%s\nFigure 24 asks for:\n%s", lines(bus.log), lines(tc.want))
			}
		})
	}
}

func lines(evs []event) string {
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "  %s\n", e)
	}
	return b.String()
}
