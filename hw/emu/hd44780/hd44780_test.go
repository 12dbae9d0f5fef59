package hd44780

import (
	"strings"
	"testing"
	"time"

	"github.com/headnode/headnode/hw/lcdrom"
)

// clk is a fake clock the transactions advance.
type clk struct{ t time.Time }

func (c *clk) now() time.Time       { return c.t }
func (c *clk) wait(d time.Duration) { c.t = c.t.Add(d) }
func newModule(b Board, cols, rows int) (*Module, *clk) {
	c := &clk{t: time.Unix(1e9, 0)}
	return New(b, &Opts{Cols: cols, Rows: rows, ROM: lcdrom.A00, Now: c.now, Wait: c.wait}), c
}

// nib returns the standard-map port states of one E pulse.
func nib(rs bool, n byte) []byte {
	v := n<<4 | 0x08
	if rs {
		v |= 0x01
	}
	return []byte{v, v | 0x04, v}
}

func bytes(rs bool, s ...byte) []byte {
	var out []byte
	for _, c := range s {
		out = append(out, nib(rs, c>>4)...)
		out = append(out, nib(rs, c&0xf)...)
	}
	return out
}

func initSeq(m *Module, c *clk) {
	m.Tx(nib(false, 3), nil)
	c.wait(5 * time.Millisecond)
	m.Tx(append(nib(false, 3), nib(false, 3)...), nil)
	m.Tx(append(nib(false, 2), bytes(false, 0x28, 0x08, 0x01)...), nil)
	c.wait(2 * time.Millisecond)
	m.Tx(bytes(false, 0x06, 0x0c), nil)
}

// A hand-written nibble stream, independent of the driver: the datasheet's
// initialisation, then text at both lines.
func TestDecodesTheNibbleStream(t *testing.T) {
	m, c := newModule(Boards[0], 16, 2)
	if got := m.Screen(); strings.TrimSpace(strings.Join(got, "")) != "" {
		t.Fatalf("power-on screen not blank: %q", got)
	}
	initSeq(m, c)
	m.Tx(append(bytes(false, 0x80), bytes(true, 'h', 'i')...), nil)
	m.Tx(append(bytes(false, 0xc0+3), bytes(true, 0xe4, 0x7e)...), nil)
	want := []string{"hi              ", "   μ→           "}
	if got := m.Screen(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("screen %q, want %q", got, want)
	}
	if st := m.Stats(); st.DroppedBusy != 0 || st.Executed != 9+1+2+1+2 {
		t.Errorf("stats %+v", st)
	}
	if !m.Backlight() {
		t.Error("backlight off")
	}
}

// Without the wait after Clear, the next instructions arrive while the
// controller is busy and are ignored: the display stays off.
func TestBusyControllerIgnoresInstructions(t *testing.T) {
	m, c := newModule(Boards[0], 16, 2)
	m.Tx(nib(false, 3), nil)
	c.wait(5 * time.Millisecond)
	m.Tx(append(nib(false, 3), nib(false, 3)...), nil)
	m.Tx(append(nib(false, 2), bytes(false, 0x28, 0x08, 0x01, 0x06, 0x0c)...), nil)
	if st := m.Stats(); st.DroppedBusy != 2 || m.State().DisplayOn {
		t.Errorf("stats %+v, state %+v", st, m.State())
	}
}

// One spurious E pulse shifts every later byte by a nibble; the 3,3,3,2
// sequence brings the controller back, as the datasheet promises.
func TestLosesAndRegainsNibbleSync(t *testing.T) {
	m, c := newModule(Boards[0], 16, 2)
	initSeq(m, c)
	m.Glitch()
	if !m.State().AwaitingLowNibble {
		t.Fatal("a spurious pulse did not leave half a byte pending")
	}
	m.Tx(append(bytes(false, 0x80), bytes(true, 'o', 'k')...), nil)
	if got := m.Screen()[0]; strings.HasPrefix(got, "ok") {
		t.Fatalf("still in sync after a glitch: %q", got)
	}
	initSeq(m, c)
	m.Tx(append(bytes(false, 0x80), bytes(true, 'o', 'k')...), nil)
	if got := m.Screen()[0]; got != "ok              " {
		t.Errorf("after re-initialising: %q", got)
	}
}

// 20x4 rows 3 and 4 continue lines 1 and 2: text written past the end of
// row 1 appears on row 3.
func TestFourRowGeometry(t *testing.T) {
	m, c := newModule(Boards[0], 20, 4)
	initSeq(m, c)
	text := []byte("abcdefghijklmnopqrstUVWXYZ")
	m.Tx(append(bytes(false, 0x80), bytes(true, text...)...), nil)
	m.Tx(append(bytes(false, 0x80|0x54), bytes(true, '4')...), nil)
	got := m.Screen()
	if got[0] != "abcdefghijklmnopqrst" || got[2] != "UVWXYZ              " || got[3] != "4                   " {
		t.Errorf("screen %q", got)
	}
	m16, c16 := newModule(Boards[0], 16, 4)
	initSeq(m16, c16)
	m16.Tx(append(bytes(false, 0x80|0x50), bytes(true, 'x')...), nil)
	if got := m16.Screen()[3]; got != "x               " {
		t.Errorf("16x4 row 4 at 0x50: %q", got)
	}
}

// An MCP23008 without SEQOP moves its register pointer after every byte:
// streaming GPIO states runs through OLAT into IODIR and beyond.
func TestMCP23008RegisterPointer(t *testing.T) {
	m, _ := newModule(Boards[4], 16, 2)
	var r [1]byte
	m.Tx([]byte{regIODIR, 0x00}, nil)
	m.Tx([]byte{regGPIO, 0x80, 0x00, 0x55}, nil) // GPIO, OLAT, then wraps to IODIR
	m.Tx([]byte{regIODIR}, r[:])
	if r[0] != 0x55 {
		t.Errorf("IODIR after a 3-byte GPIO write without SEQOP: %#x, want 0x55", r[0])
	}
	m.Tx([]byte{regIOCON, iconSEQOP}, nil)
	m.Tx([]byte{regIODIR, 0x00}, nil)
	m.Tx([]byte{regGPIO, 0x80, 0x00, 0x80}, nil)
	m.Tx([]byte{regIODIR}, r[:])
	if r[0] != 0x00 || !m.Backlight() {
		t.Errorf("with SEQOP: IODIR %#x, backlight %v", r[0], m.Backlight())
	}
}
