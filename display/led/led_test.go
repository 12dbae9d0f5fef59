package led

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/headnode/headnode/hw/emu/blinkstick"
)

var (
	red   = RGB{255, 0, 0}
	green = RGB{0, 255, 0}
	blue  = RGB{0, 0, 255}
)

func stick(t *testing.T, k blinkstick.Kind, o *blinkstick.Opts) (*blinkstick.Stick, *BlinkStick) {
	t.Helper()
	s := blinkstick.New(k, o)
	d, err := NewBlinkStick(s, s.Serial(), s.BCDDevice(), true)
	if err != nil {
		t.Fatal(err)
	}
	return s, d
}

func shows(got []blinkstick.RGB, want ...RGB) bool {
	for i, c := range want {
		if got[i] != (blinkstick.RGB{R: c.R, G: c.G, B: c.B}) {
			return false
		}
	}
	return true
}

// Every variant is told apart and driven through the report it takes, in
// that report's colour order; the emulated firmware decodes GRB frames, so
// a swapped order shows as the wrong colour.
func TestEveryVariantShowsTheRightColours(t *testing.T) {
	for _, tc := range []struct {
		kind    blinkstick.Kind
		variant Variant
		leds    int
		frame   []RGB
	}{
		{blinkstick.Original, VariantOriginal, 1, []RGB{red}},
		{blinkstick.Pro, VariantPro, 1, []RGB{green}},
		{blinkstick.Square, VariantSquare, 8, []RGB{red, green, blue, {1, 2, 3}, {}, {}, {}, {9, 8, 7}}},
		{blinkstick.Strip, VariantStrip, 8, []RGB{green, red, blue}},
		{blinkstick.Nano, VariantNano, 2, []RGB{red, blue}},
		{blinkstick.Flex, VariantFlex, 16, []RGB{red, 15: blue}},
	} {
		t.Run(string(tc.kind), func(t *testing.T) {
			s, d := stick(t, tc.kind, nil)
			if d.Variant() != tc.variant || d.LEDs() != tc.leds {
				t.Errorf("identified as %s with %d LEDs", d.Variant(), d.LEDs())
			}
			if err := d.Show(tc.frame); err != nil {
				t.Fatal(err)
			}
			if got := s.LEDs(); !shows(got, tc.frame...) {
				t.Errorf("stick shows %v, want %v", got, tc.frame)
			}
			// Showing the same frame again writes nothing.
			n := s.Reports()
			d.Show(tc.frame)
			if s.Reports() != n {
				t.Errorf("an unchanged frame was written again")
			}
		})
	}
}

func TestFlexLEDCountPicksTheFrameReport(t *testing.T) {
	for count, report := range map[int]byte{5: 6, 8: 6, 9: 7, 32: 8, 33: 9, 64: 9} {
		_, d := stick(t, blinkstick.Flex, &blinkstick.Opts{FlexLEDs: count})
		if d.LEDs() != count || d.frameID != report {
			t.Errorf("Flex with %d LEDs: %d LEDs, report %d, want %d", count, d.LEDs(), d.frameID, report)
		}
	}
}

// A Square from the old firmware starts in mode 0, where frames only
// reach the first LED; the driver switches it to mode 2 once.
func TestSwitchesOldSquareToWS2812Mode(t *testing.T) {
	s, d := stick(t, blinkstick.Square, &blinkstick.Opts{Mode0: true})
	if s.Mode() != 2 {
		t.Fatalf("mode %d", s.Mode())
	}
	d.Show([]RGB{red, green})
	if got := s.LEDs(); !shows(got, red, green) {
		t.Errorf("LEDs %v", got)
	}
	n := s.Reports()
	if _, err := NewBlinkStick(s, s.Serial(), s.BCDDevice(), true); err != nil || s.Reports() != n {
		t.Errorf("opening a stick already in mode 2 wrote %d reports (%v)", s.Reports()-n, err)
	}
}

func TestVariantOf(t *testing.T) {
	for _, tc := range []struct {
		serial string
		bcd    uint16
		has    bool
		want   Variant
	}{
		{"BS000123-1.1", 0x0200, true, VariantOriginal},
		{"BS000123-2.0", 0x0200, true, VariantPro},
		{"BS000123-3.0", 0x0200, true, VariantSquare},
		{"BS000123-3.0", 0x0201, true, VariantStrip},
		{"BS000123-3.1", 0x0202, true, VariantNano},
		{"BS000123-3.0", 0x0203, true, VariantFlex},
		{"BS000123-3.0", 0, false, VariantSquare},
	} {
		if v, err := VariantOf(tc.serial, tc.bcd, tc.has); err != nil || v != tc.want {
			t.Errorf("%s %#x: %v %v, want %v", tc.serial, tc.bcd, v, err, tc.want)
		}
	}
	if _, err := VariantOf("garbage", 0, false); err == nil {
		t.Error("a serial without a version was accepted")
	}
}

func TestUnpluggedStickReportsENODEV(t *testing.T) {
	s, d := stick(t, blinkstick.Strip, nil)
	s.Unplug()
	err := d.Show([]RGB{red})
	if !errors.Is(err, ErrUnplugged) {
		t.Errorf("Show on an unplugged stick: %v", err)
	}
}

// One stall is retried; the colour arrives.
type flaky struct {
	*blinkstick.Stick
	fails int
}

