package clusterctrl

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/headnode/headnode/hw/emu"
	emuctrl "github.com/headnode/headnode/hw/emu/clusterctrl"
	"github.com/headnode/headnode/power/board"
)

// The tests run in synctest bubbles: the driver's polls and back-off
// pauses take no real time, and take exactly their time on the bubble's
// clock.
func testOpts() Opts { return DefaultOpts }

func newBoard(t *testing.T, v emuctrl.Variant, order byte) (*emuctrl.Dev, *emu.Bus, *Dev) {
	t.Helper()
	fw := emuctrl.New(emuctrl.Opts{Variant: v, Order: order, Busy: 2})
	bus := emu.NewBus("emu-i2c-3")
	bus.Attach(Address, fw)
	d, err := New(bus, 3, testOpts())
	if err != nil {
		t.Fatal(err)
	}
	return fw, bus, d
}

func TestEveryCommandOnEveryBoard(t *testing.T) {
	for _, v := range []emuctrl.Variant{emuctrl.Single, emuctrl.PHAT, emuctrl.Triple, emuctrl.APlus6, emuctrl.Stack} {
		t.Run(v.Name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				fw, _, d := newBoard(t, v, 20)
				info := d.Info()
				if info.Model != "ClusterCTRL "+v.Name || d.Nodes() != v.MaxPi || info.Order != 20 || info.Firmware != "1.8" {
					t.Errorf("info %+v, nodes %d", info, d.Nodes())
				}
				fresh, err := d.Init()
				if err != nil || !fresh {
					t.Fatalf("first Init %v %v", fresh, err)
				}
				for n := 1; n <= v.MaxPi; n++ {
					if err := d.SetPower(n, n%2 == 1); err != nil {
						t.Fatal(err)
					}
				}
				st, err := d.Read()
				if err != nil || st.Reset {
					t.Fatalf("Read %+v %v", st, err)
				}
				for n := 1; n <= v.MaxPi; n++ {
					if fw.Powered(n) != (n%2 == 1) || st.Powered[n-1] != fw.Powered(n) {
						t.Errorf("p%d: board %v, read back %v, want %v", n, fw.Powered(n), st.Powered[n-1], n%2 == 1)
					}
				}
				d.SetAlert(true)
				if fw.Alert() != v.Alert {
					t.Errorf("alert on: ALERT LED %v; the board has one: %v", fw.Alert(), v.Alert)
				}
				d.SetAlert(false)
				if fw.Alert() {
					t.Error("alert off: ALERT LED on")
				}
				if err := d.ResetHub(); err != nil || fw.HubCycles() != 1 || !fw.Hub() {
					t.Errorf("hub reset: %v, cycles %d, hub on %v", err, fw.HubCycles(), fw.Hub())
				}
				if err := d.SetHub(false); !errors.Is(err, board.ErrUnsupported) {
					t.Errorf("hub off: %v, want unsupported", err)
				}
				// LEDs on never powers a node on, even on the pHAT and
				// the Single whose firmware would.
				if err := d.SetLEDs(true); err != nil {
					t.Fatal(err)
				}
				for n := 1; n <= v.MaxPi; n++ {
					if fw.Powered(n) != (n%2 == 1) {
						t.Errorf("leds on changed p%d's power to %v", n, fw.Powered(n))
					}
					if fw.NodeLED(n) != (fw.Powered(n) && v.NodeLEDs) {
						t.Errorf("p%d LED %v with power %v", n, fw.NodeLED(n), fw.Powered(n))
					}
				}
				if !fw.PwrLED() {
					t.Error("PWR LED off after leds on")
				}
				d.SetLEDs(false)
				if fw.PwrLED() || fw.NodeLED(1) || !fw.Powered(1) {
					t.Errorf("leds off: pwr %v p1 LED %v p1 power %v", fw.PwrLED(), fw.NodeLED(1), fw.Powered(1))
				}
				if fw.Commands(emuctrl.CmdLEDEnable) != v.MaxPi {
					t.Errorf("LED_EN sent %d times, want once per node", fw.Commands(emuctrl.CmdLEDEnable))
				}
				if err := d.SetPower(v.MaxPi+1, true); err == nil {
					t.Error("a node past MAXPI accepted")
				}
			})
		})
	}
}

