package clusterctrl

import (
	"errors"
	"testing"

	"github.com/headnode/headnode/hw/emu"
)

// These tests hold the emulation to burtyb/ClusterCTRL src/main.c at
// f3d792468b43cec28f4d168caa41bff10d9f2c2b; the line numbers are that
// file's.

// i2c_do_emulated (lines 466-483) NAKs every message that is not a read
// while reg.cmd is non-zero. A register read is two messages to
// i2c-tiny-usb (the register select, a write, then the read), so its
// first message is NAKed too; a bare read message is served from the
// register pointer, which usbFunctionRead advances (lines 605-676).
func TestBusyNAKsTheRegisterSelectOfARead(t *testing.T) {
	o := DefaultOpts
	o.Busy = 2
	d := New(o)
	b := emu.NewBus("t")
	b.Attach(Address, d)
	if err := b.Tx(Address, []byte{RegData0, 2}, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Tx(Address, []byte{RegCmd, CmdOn}, nil); err != nil {
		t.Fatal(err)
	}
	var r [2]byte
	if err := b.Tx(Address, []byte{RegCmd}, r[:1]); !errors.Is(err, emu.ErrNACK) {
		t.Fatalf("register select while busy: %v, want a NAK", err)
	}
	// The pointer is where the CMD write left it: STATUS (0x0E), then 0x0F.
	if err := b.Tx(Address, nil, r[:]); err != nil {
		t.Fatalf("bare read while busy: %v", err)
	}
	if r != [2]byte{0x00, 0xFF} {
		t.Errorf("bare read from the pointer = % x, want 00 ff (STATUS, then an undefined register)", r)
	}
	// Two transactions saw it pending; the third runs it.
	if err := b.Tx(Address, []byte{RegCmd}, r[:1]); err != nil || r[0] != 0 || !d.Powered(2) {
		t.Errorf("after the command: %v, CMD %#x, p2 %v", err, r[0], d.Powered(2))
	}
}

// HUB_CYCLE (lines 1769-1789) sets no STATUS; the last command's stays.
func TestHubCycleLeavesStatus(t *testing.T) {
	d := New(Opts{Variant: PHAT})
	if st, _ := run(t, d, CmdFan, 1); st != StatusUnknownCmd {
		t.Fatalf("FAN on a pHAT: STATUS %#x, want 0x03 (FAN is compiled out)", st)
	}
	if st, _ := run(t, d, CmdHubCycle, 0); st != StatusUnknownCmd {
		t.Errorf("STATUS after HUB_CYCLE %#x, want the 0x03 left by FAN", st)
	}
	if d.HubCycles() != 1 || !d.Hub() {
		t.Errorf("hub cycles %d, hub on %v", d.HubCycles(), d.Hub())
	}
}

// On GPIOD boards (pHAT, Single) LED_EN for one node records the enable
// only while that node is powered (lines 1652-1664); on GPIOA boards it
// always does (lines 1665-1671). ON lights the LED only if the enable is
// recorded (lines 1475-1480 and 1500-1505).
func TestLEDEnableOfAnOffNode(t *testing.T) {
	for _, tc := range []struct {
		v       Variant
		wantLit bool
	}{{PHAT, false}, {Single, false}, {Triple, true}, {APlus6, true}} {
		t.Run(tc.v.Name, func(t *testing.T) {
			d := New(Opts{Variant: tc.v})
			run(t, d, CmdLEDDisable, 0)
			for n := 1; n <= tc.v.MaxPi; n++ {
				run(t, d, CmdLEDEnable, byte(n))
			}
			run(t, d, CmdOn, 1)
			if !d.Powered(1) {
				t.Fatal("ON did not power p1")
			}
			if d.NodeLED(1) != tc.wantLit {
				t.Errorf("p1 LED lit %v after leds off, LED_EN per node with the nodes off and ON; the firmware lights it: %v", d.NodeLED(1), tc.wantLit)
			}
		})
	}
}

// INIT, RESCAN and PING have codes but no branch in the command chain
// (lines 1466-2041): they end in "Unknown command", STATUS 0x03.
func TestCommandsWithoutABranchAreUnknown(t *testing.T) {
	d := New(Opts{Variant: Triple})
	for _, c := range []byte{CmdInit, CmdRescan, CmdPing, CmdHubOn, CmdHubOff} {
		if st, _ := run(t, d, c, 0); st != StatusUnknownCmd {
			t.Errorf("command %#x: STATUS %#x, want 0x03", c, st)
		}
	}
}

// GETPATH (lines 2014-2036) puts paths[n][0] in DATA7 and paths[n][7] in
// DATA0, so the tool's 8-byte read from DATA7 gives the path in order.
func TestGetPathLayout(t *testing.T) {
	d := New(Opts{Variant: APlus6})
	var r [8]byte
	run(t, d, CmdGetPath, 4)
	d.Tx([]byte{RegData7}, r[:])
	if r != [8]byte{4, 2, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF} {
		t.Errorf("DATA7..DATA0 after GETPATH 4 on an A+6 = % x, want 04 02 ff ...", r)
	}
	if st, _ := run(t, New(Opts{Variant: Stack}), CmdGetPath, 1); st != StatusError {
		t.Errorf("GETPATH on a Stack (NOPATHS): STATUS %#x, want 0x01", st)
	}
}

// GET_DATA (lines 1907-1994) starts from STATUS 0x01 and reads the
// temperature only where ADCTEMP is defined; the pHAT has none.
func TestGetDataFallbacks(t *testing.T) {
	d := New(Opts{Variant: PHAT})
	if st, data := run(t, d, CmdGetData, DataTemp); st != StatusError || data[0] != DataTemp {
		t.Errorf("temperature on a pHAT: STATUS %#x, DATA0 %#x; want 0x01 and DATA0 left as written", st, data[0])
	}
	if st, data := run(t, d, CmdGetData, DataADCCount); st != StatusOK || data[0] != 0 {
		t.Errorf("ADC count on a pHAT: STATUS %#x, %d", st, data[0])
	}
	s := New(Opts{Variant: Stack})
	if _, data := run(t, s, CmdGetData, DataADCCount); data[0] != 2 {
		t.Errorf("ADC count on a Stack: %d, want 2 (ADC1 and ADC2 defined)", data[0])
	}
	s.SetCoolingRequests(0b101)
	run(t, s, CmdFan, 1)
	if _, data := run(t, s, CmdGetData, DataFanStatus); data[0] != 0b1011 {
		t.Errorf("Stack fan status %08b, want 00001011 (fan on; P1 and P3 ask for cooling)", data[0])
	}
}
