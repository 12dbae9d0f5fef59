package boards

import (
	"fmt"
	"testing"

	"github.com/headnode/headnode/hw/emu"
)

func newMachine(t *testing.T, s Spec) *Machine {
	t.Helper()
	buses := map[int]*emu.Bus{}
	s.Dir = t.TempDir()
	m, err := New(s, func(n int) *emu.Bus {
		if buses[n] == nil {
			buses[n] = emu.NewBus(fmt.Sprintf("emu-i2c-%d", n))
		}
		return buses[n]
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// After the SoC resets, every line is an input with the pull of Broadcom
// BCM2835 ARM Peripherals, section 6.2, Table 6-31: GPIO0-8 pulled high,
// GPIO9-27 low. So the v1 HAT's ALERT (5) and P1 (6) lines read high, P2-P4
// (13, 19, 26) low, and so does the fan line (18).
func TestV1LinesHaveTheSoCsResetPulls(t *testing.T) {
	m := newMachine(t, Spec{HAT: "1.3"})
	for n, want := range map[int]bool{5: true, 6: true, 13: false, 19: false, 26: false, 18: false, 4: true} {
		p, err := m.GPIO(n)
		if err != nil {
			t.Fatal(err)
		}
		if out, high, _ := p.State(); out || high != want {
			t.Errorf("GPIO%d after reset: output %v, level %v; want an input reading %v", n, out, high, want)
		}
	}
}