func TestRestartWritesNothingAndMCUResetIsSeen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fw, bus, d := newBoard(t, emuctrl.Triple, 20)
		d.Init()
		d.SetPower(2, true)
		again, err := New(bus, 3, testOpts())
		if err != nil {
			t.Fatal(err)
		}
		// New runs GET_DATA (a command: writes DATA0 and CMD); Init itself
		// must write nothing.
		mid := bus.Stats()
		if fresh, err := again.Init(); err != nil || fresh {
			t.Fatalf("Init after restart %v %v", fresh, err)
		}
		after := bus.Stats()
		if after.Written-mid.Written != after.Transactions-mid.Transactions {
			t.Error("Init on an initialised board wrote data")
		}
		if !fw.Powered(2) {
			t.Error("p2 lost power")
		}
		fw.Reset() // the MCU restarted (watchdog, USB power cycle)
		st, err := again.Read()
		if err != nil || !st.Reset || st.Powered[1] {
			t.Fatalf("after MCU reset: %+v %v", st, err)
		}
		if fresh, _ := again.Init(); !fresh {
			t.Error("Init after an MCU reset is not fresh")
		}
	})
}

func TestBusyNAKIsRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fw, bus, d := newBoard(t, emuctrl.Stack, 20)
		// Someone else started a command: our writes must wait for it.
		bus.Tx(Address, []byte{emuctrl.RegData0, 4}, nil)
		bus.Tx(Address, []byte{emuctrl.RegCmd, emuctrl.CmdOn}, nil)
		if err := d.SetPower(1, true); err != nil {
			t.Fatal(err)
		}
		if !fw.Powered(1) || !fw.Powered(4) {
			t.Error("a command lost while the board was busy")
		}
		// NAKed writes are retried with back-off...
		naks := 0
		var tries []time.Duration // when each write reached the bus
		start := time.Now()
		bus.SetInject(func(_ uint16, w []byte) error {
			if len(w) < 2 {
				return nil
			}
			tries = append(tries, time.Since(start))
			if naks < 3 {
				naks++
				return fmt.Errorf("busy: %w", emu.ErrNACK)
			}
			return nil
		})
		if err := d.SetPower(2, true); err != nil || !fw.Powered(2) {
			t.Fatalf("after 3 NAKs: %v, p2 %v", err, fw.Powered(2))
		}
		if !strings.HasPrefix(fmt.Sprint(tries), "[0s 2ms 6ms 14ms ") {
			t.Errorf("writes at %v, want tries at 0, 2, 6 and 14 ms (a 2/4/8 ms back-off)", tries)
		}
		// ... but not for ever.
		bus.SetInject(func(_ uint16, w []byte) error {
			if len(w) > 1 {
				return emu.ErrNACK
			}
			return nil
		})
		if err := d.SetPower(3, true); err == nil || fw.Powered(3) {
			t.Errorf("with every write NAKed: %v", err)
		}
	})
}

func TestStatusAndTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, bus, d := newBoard(t, emuctrl.PHAT, 20)
		if _, err := d.command(0x10, 1); !errors.Is(err, board.ErrUnsupported) || !strings.Contains(err.Error(), "STATUS 0x03") {
			t.Errorf("FAN on a pHAT: %v", err)
		}
		if _, err := d.command(0x0F, 7); err == nil || !strings.Contains(err.Error(), "no such node") {
			t.Errorf("GET_PSTATUS p7: %v", err)
		}
		// A command that never completes times out with a message.
		bus.Attach(Address, stuck{})
		d.opts.Timeout = 10 * time.Millisecond
		if err := d.SetPower(1, true); err == nil || !strings.Contains(err.Error(), "still running") {
			t.Errorf("stuck firmware: %v", err)
		}
	})
}

type stuck struct{}

func (stuck) Tx(w, r []byte) error {
	for i := range r {
		r[i] = 0x03
	}
	return nil
}

func TestOldLayoutRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bus := emu.NewBus("emu-i2c-4")
		bus.Attach(Address, emuctrl.New(emuctrl.Opts{Variant: emuctrl.Triple, Layout: 0x01}))
		_, err := New(bus, 4, testOpts())
		if err == nil || !strings.Contains(err.Error(), "register layout 0x01") {
			t.Errorf("layout 1: %v", err)
		}
		if _, err := New(emu.NewBus("x"), 5, testOpts()); !board.IsMissing(err) {
			t.Errorf("nothing on the bus: %v", err)
		}
	})
}
