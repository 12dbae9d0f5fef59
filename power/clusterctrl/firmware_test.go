package clusterctrl

import (
	"errors"
	"fmt"
	"testing"
	"testing/synctest"

	"github.com/headnode/headnode/hw/emu"
	emuctrl "github.com/headnode/headnode/hw/emu/clusterctrl"
	"github.com/headnode/headnode/power/board"
)

// The emulated firmware NAKs every message but a bare read while a command
// is pending (burtyb/ClusterCTRL src/main.c at
// f3d792468b43cec28f4d168caa41bff10d9f2c2b, i2c_do_emulated, lines
// 466-483), the register select of the driver's poll of CMD included. The
// poll is retried until the command is done.
func TestPollingReadsRetriedWhileBusy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fw := emuctrl.New(emuctrl.Opts{Variant: emuctrl.Triple, Order: 20, Busy: 4})
		bus := emu.NewBus("emu-i2c-3")
		bus.Attach(Address, fw)
		naks := 0
		counting := countNAKs{bus, &naks}
		d, err := New(counting, 3, testOpts())
		if err != nil {
			t.Fatal(err)
		}
		for n := 1; n <= 3; n++ {
			if err := d.SetPower(n, true); err != nil {
				t.Fatalf("p%d on: %v", n, err)
			}
		}
		st, err := d.Read()
		if err != nil {
			t.Fatal(err)
		}
		for n := 1; n <= 3; n++ {
			if !fw.Powered(n) || !st.Powered[n-1] {
				t.Errorf("p%d: board %v, read back %v", n, fw.Powered(n), st.Powered[n-1])
			}
		}
		if naks == 0 {
			t.Error("no poll was NAKed: the test does not exercise the busy window")
		}
	})
}

type countNAKs struct {
	*emu.Bus
	n *int
}

func (c countNAKs) Tx(addr uint16, w, r []byte) error {
	err := c.Bus.Tx(addr, w, r)
	if errors.Is(err, emu.ErrNACK) {
		*c.n++
	}
	return err
}

// On the pHAT and the Single the firmware records a node's LED enable only
// while the node is powered (src/main.c lines 1652-1664), and ON lights
// the LED only if it is recorded (lines 1475-1492). So `leds off`, then
// `leds on` with the nodes off, then `on p1` would power p1 with its LED
// dark; the driver enables the LED again after switching the node on.
func TestLEDsOnAfterPowerOnOfGPIODBoards(t *testing.T) {
	for _, v := range []emuctrl.Variant{emuctrl.PHAT, emuctrl.Single, emuctrl.Triple} {
		t.Run(v.Name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				fw, _, d := newBoard(t, v, 20)
				if _, err := d.Init(); err != nil {
					t.Fatal(err)
				}
				if err := d.SetLEDs(false); err != nil {
					t.Fatal(err)
				}
				if err := d.SetLEDs(true); err != nil {
					t.Fatal(err)
				}
				if fw.Powered(1) {
					t.Fatal("leds on powered p1")
				}
				if err := d.SetPower(1, true); err != nil {
					t.Fatal(err)
				}
				if !fw.Powered(1) || !fw.NodeLED(1) {
					t.Errorf("after leds off, leds on and on p1: power %v, LED lit %v; want both", fw.Powered(1), fw.NodeLED(1))
				}
				// leds off stays off across a power-on.
				d.SetLEDs(false)
				d.SetPower(1, false)
				d.SetPower(1, true)
				if fw.NodeLED(1) {
					t.Error("leds off, then off and on p1: its LED is lit")
				}
			})
		})
	}
}

// The other commands, each checked by what the board then holds.
func TestControllerCommands(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fw, _, d := newBoard(t, emuctrl.Triple, 20)
		d.Init()
		if err := d.SetFan(true); err != nil || !fw.Fan() {
			t.Errorf("fan on: %v, fan %v", err, fw.Fan())
		}
		if err := d.SetUSBBoot(2, false); err != nil || fw.USBBoot(2) || !fw.USBBoot(1) {
			t.Errorf("usbboot off p2: %v, lines p1 %v p2 %v", err, fw.USBBoot(1), fw.USBBoot(2))
		}
		st, err := d.Read()
		if err != nil || fmt.Sprint(st.USBBoot) != "[true false true]" || st.FanStatus == nil || *st.FanStatus != 1 {
			t.Errorf("read back: %v, usbboot %v, fan status %v", err, st.USBBoot, st.FanStatus)
		}
		if len(st.ADCs) != 1 || st.ADCs[0] != (board.ADC{Type: 1, Raw: 791}) || st.Temp == nil || *st.Temp != 277 {
			t.Errorf("sensors %+v temp %v", st.ADCs, st.Temp)
		}
		if err := d.SetACT(true); !errors.Is(err, board.ErrUnsupported) || err.Error() != "ClusterCTRL Triple has no ACT LED: "+board.ErrUnsupported.Error() {
			t.Errorf("act on a Triple: %v", err)
		}
		for n, want := range []string{"[1]", "[4]", "[3]", "[2]"} {
			if p, err := d.Path(n); err != nil || fmt.Sprint(p) != want {
				t.Errorf("path %d: %v %v, want %s", n, p, err, want)
			}
		}
		if _, err := d.Path(4); !errors.Is(err, board.ErrUnsupported) {
			t.Errorf("path of p4 on a Triple: %v", err)
		}
		if err := d.SetOrder(31); err != nil || d.Order() != 31 || fw.Order() != 31 || fw.EEPROMContent().Order != 20 {
			t.Errorf("setorder: %v, driver %d, board %d, EEPROM %d", err, d.Order(), fw.Order(), fw.EEPROMContent().Order)
		}
		d.SetPower(3, true)
		if err := d.Save(board.SavePOS); err != nil || fw.EEPROMContent().POS != 0b100 || fw.EEPROMContent().Order != 20 {
			t.Errorf("savepos: %v, %+v", err, fw.EEPROMContent())
		}
		if err := d.Save(board.SaveAll); err != nil || fw.EEPROMContent().Order != 31 || fw.EEPROMContent().USBBoot != 0xFD {
			t.Errorf("save: %v, %+v", err, fw.EEPROMContent())
		}
		d.SetPower(1, true)
		if err := d.Restart(); err != nil {
			t.Fatal(err)
		}
		st, err = d.Read()
		if err != nil || !st.Reset || fmt.Sprint(st.Powered) != "[false false true]" || fw.Order() != 31 {
			t.Errorf("after RESET: %v, %+v, order %d; want the saved power-on state (p3) and order", err, st, fw.Order())
		}
		if err := d.Save(board.SaveDefaults); err != nil || fw.EEPROMContent() != (emuctrl.EEPROM{Order: 20, PwrLED: true, ACTLED: true, LED: 0xFF, USBBoot: 0xFF}) {
			t.Errorf("savedefaults: %v, %+v", err, fw.EEPROMContent())
		}
		// A Stack: no paths, its fan is a request, it has two ADCs.
		sfw, _, s := newBoard(t, emuctrl.Stack, 21)
		if _, err := s.Path(1); !errors.Is(err, board.ErrUnsupported) {
			t.Errorf("path on a Stack: %v", err)
		}
		sfw.SetCoolingRequests(0b10)
		s.SetFan(false)
		st, _ = s.Read()
		if st.FanStatus == nil || *st.FanStatus != 0b100 || len(st.ADCs) != 2 || st.ADCs[1].Type != 2 || st.USBBoot != nil {
			t.Errorf("Stack: fan %v, ADCs %+v, usbboot %v", st.FanStatus, st.ADCs, st.USBBoot)
		}
	})
}
