// Package tty sets terminal line settings: a serial console opened raw at
// a baud rate, and a user's terminal put into raw mode and restored. Both
// are the same termios ioctls (termios(3): cfmakeraw), so they live here
// once.
package tty

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// speeds are the standard Linux baud rates (asm-generic/termbits.h) from
// 1200 up; serial consoles use 115200.
var speeds = map[int]uint32{
	1200: unix.B1200, 2400: unix.B2400, 4800: unix.B4800, 9600: unix.B9600,
	19200: unix.B19200, 38400: unix.B38400, 57600: unix.B57600, 115200: unix.B115200,
	230400: unix.B230400, 460800: unix.B460800, 500000: unix.B500000, 576000: unix.B576000,
	921600: unix.B921600, 1000000: unix.B1000000, 1152000: unix.B1152000, 1500000: unix.B1500000,
	2000000: unix.B2000000, 2500000: unix.B2500000, 3000000: unix.B3000000, 3500000: unix.B3500000,
	4000000: unix.B4000000,
}

// Speeds lists the baud rates OpenSerial accepts, ascending.
func Speeds() []int {
	out := make([]int, 0, len(speeds))
	for s := range speeds {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// ValidSpeed reports whether baud is one of Speeds, and if not, says so in
// a line naming the valid ones.
func ValidSpeed(baud int) error {
	if _, ok := speeds[baud]; ok {
		return nil
	}
	var s []string
	for _, v := range Speeds() {
		s = append(s, strconv.Itoa(v))
	}
	return fmt.Errorf("%d is not a standard baud rate; use one of %s (115200 for a Raspberry Pi console)", baud, strings.Join(s, ", "))
}

// Raw changes t as cfmakeraw(3) does: no input or output processing, no
// echo, no signals from keys, 8-bit characters, reads return as soon as
// one byte is there.
func Raw(t *unix.Termios) {
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN] = 1
	t.Cc[unix.VTIME] = 0
}

// OpenSerial opens a serial device raw at baud, 8N1 without flow control,
// and ignoring modem lines (a USB gadget or an adaptor's UART has none
// worth waiting for). It is opened without becoming anyone's controlling
// terminal and non-blocking, so that reads go through the runtime's poller
// and Close ends a pending Read. Output the device buffered before the
// open is kept: it is the start of a boot log.
func OpenSerial(path string, baud int) (*os.File, error) {
	speed, ok := speeds[baud]
	if !ok {
		return nil, ValidSpeed(baud)
	}
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.ENOTTY) {
			return nil, fmt.Errorf("%s is not a serial device (a terminal)", path)
		}
		return nil, &os.PathError{Op: "tcgetattr", Path: path, Err: err}
	}
	Raw(t)
	t.Iflag &^= unix.IXOFF | unix.IXANY
	t.Cflag &^= unix.CBAUD | unix.CSTOPB | unix.CRTSCTS | unix.HUPCL
	t.Cflag |= unix.CLOCAL | unix.CREAD | speed
	t.Ispeed, t.Ospeed = speed, speed
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, t); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "tcsetattr", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// IsTerminal reports whether fd is a terminal.
func IsTerminal(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return err == nil
}

// MakeRaw puts the terminal fd into raw mode and returns the function that
// puts back the settings it had. Restoring twice is harmless.
func MakeRaw(fd int) (restore func() error, err error) {
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, err
	}
	t := *old
	Raw(&t)
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &t); err != nil {
		return nil, err
	}
	return func() error { return unix.IoctlSetTermios(fd, unix.TCSETS, old) }, nil
}
