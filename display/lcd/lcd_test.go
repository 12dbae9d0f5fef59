package lcd

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/headnode/headnode/hw/emu"
	"github.com/headnode/headnode/hw/emu/hd44780"
	"github.com/headnode/headnode/hw/lcdrom"
)

// fakeClock is shared by the driver's sleeps and the emulator's bus-time
// model, so tests are fast and the emulator still sees the driver's waits.
type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time        { return c.t }
func (c *fakeClock) Sleep(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *fakeClock                 { return &fakeClock{t: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)} }
func sizeName(cols, rows int) string       { return fmt.Sprintf("%dx%d", cols, rows) }
func rowText(r, cols int) string           { return fmt.Sprintf("r%d:%s", r, "0123456789abcdefghijk"[:cols-3]) }
func (c *fakeClock) opts(o Opts) *Opts     { o.Sleep = c.Sleep; return &o }
func board(t *testing.T, n string) hd44780.Board {
	b, ok := hd44780.BoardByName(n)
	if !ok {
		t.Fatalf("no board %q", n)
	}
	return b
}

type rig struct {
	bus   *emu.Bus
	mod   *hd44780.Module
	dev   *Dev
	clock *fakeClock
	// afterNew is the controller's counters once New returned: detection
	// may wiggle RW with E (the LCD is only ever read then); from the
	// initialisation on, every cycle must be within the datasheet's timing.
	afterNew hd44780.Stats
}

func newRig(t testing.TB, b hd44780.Board, addr uint16, cols, rows int, rom *lcdrom.ROM, o Opts) *rig {
	t.Helper()
	c := newClock()
	bus := emu.NewBus("emu-i2c-1")
	mod := hd44780.New(b, &hd44780.Opts{Cols: cols, Rows: rows, ROM: rom, Now: c.Now, Wait: c.Sleep})
	bus.Attach(addr, mod)
	o.Cols, o.Rows, o.ROM, o.Backlight = cols, rows, rom, true
	dev, err := New(bus, c.opts(o))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &rig{bus: bus, mod: mod, dev: dev, clock: c, afterNew: mod.Stats()}
}

