package clusterctrl

import (
	"errors"
	"testing"

	"github.com/headnode/headnode/hw/emu"
)

func TestBusyNAKsWritesButNotReads(t *testing.T) {
	o := DefaultOpts
	o.Busy = 2
	d := New(o)
	b := emu.NewBus("t")
	b.Attach(Address, d)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(b.Tx(Address, []byte{RegData0, 2}, nil))
	must(b.Tx(Address, []byte{RegCmd, CmdOn}, nil))
	if err := b.Tx(Address, []byte{RegData0, 3}, nil); !errors.Is(err, emu.ErrNACK) {
		t.Fatalf("write while busy: %v, want NACK", err)
	}
	var r [1]byte
	must(b.Tx(Address, []byte{RegCmd}, r[:]))
	if r[0] != CmdOn {
		t.Errorf("CMD while pending reads %#x", r[0])
	}
	must(b.Tx(Address, []byte{RegCmd}, r[:]))
	if r[0] != 0 || !d.Powered(2) || d.Powered(1) {
		t.Errorf("after completion CMD %#x, p2 %v, p1 %v", r[0], d.Powered(2), d.Powered(1))
	}
}

func TestRegistersAutoIncrementAndUndefinedReadFF(t *testing.T) {
	d := New(Opts{Variant: Triple, Order: 7})
	var r [6]byte
	if err := d.Tx([]byte{RegVersion}, r[:]); err != nil {
		t.Fatal(err)
	}
	want := [6]byte{0x02, 3, 7, 0, 0x01, 0}
	if r != want {
		t.Errorf("registers 0-5 = % x, want % x", r, want)
	}
	var u [1]byte
	d.Tx([]byte{0x30}, u[:])
	if u[0] != 0xFF {
		t.Errorf("undefined register reads %#x", u[0])
	}
}

func run(t *testing.T, d *Dev, cmd, arg byte) (status byte, data [8]byte) {
	t.Helper()
	d.Tx([]byte{RegData0, arg}, nil)
	d.Tx([]byte{RegCmd, cmd}, nil)
	var c [1]byte
	for i := 0; ; i++ {
		d.Tx([]byte{RegCmd}, c[:])
		if c[0] == 0 {
			break
		}
		if i > 10 {
			t.Fatalf("command %#x never completes", cmd)
		}
	}
	var s, b [1]byte
	d.Tx([]byte{RegStatus}, s[:])
	for i := range 8 {
		d.Tx([]byte{byte(RegData0 - i)}, b[:])
		data[i] = b[0]
	}
	return s[0], data
}

func TestCommandSemantics(t *testing.T) {
	d := New(Opts{Variant: PHAT})
	if st, data := run(t, d, CmdGetPStatus, 9); st != StatusNoSuchPi || data[0] != 0xFF {
		t.Errorf("GET_PSTATUS out of range: status %#x data0 %#x", st, data[0])
	}
	if st, _ := run(t, d, CmdFan, 1); st != StatusUnknownCmd {
		t.Errorf("FAN on a pHAT: status %#x, want 0x03", st)
	}
	if st, _ := run(t, d, CmdHubOn, 0); st != StatusUnknownCmd {
		t.Errorf("HUB_ON: status %#x, want 0x03 (not implemented)", st)
	}
	// The pHAT quirk: LED_EN for all powers every node on.
	run(t, d, CmdLEDEnable, 0)
	if !d.Powered(1) || !d.Powered(2) {
		t.Error("LED_EN(0) on a pHAT did not power the nodes on (the firmware quirk)")
	}
	if _, data := run(t, d, CmdGetData, DataVersion); data[1] != 1 || data[0] != 8 {
		t.Errorf("firmware version %d.%d", data[1], data[0])
	}
	if _, data := run(t, d, CmdGetPath, 2); data[0] != 3 || data[1] != 0xFF {
		t.Errorf("GETPATH p2 % x", data)
	}
	if st, _ := run(t, d, CmdSetOrder, 0); st != StatusError {
		t.Errorf("SET_ORDER 0: status %#x", st)
	}
	// POS saved, then an MCU reset re-applies it.
	run(t, d, CmdOff, 1)
	run(t, d, CmdSavePOS, 0)
	run(t, d, CmdAlertOn, 0)
	d.Reset()
	if d.Powered(1) || !d.Powered(2) || d.Alert() || !d.Hub() {
		t.Errorf("after reset: p1 %v p2 %v alert %v hub %v", d.Powered(1), d.Powered(2), d.Alert(), d.Hub())
	}
}
