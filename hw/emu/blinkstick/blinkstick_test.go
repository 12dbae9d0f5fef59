package blinkstick

import (
	"errors"
	"syscall"
	"testing"
)

// The firmware's rules, independent of the driver: RGB in reports 1 and 5,
// GRB in frames, frames past LED 0 only in mode 2, unknown or mis-sized
// reports stall, an unplugged stick answers ENODEV.
func TestFirmwareRules(t *testing.T) {
	s := New(Square, &Opts{Mode0: true})
	frame := []byte{6, 0, 1, 2, 3, 4, 5, 6}
	frame = append(frame, make([]byte, 26-len(frame))...)
	if err := s.SetFeature(frame); err != nil {
		t.Fatal(err)
	}
	if got := s.LEDs(); got[0] != (RGB{2, 1, 3}) || got[1] != (RGB{}) {
		t.Errorf("mode 0 frame: %v", got)
	}
	s.SetFeature([]byte{4, 2})
	s.SetFeature(frame)
	if got := s.LEDs(); got[1] != (RGB{5, 4, 6}) {
		t.Errorf("mode 2 frame: %v", got)
	}
	s.SetFeature([]byte{5, 0, 7, 9, 8, 7})
	if got := s.LEDs(); got[7] != (RGB{9, 8, 7}) {
		t.Errorf("report 5: %v", got)
	}
	b := make([]byte, 26)
	b[0] = 6
	if n, err := s.GetFeature(b); err != nil || n != 26 || b[2] != 1 || b[3] != 2 {
		t.Errorf("frame read back: %d %v %x", n, err, b[:8])
	}
	if err := s.SetFeature([]byte{6, 0, 1}); !errors.Is(err, syscall.EPIPE) {
		t.Errorf("short frame: %v", err)
	}
	o := New(Original, nil)
	if err := o.SetFeature(frame); !errors.Is(err, syscall.EPIPE) {
		t.Errorf("frame to an original: %v", err)
	}
	if err := o.SetFeature([]byte{1, 10, 20, 30}); err != nil || o.LEDs()[0] != (RGB{10, 20, 30}) {
		t.Errorf("report 1: %v %v", err, o.LEDs())
	}
	o.Unplug()
	if err := o.SetFeature([]byte{1, 1, 1, 1}); !errors.Is(err, syscall.ENODEV) {
		t.Errorf("unplugged: %v", err)
	}
	if h := o.History(); len(h) != 1 || h[0].LEDs[0] != (RGB{10, 20, 30}) {
		t.Errorf("history %v: one write changed the LED", h)
	}
}
