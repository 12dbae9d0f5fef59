package clusterctrl

import (
	"testing"
)

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

// run runs one command as a careful host does: DATA0, CMD, then polls CMD
// (each poll's register select is NAKed while the command is pending)
// until it reads 0, then reads STATUS and DATA0..DATA7.
func run(t *testing.T, d *Dev, cmd, arg byte) (status byte, data [8]byte) {
	t.Helper()
	d.Tx([]byte{RegData0, arg}, nil)
	d.Tx([]byte{RegCmd, cmd}, nil)
	var c [1]byte
	for i := 0; ; i++ {
		if err := d.Tx([]byte{RegCmd}, c[:]); err == nil && c[0] == 0 {
			break
		}
		if i > 10 {
			t.Fatalf("command %#x never completes", cmd)
		}
	}
	var s [1]byte
	var b [8]byte
	d.Tx([]byte{RegStatus}, s[:])
	d.Tx([]byte{RegData7}, b[:])
	for i := range 8 {
		data[i] = b[7-i]
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
	if _, data := run(t, d, CmdGetPath, 2); data[7] != 3 || data[6] != 0xFF {
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
