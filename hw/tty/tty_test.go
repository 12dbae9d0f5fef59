package tty

import (
	"os"
	"strings"
	"testing"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

func termios(t *testing.T, f *os.File) *unix.Termios {
	t.Helper()
	tio, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	return tio
}

// A serial console opens raw at its rate, keeps what was waiting, and a
// Close ends a Read in progress (the device is read through the poller).
func TestOpenSerial(t *testing.T) {
	m, s, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	defer s.Close()
	f, err := OpenSerial(s.Name(), 115200)
	if err != nil {
		t.Fatal(err)
	}
	tio := termios(t, f)
	if tio.Lflag&(unix.ICANON|unix.ECHO|unix.ISIG) != 0 || tio.Oflag&unix.OPOST != 0 || tio.Iflag&unix.ICRNL != 0 {
		t.Errorf("not raw: %+v", tio)
	}
	if tio.Cflag&unix.CBAUD != unix.B115200 || tio.Cflag&unix.CLOCAL == 0 || tio.Cflag&unix.CSIZE != unix.CS8 {
		t.Errorf("cflag %#o: want B115200, CLOCAL, CS8", tio.Cflag)
	}
	m.Write([]byte("a\r\nb"))
	buf := make([]byte, 16)
	n, err := f.Read(buf)
	if err != nil || string(buf[:n]) != "a\r\nb" {
		t.Errorf("read %q, %v: want the bytes as sent", buf[:n], err)
	}
	done := make(chan error, 1)
	go func() { _, err := f.Read(buf); done <- err }()
	f.Close()
	if err := <-done; err == nil {
		t.Error("a Read survived Close")
	}
}

func TestOpenSerialRefuses(t *testing.T) {
	if _, err := OpenSerial("/dev/null", 115200); err == nil || !strings.Contains(err.Error(), "not a serial device") {
		t.Errorf("/dev/null: %v", err)
	}
	if _, err := OpenSerial("/nonexistent/ttyUSB0", 115200); !os.IsNotExist(err) {
		t.Errorf("a missing device: %v", err)
	}
	if _, err := OpenSerial("/dev/null", 115201); err == nil || !strings.Contains(err.Error(), "115201 is not a standard baud rate; use one of 1200, ") {
		t.Errorf("a bad rate: %v", err)
	}
}

// MakeRaw's restore puts back exactly the settings there were.
func TestMakeRawRestores(t *testing.T) {
	m, s, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	defer s.Close()
	before := *termios(t, s)
	if !IsTerminal(int(s.Fd())) {
		t.Fatal("a pty is not a terminal")
	}
	restore, err := MakeRaw(int(s.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	if raw := termios(t, s); raw.Lflag&unix.ECHO != 0 {
		t.Error("still echoing")
	}
	if err := restore(); err != nil {
		t.Fatal(err)
	}
	if after := *termios(t, s); after != before {
		t.Errorf("after restore %+v, before %+v", after, before)
	}
	if f, _ := os.Open("/dev/null"); IsTerminal(int(f.Fd())) {
		t.Error("/dev/null is a terminal")
	}
}
