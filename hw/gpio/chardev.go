package gpio

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The GPIO character device (/dev/gpiochipN, uAPI v2), for the Pi 5: its
// header's lines are on the RP1, which /dev/gpiomem (and so periph's
// memory-mapped driver) does not reach. The structures and ioctls are the
// kernel's include/uapi/linux/gpio.h (v2, Linux 5.10 and later), spoken
// through golang.org/x/sys/unix, without cgo. periph's own gpioioctl
// driver is not used: it reconfigures a line to an input with a pull-up to
// read it, and requests an output without its level, either of which
// would switch a node off.
//
// A line is requested once, "as is" (no direction flag: the kernel leaves
// the line as it is), and kept for the life of the process. Its direction
// comes from the line info, its level from the request; Drive sets the
// direction to output with the level in the same ioctl (an output-values
// attribute), so the line goes from input to the level without a glitch.
//
// Not checked on a Pi 5: whether the RP1 driver leaves a line's direction
// and level alone when the requesting process exits (the daemon restarts
// and finds its nodes as it left them only if it does).

const (
	gpioMaxName  = 32
	gpioLinesMax = 64
	gpioAttrsMax = 10

	lineFlagUsed   = 1 << 0
	lineFlagInput  = 1 << 2
	lineFlagOutput = 1 << 3

	attrOutputValues = 2
)

type gpiochipInfo struct {
	Name  [gpioMaxName]byte
	Label [gpioMaxName]byte
	Lines uint32
}

type lineAttribute struct {
	ID      uint32
	Padding uint32
	Value   uint64 // flags, values or debounce period
}

type lineConfigAttribute struct {
	Attr lineAttribute
	Mask uint64
}

type lineConfig struct {
	Flags    uint64
	NumAttrs uint32
	Padding  [5]uint32
	Attrs    [gpioAttrsMax]lineConfigAttribute
}

type lineRequest struct {
	Offsets         [gpioLinesMax]uint32
	Consumer        [gpioMaxName]byte
	Config          lineConfig
	NumLines        uint32
	EventBufferSize uint32
	Padding         [5]uint32
	FD              int32
}

type lineInfo struct {
	Name     [gpioMaxName]byte
	Consumer [gpioMaxName]byte
	Offset   uint32
	NumAttrs uint32
	Flags    uint64
	Attrs    [gpioAttrsMax]lineAttribute
	Padding  [4]uint32
}

type lineValues struct {
	Bits, Mask uint64
}

// ioc is the kernel's _IOC: direction (1 write, 2 read), type 0xB4, nr,
// the argument's size.
func ioc(dir, nr, size uintptr) uintptr { return dir<<30 | size<<16 | 0xB4<<8 | nr }

var (
	getChipInfo   = ioc(2, 0x01, unsafe.Sizeof(gpiochipInfo{}))
	getLineInfo   = ioc(3, 0x05, unsafe.Sizeof(lineInfo{}))
	getLine       = ioc(3, 0x07, unsafe.Sizeof(lineRequest{}))
	setLineConfig = ioc(3, 0x0D, unsafe.Sizeof(lineConfig{}))
	getLineValues = ioc(3, 0x0E, unsafe.Sizeof(lineValues{}))
)

// kernel is the character device's ioctls; tests give a model of it.
type kernel interface {
	ioctl(fd uintptr, req uintptr, arg unsafe.Pointer) error
}

type sysKernel struct{}

func (sysKernel) ioctl(fd, req uintptr, arg unsafe.Pointer) error {
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, fd, req, uintptr(arg)); errno != 0 {
		return errno
	}
	return nil
}

// cdevLine is one line on a character device.
type cdevLine struct {
	k      kernel
	chip   *os.File
	offset uint32
	name   string

	mu  sync.Mutex
	req int // the request's fd, -1 until requested
}

