package clusterhat

import (
	"errors"
	"fmt"
	"testing"

	"github.com/headnode/headnode/hw/emu/gpiopin"
	"github.com/headnode/headnode/power/board"
)

func v1Pins() ([5]*gpiopin.Pin, [5]Line) {
	var pins [5]*gpiopin.Pin
	var lines [5]Line
	for i, n := range V1Pins {
		pins[i] = gpiopin.New(fmt.Sprintf("GPIO%d", n), false)
		lines[i] = pins[i]
	}
	return pins, lines
}

func TestV1GPIO(t *testing.T) {
	pins, lines := v1Pins()
	d := NewGPIO(lines, Opts{Minor: 3})
	if st, _ := d.Read(); !st.Reset {
		t.Error("input lines after boot not seen as a fresh board")
	}
	fresh, err := d.Init()
	if err != nil || !fresh {
		t.Fatalf("Init %v %v", fresh, err)
	}
	for _, p := range pins {
		if out, high, _ := p.State(); !out || high {
			t.Errorf("%s after init: output %v high %v, want driven low", p.Name(), out, high)
		}
	}
	d.SetPower(2, true)
	d.SetAlert(true)
	if !pins[2].Level() || !pins[0].Level() || pins[1].Level() {
		t.Error("on p2 / alert on did not drive GPIO13 / GPIO5 high alone")
	}
	// A daemon restart: lines already driven are left alone.
	drives := pins[2].Drives()
	again := NewGPIO(lines, Opts{Minor: 3})
	if fresh, err := again.Init(); err != nil || fresh || pins[2].Drives() != drives {
		t.Errorf("second Init: fresh %v, err %v, drives %d -> %d", fresh, err, drives, pins[2].Drives())
	}
	st, _ := again.Read()
	if fmt.Sprint(st.Powered) != "[false true false false]" || !*st.Alert {
		t.Errorf("read back %+v", st)
	}
	if err := again.SetHub(true); !errors.Is(err, board.ErrUnsupported) {
		t.Errorf("hub on v1: %v", err)
	}
	if err := again.SetLEDs(true); !errors.Is(err, board.ErrUnsupported) {
		t.Errorf("leds on v1: %v", err)
	}
	pins[3].Fail(errors.New("busy"))
	if _, err := again.Read(); err == nil {
		t.Error("a failing line read without error")
	}
}