func (r *rig) screen(t *testing.T, want []string) {
	t.Helper()
	got := r.mod.Screen()
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("screen:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func pad(s string, cols int) string { return fmt.Sprintf("%-*s", cols, s) }

// Every size with every backpack, address, chip and pin map found by New:
// each row lands on its own row of the glass (16x4 rows 3 and 4 at
// 0x10/0x50, 20x4 at 0x14/0x54), the backlight is on, and the controller
// saw no timing violation and dropped nothing.
func TestScreenEverySizeAndPinMap(t *testing.T) {
	for _, b := range hd44780.Boards {
		for _, size := range [][2]int{{16, 2}, {20, 2}, {16, 4}, {20, 4}} {
			cols, rows := size[0], size[1]
			addr := uint16(0x27)
			if b.Name == "lcdxio" {
				addr = 0x3f // a PCF8574A board
			}
			t.Run(b.Name+"/"+sizeName(cols, rows), func(t *testing.T) {
				r := newRig(t, b, addr, cols, rows, lcdrom.A00, Opts{})
				info := r.dev.Info()
				if info.Addr != addr || info.PinMap != b.Name || !info.Detected || info.Chip != b.Chip.String() {
					t.Errorf("found %+v, want %s at 0x%02x", info, b.Name, addr)
				}
				var text []string
				for i := range rows {
					text = append(text, rowText(i, cols))
				}
				if err := r.dev.Write(text); err != nil {
					t.Fatal(err)
				}
				r.screen(t, text)
				if !r.mod.Backlight() {
					t.Error("backlight off")
				}
				st := r.mod.Stats()
				if st.DroppedBusy != 0 || st.SetupViolation != r.afterNew.SetupViolation || st.HoldViolation != r.afterNew.HoldViolation {
					t.Errorf("controller stats %+v (after New: %+v)", st, r.afterNew)
				}
				if s := r.mod.State(); !s.TwoLine || s.EightBit || s.CursorOn || s.BlinkOn || !s.Increment || s.Shift != 0 {
					t.Errorf("controller state %+v", s)
				}
			})
		}
	}
}

// Detection runs before the controller is in a known state; a byte landing
// on the glass, or RW low with E high, would be a bug. A configured map
// skips detection.
func TestConfiguredPinMapAndAddress(t *testing.T) {
	m := MJKDZ
	r := newRig(t, board(t, "mjkdz"), 0x26, 16, 2, lcdrom.A00, Opts{Addr: 0x26, PinMap: &m})
	if info := r.dev.Info(); info.Detected || info.PinMap != "mjkdz" {
		t.Errorf("info %+v", info)
	}
	r.dev.Write([]string{"hello", "world"})
	r.screen(t, []string{pad("hello", 16), pad("world", 16)})
	_, err := New(r.bus, r.clock.opts(Opts{Cols: 16, Rows: 2, Addr: 0x26, PinMap: &Adafruit}))
	if err == nil || !strings.Contains(err.Error(), "is for an MCP23008, but the backpack at 0x26 is a PCF8574") {
		t.Errorf("MCP23008 map on a PCF8574: %v", err)
	}
}

func TestNoBackpack(t *testing.T) {
	bus := emu.NewBus("emu-i2c-1")
	_, err := New(bus, &Opts{Cols: 16, Rows: 2})
	if err == nil || !strings.Contains(err.Error(), "no backpack found on emu-i2c-1 (0x27:") || !errors.Is(err, emu.ErrNACK) && !strings.Contains(err.Error(), "0x3f") {
		t.Errorf("empty bus: %v", err)
	}
	_, err = New(bus, &Opts{Cols: 40, Rows: 4})
	if err == nil || err.Error() != "lcd: 40x4 is not supported; use 16x2, 20x2, 16x4 or 20x4" {
		t.Errorf("40x4: %v", err)
	}
}

// Text is transcoded rune by rune: the same string reads right on both
// ROMs where they can draw it, and '?' where they cannot, never as the
// katakana raw UTF-8 would give.
func TestCharacterROMs(t *testing.T) {
	text := []string{`Grüße 25°C`, `¥5 \o/ ~μ`}
	for _, tc := range []struct {
		rom  *lcdrom.ROM
		want []string
	}{
		{lcdrom.A00, []string{"Grü?e 25ﾟC", "¥5 ?o/ ?μ"}},
		{lcdrom.A02, []string{"Grüße 25°C", `¥5 \o/ ~μ`}},
	} {
		t.Run(tc.rom.Name(), func(t *testing.T) {
			r := newRig(t, board(t, "standard"), 0x27, 16, 2, tc.rom, Opts{})
			r.dev.Write(text)
			r.screen(t, []string{pad(tc.want[0], 16), pad(tc.want[1], 16)})
			if got := r.dev.Rows(); got[0] != pad(tc.want[0], 16) {
				t.Errorf("Rows() = %q", got)
			}
		})
	}
}

func TestOnlyChangedRowsAreWritten(t *testing.T) {
	r := newRig(t, board(t, "standard"), 0x27, 20, 4, lcdrom.A00, Opts{})
	rows := []string{"192.168.1.194", "4/4 up  NAT ok", "head", "NAT ok  48°C"}
	r.dev.Write(rows)
	before := r.bus.Stats()
	r.dev.Write(rows)
	if s := r.bus.Stats(); s != before {
		t.Errorf("rewriting the same rows cost %+v", s.Transactions-before.Transactions)
	}
	rows[1] = "3/4 up  NAT ok"
	r.dev.Write(rows)
	// One read (has the backpack been reset since?) and the row.
	if n := r.bus.Stats().Transactions - before.Transactions; n != 2 {
		t.Errorf("one changed row took %d transactions, want 2", n)
	}
	r.screen(t, []string{pad(rows[0], 20), pad(rows[1], 20), pad("head", 20), pad("NAT ok  48ﾟC", 20)})
}

// Noise on E shifts the 4-bit stream by a nibble: no I2C error is seen and
// the screen fills with garbage. A Refresh (done periodically) brings the
// controller back into sync and redraws.
func TestRecoversFromNibbleLoss(t *testing.T) {
	r := newRig(t, board(t, "standard"), 0x27, 16, 2, lcdrom.A00, Opts{})
	r.dev.Write([]string{"192.168.1.194", "4/4 up  NAT ok"})
	r.mod.Glitch()
	want := []string{pad("10.0.0.7", 16), pad("4/4 up  NAT ok", 16)}
	if err := r.dev.Write([]string{"10.0.0.7", "4/4 up  NAT ok"}); err != nil {
		t.Fatal(err)
	}
	if got := r.mod.Screen(); got[0] == want[0] {
		t.Fatalf("the glitch did not corrupt the stream (%q); the test proves nothing", got)
	}
	if !r.mod.State().AwaitingLowNibble && r.mod.State().Address < 0x40 {
		t.Logf("state after glitch %+v", r.mod.State())
	}
	if err := r.dev.Refresh(); err != nil {
		t.Fatal(err)
	}
	r.screen(t, want)
	if s := r.mod.State(); !s.TwoLine || !s.DisplayOn || s.Shift != 0 {
		t.Errorf("state after refresh %+v", s)
	}
}

// The backpack loses power: writes fail while it is off, and once it is
// back (LCD blank, 8-bit, one line) the next write initialises it again.
func TestRecoversAfterPowerLoss(t *testing.T) {
	r := newRig(t, board(t, "standard"), 0x27, 16, 2, lcdrom.A00, Opts{})
	rows := []string{"192.168.1.194", "4/4 up  NAT ok"}
	r.dev.Write(rows)
	r.mod.PowerOff()
	if err := r.dev.Write([]string{"10.0.0.7", rows[1]}); !errors.Is(err, emu.ErrNACK) {
		t.Fatalf("write without power: %v", err)
	}
	r.mod.PowerOn()
	r.screen(t, []string{pad("", 16), pad("", 16)})
	if err := r.dev.Write([]string{"10.0.0.7", rows[1]}); err != nil {
		t.Fatal(err)
	}
	r.screen(t, []string{pad("10.0.0.7", 16), pad(rows[1], 16)})
	if st := r.mod.Stats(); st.DroppedBusy != 0 {
		t.Errorf("bytes sent during the power-on reset were dropped: %+v", st)
	}

	// A glitch between two writes goes unnoticed by writes alone; Check
	// sees the expander's reset state.
	r.mod.PowerOff()
	r.mod.PowerOn()
	r.clock.Sleep(20 * time.Millisecond)
	if err := r.dev.Check(); !errors.Is(err, ErrReset) {
		t.Fatalf("Check after a power glitch: %v", err)
	}
	r.dev.Write([]string{"10.0.0.7", rows[1]})
	r.screen(t, []string{pad("10.0.0.7", 16), pad(rows[1], 16)})
	if err := r.dev.Check(); err != nil {
		t.Errorf("Check on a healthy display: %v", err)
	}
}

func TestPowerLossOnMCP23008(t *testing.T) {
	r := newRig(t, board(t, "adafruit"), 0x27, 20, 4, lcdrom.A00, Opts{})
	r.dev.Write([]string{"a", "b", "c", "d"})
	r.mod.PowerOff()
	r.mod.PowerOn()
	if err := r.dev.Check(); !errors.Is(err, ErrReset) {
		t.Fatalf("Check after reset: %v", err)
	}
	r.dev.Write([]string{"a", "b", "c", "d"})
	r.screen(t, []string{pad("a", 20), pad("b", 20), pad("c", 20), pad("d", 20)})
}

// An I2C error in the middle of a row leaves the controller in an unknown
// state: the next write re-initialises and redraws every row.
func TestI2CErrorForcesFullRedraw(t *testing.T) {
	r := newRig(t, board(t, "lcdxio"), 0x3f, 16, 2, lcdrom.A00, Opts{})
	r.dev.Write([]string{"one", "two"})
	r.bus.SetInject(func(uint16, []byte) error { return emu.ErrBus })
	if err := r.dev.Write([]string{"one", "three"}); !errors.Is(err, emu.ErrBus) {
		t.Fatalf("write with a failing bus: %v", err)
	}
	r.bus.SetInject(nil)
	r.mod.Glitch() // whatever half-state the failure left
	if err := r.dev.Write([]string{"one", "three"}); err != nil {
		t.Fatal(err)
	}
	r.screen(t, []string{pad("one", 16), pad("three", 16)})
}

func TestBacklight(t *testing.T) {
	for _, name := range []string{"standard", "standard-bl-low", "mjkdz", "adafruit"} {
		r := newRig(t, board(t, name), 0x27, 16, 2, lcdrom.A00, Opts{})
		r.dev.Write([]string{"x"})
		if err := r.dev.SetBacklight(false); err != nil {
			t.Fatal(err)
		}
		if r.mod.Backlight() {
			t.Errorf("%s: backlight still on", name)
		}
		r.dev.SetBacklight(true)
		r.dev.Write([]string{"y"})
		if !r.mod.Backlight() {
			t.Errorf("%s: backlight off", name)
		}
		r.screen(t, []string{pad("y", 16), pad("", 16)})
	}
}

func TestParsePinMap(t *testing.T) {
	m, err := ParsePinMap("rs=4, rw=none e=6 d4=0 d5=1 d6=2 d7=3 bl=7 bl_low")
	if err != nil {
		t.Fatal(err)
	}
	if m.RS != 4 || m.RW != -1 || m.E != 6 || m.D != [4]int{0, 1, 2, 3} || m.BL != 7 || !m.BLActiveLow {
		t.Errorf("parsed %+v", m)
	}
	for in, want := range map[string]string{
		"sainsmart":                              `pin map "sainsmart" is not known; use "standard", "standard-bl-low", "mjkdz", "lcdxio", "adafruit", or give the bits like "rs=0 rw=1 e=2 d4=4 d5=5 d6=6 d7=7 bl=3"`,
		"rs=0 rw=1 e=2 d4=4 d5=5 d6=6 d7=7":      `pin map "rs=0 rw=1 e=2 d4=4 d5=5 d6=6 d7=7": bl is missing; give every line (rw and bl may be "none")`,
		"rs=0 rw=1 e=2 d4=4 d5=5 d6=6 d7=8 bl=3": `pin map "rs=0 rw=1 e=2 d4=4 d5=5 d6=6 d7=8 bl=3": d7="8" is not a bit number 0-7`,
		"rs=0 rw=1 e=1 d4=4 d5=5 d6=6 d7=7 bl=3": `pin map "rs=0 rw=1 e=1 d4=4 d5=5 d6=6 d7=7 bl=3": bit 1 is given to both rw and e`,
	} {
		if _, err := ParsePinMap(in); err == nil || err.Error() != want {
			t.Errorf("%q: %v\nwant %s", in, err, want)
		}
	}
	// A custom map drives the emulated board it describes.
	custom, _ := ParsePinMap("rs=6 rw=5 e=4 d4=0 d5=1 d6=2 d7=3 bl=7 bl_low")
	r := newRig(t, board(t, "mjkdz"), 0x27, 16, 2, lcdrom.A00, Opts{PinMap: &custom})
	r.dev.Write([]string{"custom"})
	r.screen(t, []string{pad("custom", 16), pad("", 16)})
}

// The backpack loses power and gets it back between two writes, with no
// check in between: the next write must find out (the expander is in its
// reset state) and initialise first, or it writes 4-bit nibbles to a
// controller back in 8-bit mode and the glass shows garbage that looks,
// to the driver, like success.
func TestWriteAfterUnnoticedPowerLossInitialisesFirst(t *testing.T) {
	r := newRig(t, board(t, "standard"), 0x27, 16, 2, lcdrom.A00, Opts{})
	if err := r.dev.Write([]string{"192.168.1.194", "4/4 up  NAT ok"}); err != nil {
		t.Fatal(err)
	}
	r.mod.PowerOff()
	r.mod.PowerOn()
	if err := r.dev.Write([]string{"10.0.0.7", "4/4 up  NAT ok"}); err != nil {
		t.Fatal(err)
	}
	r.screen(t, []string{pad("10.0.0.7", 16), pad("4/4 up  NAT ok", 16)})
}

// A changed row is written from its first to its last changed character:
// a renumbered address is a few bytes on the bus, on every row of every
// size (rows 3 and 4 continue lines 1 and 2), and the glass is right.
func TestWriteOnlyTheChangedCharacters(t *testing.T) {
	for _, size := range [][2]int{{16, 2}, {20, 4}, {16, 4}} {
		cols, rows := size[0], size[1]
		r := newRig(t, hd44780.Boards[0], 0x27, cols, rows, lcdrom.A00, Opts{})
		text := []string{"10.99.0.2", "4/4 up  NAT ok", "cluster-head", "NAT ok  48 C"}[:rows]
		if err := r.dev.Write(text); err != nil {
			t.Fatal(err)
		}
		for row := range rows {
			text = slices.Clone(text)
			text[row] = strings.Replace(text[row], text[row][3:4], "X", 1)
			before := r.bus.Stats()
			if err := r.dev.Write(text); err != nil {
				t.Fatal(err)
			}
			d := diff(before, r.bus.Stats())
			// One read (the reset check), one write: the address
			// command and one character, 4 port states each and one
			// for the change of RS.
			if d.Transactions != 2 || d.Written > 10 {
				t.Errorf("%dx%d row %d: %d transactions, %d bytes for one character", cols, rows, row+1, d.Transactions, d.Written)
			}
			var want []string
			for _, s := range text {
				want = append(want, pad(s, cols))
			}
			r.screen(t, want)
		}
	}
}