func (f *flaky) SetFeature(b []byte) error {
	if f.fails > 0 {
		f.fails--
		return syscall.EPIPE
	}
	return f.Stick.SetFeature(b)
}

func TestRetriesOnceAfterAStall(t *testing.T) {
	s := blinkstick.New(blinkstick.Original, nil)
	d, _ := NewBlinkStick(&flaky{Stick: s, fails: 1}, s.Serial(), 0, false)
	if err := d.Show([]RGB{red}); err != nil || !shows(s.LEDs(), red) {
		t.Errorf("after one stall: %v %v", err, s.LEDs())
	}
	d2, _ := NewBlinkStick(&flaky{Stick: s, fails: 2}, s.Serial(), 0, false)
	if err := d2.Show([]RGB{green}); !errors.Is(err, syscall.EPIPE) {
		t.Errorf("after two stalls: %v", err)
	}
}

type reports struct{ got [][]byte }

func (r *reports) SetFeature(b []byte) error {
	r.got = append(r.got, append([]byte(nil), b...))
	return nil
}
func (r *reports) GetFeature(b []byte) (int, error) { return 0, syscall.EPIPE }
func (r *reports) Close() error                     { return nil }

func TestBlink1(t *testing.T) {
	r := &reports{}
	d := NewBlink1(r, "1A002F11")
	d.Show([]RGB{{10, 20, 30}})
	d.Show([]RGB{{10, 20, 30}})
	if len(r.got) != 1 || fmt.Sprintf("%x", r.got[0]) != "016e0a141e00000000" {
		t.Errorf("reports %x", r.got)
	}
}

// The player writes on edges only: a 1 s on / 1 s off blink over 10 s is
// exactly 10 writes after the first frame, each at its edge (the bubble's
// clock makes "at" exact).
func TestPlayerWritesOnEdgesOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := blinkstick.New(blinkstick.Strip, nil)
		d, _ := NewBlinkStick(s, s.Serial(), s.BCDDevice(), true)
		p := NewPlayer()
		p.SetDevice(d)
		start := time.Now()
		p.Play([]Pattern{Blink("degraded", RGB{255, 120, 0}, time.Second, time.Second), Steady("up", green)})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { p.Run(ctx); close(done) }()
		time.Sleep(10 * time.Second)
		synctest.Wait() // the edge at 10 s is written
		cancel()
		<-done
		h := s.History()
		if len(h) != 11 {
			t.Fatalf("%d writes in 10 s, want 11 (the first frame and 10 edges): %v", len(h), h)
		}
		for i, c := range h {
			if at := c.At.Sub(start); at != time.Duration(i)*time.Second {
				t.Errorf("write %d at %v, want %ds", i, at, i)
			}
			wantOn := i%2 == 0
			if on := c.LEDs[0].R != 0; on != wantOn || c.LEDs[1] != (blinkstick.RGB{G: 255}) {
				t.Errorf("write %d: %v", i, c.LEDs)
			}
		}
	})
}

// Re-playing a pattern of the same name keeps its phase.
func TestPlayerKeepsPhaseOfUnchangedPatterns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := NewPlayer()
		b := Blink("x", red, time.Second, time.Second)
		p.Play([]Pattern{b})
		time.Sleep(1500 * time.Millisecond)
		p.Play([]Pattern{b, Steady("y", green)})
		frame, next := p.frameLocked(time.Now())
		if frame[0] != (RGB{}) || next != 500*time.Millisecond {
			t.Errorf("frame %v next %v: phase was reset", frame, next)
		}
	})
}

// A pattern begun part-way through a second is counted from that second,
// so that its edges come on the daemon's beat: a 5 s heartbeat (4.9 s on,
// a 100 ms dip) played at 0.3 s dips at 4.9 s and is back on at 5 s, not
// at 5.2 s and 5.3 s. One whose first step has passed by then (a 250 ms
// blink played at 0.3 s) starts when played.
func TestPlayerPutsEdgesOnTheBeat(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		heartbeat := Pattern{Name: "ok", Steps: []Step{{Color: green, For: 4900 * time.Millisecond}, {For: 100 * time.Millisecond}}}
		p := NewPlayer()
		zero := time.Now() // the bubble starts on a whole second
		time.Sleep(300 * time.Millisecond)
		p.Play([]Pattern{heartbeat, Blink("identify", red, 250*time.Millisecond, 250*time.Millisecond)})
		frame, next := p.frameLocked(time.Now())
		if frame[0] != green || frame[1] != red {
			t.Fatalf("at 0.3 s: %v", frame)
		}
		// The identify blink's edge (0.55 s) comes first; the heartbeat's
		// dip is at 4.9 s from the whole second.
		if next != 250*time.Millisecond {
			t.Errorf("next edge in %v, want 250ms (the blink, started at 0.3 s)", next)
		}
		for _, c := range []struct {
			at   time.Duration
			want RGB
		}{{4899 * time.Millisecond, green}, {4900 * time.Millisecond, RGB{}}, {4999 * time.Millisecond, RGB{}}, {5000 * time.Millisecond, green}} {
			if f, _ := p.frameLocked(zero.Add(c.at)); f[0] != c.want {
				t.Errorf("heartbeat at %v: %v, want %v", c.at, f[0], c.want)
			}
		}
	})
}
