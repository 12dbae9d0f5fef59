package expander

import (
	"errors"
	"testing"

	"github.com/headnode/headnode/hw/emu"
)

func tx(t *testing.T, b *emu.Bus, w ...byte) byte {
	t.Helper()
	var r [1]byte
	rd := r[:]
	if len(w) > 1 {
		rd = nil
	}
	if err := b.Tx(0x20, w, rd); err != nil {
		t.Fatalf("Tx %x: %v", w, err)
	}
	return r[0]
}

func TestResetStateAndPins(t *testing.T) {
	d := New(XRA1200P)
	b := emu.NewBus("t")
	b.Attach(0x20, d)
	if got := tx(t, b, RegConfig); got != 0xFF {
		t.Errorf("GCR after reset %#x, want 0xff (all inputs)", got)
	}
	if got := tx(t, b, RegOutput); got != 0xFF {
		t.Errorf("OCR after reset %#x, want 0xff", got)
	}
	// Inputs read the pull-ups unless something drives them.
	d.SetExternal(0, Low)
	if got := tx(t, b, RegInput); got != 0xFE {
		t.Errorf("input %#x, want 0xfe (pin 0 held low, the rest pulled up)", got)
	}
	tx(t, b, RegPullUp, 0x7F)
	if d.Level(7) {
		t.Error("pin 7 floating without pull-up reads high")
	}
	d.SetExternal(7, High)
	if !d.Level(7) {
		t.Error("pin 7 held high by a link reads low")
	}
	// Outputs drive the latch onto the pins, whatever is outside.
	tx(t, b, RegOutput, 0x01)
	tx(t, b, RegConfig, 0x00)
	if !d.Level(0) || d.Level(1) || d.Level(7) {
		t.Errorf("levels after OCR=0x01 as outputs: %#x", d.Reg(RegInput))
	}
	// Polarity inversion changes what is read, not the pins.
	tx(t, b, RegPolarity, 0xFF)
	if got := tx(t, b, RegInput); got != 0xFE || !d.Level(0) {
		t.Errorf("inverted input %#x, pin 0 %v", got, d.Level(0))
	}
	// The input register is read-only.
	tx(t, b, RegInput, 0x55)
	if d.Reg(RegOutput) != 0x01 || d.Writes(RegInput) != 1 {
		t.Error("a write to the input register changed something")
	}
	d.Reset()
	if d.Reg(RegConfig) != 0xFF || d.Reg(RegPolarity) != 0 || d.Reg(RegPullUp) != 0xFF {
		t.Error("Reset did not restore the defaults")
	}
}

func TestPCA9554HasFourRegistersAndFixedPullUps(t *testing.T) {
	d := New(PCA9554)
	b := emu.NewBus("t")
	b.Attach(0x21, d)
	var r [1]byte
	if err := b.Tx(0x21, []byte{RegPullUp}, r[:]); !errors.Is(err, emu.ErrNACK) {
		t.Errorf("register 0x04 on a PCA9554: %v, want a NACK", err)
	}
	if err := b.Tx(0x21, []byte{RegInput}, r[:]); err != nil || r[0] != 0xFF {
		t.Errorf("inputs with fixed pull-ups read %#x, %v", r[0], err)
	}
}

func TestSaveRestore(t *testing.T) {
	d := New(XRA1200P)
	changes := 0
	d.OnChange(func() { changes++ })
	d.Tx([]byte{RegOutput, 0x90}, nil)
	d.Tx([]byte{RegConfig, 0x00}, nil)
	d.Tx([]byte{RegConfig, 0x00}, nil) // same value: no change
	if changes != 2 {
		t.Errorf("OnChange called %d times, want 2", changes)
	}
	e := New(XRA1200P)
	e.Restore(d.Save())
	if e.Reg(RegInput) != 0x90 {
		t.Errorf("restored input %#x", e.Reg(RegInput))
	}
}