func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// headerChip finds the gpiochip with the header's lines: the Pi 5's RP1
// ("pinctrl-rp1"), or a BCM283x's, under dev (/dev).
func headerChip(k kernel, dev string) (*os.File, string, error) {
	paths, _ := filepath.Glob(filepath.Join(dev, "gpiochip*"))
	var labels []string
	for _, pass := range []string{"pinctrl-rp1", "pinctrl-bcm2"} {
		for _, p := range paths {
			f, err := os.OpenFile(p, os.O_RDWR|unix.O_CLOEXEC, 0)
			if err != nil {
				continue
			}
			var info gpiochipInfo
			if err := k.ioctl(f.Fd(), getChipInfo, unsafe.Pointer(&info)); err != nil {
				f.Close()
				continue
			}
			label := cString(info.Label[:])
			if pass == "pinctrl-rp1" {
				labels = append(labels, filepath.Base(p)+" "+label)
			}
			if strings.HasPrefix(label, pass) {
				return f, label, nil
			}
			f.Close()
		}
	}
	if len(paths) == 0 {
		return nil, "", fmt.Errorf("no %s/gpiochip* (and no /dev/gpiomem): GPIO is not available", dev)
	}
	return nil, "", fmt.Errorf("no Raspberry Pi GPIO chip among %s", strings.Join(labels, ", "))
}

// openCdev returns BCM line n of the header's chip under dev; on both the
// RP1 and the BCM283x the header's GPIO n is the chip's line n.
func openCdev(k kernel, dev string, n int) (*cdevLine, error) {
	chip, _, err := headerChip(k, dev)
	if err != nil {
		return nil, fmt.Errorf("GPIO%d: %w", n, err)
	}
	l := &cdevLine{k: k, chip: chip, offset: uint32(n), name: fmt.Sprintf("GPIO%d", n), req: -1}
	if _, err := l.info(); err != nil {
		chip.Close()
		return nil, fmt.Errorf("GPIO%d: %w", n, err)
	}
	return l, nil
}

func (l *cdevLine) info() (lineInfo, error) {
	info := lineInfo{Offset: l.offset}
	err := l.k.ioctl(l.chip.Fd(), getLineInfo, unsafe.Pointer(&info))
	return info, err
}

// request asks for the line as it is, once.
func (l *cdevLine) request() (int, error) {
	if l.req >= 0 {
		return l.req, nil
	}
	r := lineRequest{NumLines: 1}
	r.Offsets[0] = l.offset
	copy(r.Consumer[:], "headnode")
	if err := l.k.ioctl(l.chip.Fd(), getLine, unsafe.Pointer(&r)); err != nil {
		if errors.Is(err, unix.EBUSY) {
			info, _ := l.info()
			return -1, fmt.Errorf("%s is in use by %q", l.name, cString(info.Consumer[:]))
		}
		return -1, fmt.Errorf("%s: requesting the line: %w", l.name, err)
	}
	l.req = int(r.FD)
	return l.req, nil
}

// Name is the line's name, e.g. "GPIO5".
func (l *cdevLine) Name() string { return l.name }

// State returns whether the line is an output and its level, without
// changing it.
func (l *cdevLine) State() (output, high bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	info, err := l.info()
	if err != nil {
		return false, false, fmt.Errorf("%s: %w", l.name, err)
	}
	fd, err := l.request()
	if err != nil {
		return false, false, err
	}
	v := lineValues{Mask: 1}
	if err := l.k.ioctl(uintptr(fd), getLineValues, unsafe.Pointer(&v)); err != nil {
		return false, false, fmt.Errorf("%s: reading the level: %w", l.name, err)
	}
	return info.Flags&lineFlagOutput != 0, v.Bits&1 != 0, nil
}

// Drive makes the line an output at the level, in one configuration
// change (the level is given with the direction).
func (l *cdevLine) Drive(high bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	fd, err := l.request()
	if err != nil {
		return err
	}
	c := lineConfig{Flags: lineFlagOutput, NumAttrs: 1}
	c.Attrs[0] = lineConfigAttribute{Attr: lineAttribute{ID: attrOutputValues}, Mask: 1}
	if high {
		c.Attrs[0].Attr.Value = 1
	}
	if err := l.k.ioctl(uintptr(fd), setLineConfig, unsafe.Pointer(&c)); err != nil {
		return fmt.Errorf("%s: driving it: %w", l.name, err)
	}
	return nil
}
