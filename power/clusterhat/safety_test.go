package clusterhat

import (
	"fmt"
	"testing"

	"github.com/headnode/headnode/hw/emu"
	"github.com/headnode/headnode/hw/emu/expander"
)

// glitchy is a bus on which the test decides, per transaction, to corrupt
// what a read returns or to lose a write without any error: what a
// bit-banged I2C bus does now and then.
type glitchy struct {
	*emu.Bus
	// read may change r after register reg was read; n counts reads of reg.
	read func(reg byte, n int, r []byte)
	// drop loses a write of v to reg when it returns true.
	drop  func(reg, v byte) bool
	reads map[byte]int
}

func (g *glitchy) Tx(addr uint16, w, r []byte) error {
	if len(w) == 2 && g.drop != nil && g.drop(w[0], w[1]) {
		return nil
	}
	err := g.Bus.Tx(addr, w, r)
	if err == nil && len(w) == 1 && len(r) > 0 && g.read != nil {
		if g.reads == nil {
			g.reads = map[byte]int{}
		}
		g.reads[w[0]]++
		g.read(w[0], g.reads[w[0]], r)
	}
	return err
}

func initialised(t *testing.T) (*hat, *glitchy, *Dev) {
	t.Helper()
	h := newHAT(t, expander.XRA1200P, 2, 5)
	if _, err := h.dev.Init(); err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= 4; n++ {
		if err := h.dev.SetPower(n, n == 2); err != nil {
			t.Fatal(err)
		}
	}
	g := &glitchy{Bus: h.bus}
	d, err := NewI2C(g, 1, DefaultOpts)
	if err != nil {
		t.Fatal(err)
	}
	if fresh, err := d.Init(); err != nil || fresh {
		t.Fatalf("Init of an initialised board: %v %v", fresh, err)
	}
	return h, g, d
}

// One read of the configuration register that comes back 0xFF (every pin
// an input, as after a reset) is not taken as a reset: only reads in a row
// that all say so are. Taken as a reset, the board would be initialised
// again from its power-on-state jumper, which switches p2 off.
func TestOneResetLookingReadIsNotAReset(t *testing.T) {
	h, g, d := initialised(t)
	writes := h.chip.Writes(expander.RegOutput) + h.chip.Writes(expander.RegConfig)
	g.read = func(reg byte, n int, r []byte) {
		if reg == expander.RegConfig && n == 1 {
			r[0] = 0xFF
		}
	}
	st, err := d.Read()
	if err != nil || st.Reset {
		t.Fatalf("Read with one corrupted configuration read: %+v %v; want no reset", st, err)
	}
	g.reads = nil
	if fresh, err := d.Init(); err != nil || fresh {
		t.Errorf("Init with one corrupted configuration read: fresh %v, %v", fresh, err)
	}
	if w := h.chip.Writes(expander.RegOutput) + h.chip.Writes(expander.RegConfig); w != writes {
		t.Errorf("%d writes after a corrupted read", w-writes)
	}
	if got := h.levels()[:4]; got != "0100" {
		t.Errorf("node pins %s, want 0100", got)
	}
	// A real reset reads 0xFF every time, and is seen.
	h.chip.Reset()
	g.read = nil
	if st, err := d.Read(); err != nil || !st.Reset {
		t.Errorf("Read after a real reset: %+v %v", st, err)
	}
}

// The read of a read-modify-write that comes back with a bit flipped is
// not written back: switching p3 on must leave p2 on.
func TestCorruptedLatchReadIsNotWrittenBack(t *testing.T) {
	h, g, d := initialised(t)
	g.read = func(reg byte, n int, r []byte) {
		if reg == expander.RegOutput && n == 1 {
			r[0] ^= 1 << 1 // p2's bit
		}
	}
	if err := d.SetPower(3, true); err != nil {
		t.Fatal(err)
	}
	if got := h.levels()[:4]; got != "0110" {
		t.Errorf("node pins %s after on p3, want 0110 (p2 kept)", got)
	}
}

// A write that did not stick is seen by the read-back and done again.
func TestWriteThatDidNotStickIsRetried(t *testing.T) {
	h, g, d := initialised(t)
	dropped := 0
	g.drop = func(reg, v byte) bool {
		if reg == expander.RegOutput && dropped == 0 {
			dropped++
			return true
		}
		return false
	}
	if err := d.SetPower(4, true); err != nil {
		t.Fatal(err)
	}
	if dropped != 1 {
		t.Fatal("no write was lost: the test does not test anything")
	}
	if got := h.levels()[:4]; got != "0101" {
		t.Errorf("node pins %s after on p4 with its first write lost, want 0101", got)
	}
}

// Bit flips at random in 5 % of reads, through a run of requests and
// read-backs: the pins always do what was asked, and no read-back reports
// a power state the pins do not have.
func TestRandomBitFlipsChangeNoNode(t *testing.T) {
	h, _, _ := initialised(t)
	h.bus.SetFlipRate(0.05, 0x20, 11)
	d, err := NewI2C(h.bus, 1, DefaultOpts)
	if err != nil {
		t.Fatal(err)
	}
	if fresh, err := d.Init(); err != nil || fresh {
		t.Fatalf("Init under bit flips: fresh %v, %v", fresh, err)
	}
	want := [4]bool{false, true, false, false}
	for i := range 400 {
		n := i%4 + 1
		on := (i/4)%3 == 0
		if err := d.SetPower(n, on); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		want[n-1] = on
		st, err := d.Read()
		if err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
		if st.Reset || fmt.Sprint(st.Powered) != fmt.Sprint(want[:]) {
			t.Fatalf("after request %d: read back %+v, want %v", i, st, want)
		}
		for p := range 4 {
			if h.chip.Level(p) != want[p] {
				t.Fatalf("after request %d: pin of p%d is %v, want %v", i, p+1, h.chip.Level(p), want[p])
			}
		}
	}
	if h.bus.Stats().Flipped < 100 {
		t.Errorf("only %d reads flipped", h.bus.Stats().Flipped)
	}
}
