// Package consoletest gives tests console devices they play the node on:
// a pty whose slave a symlink names (as udev's /dev/ttypiN names a node's
// gadget), raw from the start as a USB ACM device is.
package consoletest

import (
	"os"
	"testing"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/headnode/headnode/hw/tty"
)

// Device is a console device: the test writes the node's output to
// Master and reads what the head sends from it.
type Device struct {
	Link          string
	Master, slave *os.File
}

// Plug makes a device linked as link; it is unplugged when the test ends.
func Plug(t testing.TB, link string) *Device {
	t.Helper()
	m, s, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	// Raw from the start: the test's bytes are not line-edited (nor
	// echoed back) before the console opens the device.
	tio, err := unix.IoctlGetTermios(int(s.Fd()), unix.TCGETS)
	if err == nil {
		tty.Raw(tio)
		err = unix.IoctlSetTermios(int(s.Fd()), unix.TCSETS, tio)
	}
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(link)
	if err := os.Symlink(s.Name(), link); err != nil {
		t.Fatal(err)
	}
	d := &Device{Link: link, Master: m, slave: s}
	t.Cleanup(d.Unplug)
	return d
}

// Unplug is the node losing power: the device goes, and its link.
func (d *Device) Unplug() {
	os.Remove(d.Link)
	d.Master.Close()
	d.slave.Close()
}
