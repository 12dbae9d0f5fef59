package gpio

import (
	"fmt"
	"os"
	"strings"
	"sync"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/conn/v3/pin"
	"periph.io/x/host/v3"
)

var initOnce = sync.OnceValue(func() error {
	_, err := host.Init()
	return err
})

// Line is one GPIO line, by BCM number.
type Line interface {
	Name() string
	// State returns whether the line is an output and its level,
	// without changing the line.
	State() (output, high bool, err error)
	// Drive makes the line an output at the level, level first.
	Drive(high bool) error
}

// gpiomem is the BCM283x's GPIO registers for users: where it is, periph's
// memory-mapped driver runs the lines; where it is not (a Pi 5, whose
// header is on the RP1), the character device does.
const gpiomem = "/dev/gpiomem"

var (
	cdevMu    sync.Mutex
	cdevLines = map[int]*cdevLine{}
)

// Open returns BCM GPIO line n. A line on the character device is
// requested once and kept: opening it again returns the same line.
func Open(n int) (Line, error) {
	if _, err := os.Stat(gpiomem); err != nil {
		cdevMu.Lock()
		defer cdevMu.Unlock()
		if l, ok := cdevLines[n]; ok {
			return l, nil
		}
		l, err := openCdev(sysKernel{}, "/dev", n)
		if err != nil {
			return nil, err
		}
		cdevLines[n] = l
		return l, nil
	}
	return openMem(n)
}

// memLine is a line on periph's memory-mapped driver (/dev/gpiomem).
type memLine struct {
	pin gpio.PinIO
}

func openMem(n int) (*memLine, error) {
	if err := initOnce(); err != nil {
		return nil, fmt.Errorf("gpio: periph init: %w", err)
	}
	p := gpioreg.ByName(fmt.Sprintf("GPIO%d", n))
	if p == nil {
		return nil, fmt.Errorf("GPIO%d not found: this does not look like a Raspberry Pi", n)
	}
	// Func on the memory-mapped driver reads the function register; on
	// the ioctl fallback it says FuncNone for a line not yet requested
	// (and does not touch it).
	if f, ok := p.(pin.PinFunc); !ok || f.Func() == pin.FuncNone {
		return nil, fmt.Errorf("GPIO%d: cannot read the line without changing it (periph's driver for it does not say how it is set)", n)
	}
	return &memLine{pin: p}, nil
}

// Name is the line's name, e.g. "GPIO5".
func (l *memLine) Name() string { return l.pin.Name() }

// State returns whether the line is an output and its level.
func (l *memLine) State() (output, high bool, err error) {
	f := string(l.pin.(pin.PinFunc).Func())
	switch {
	case strings.HasPrefix(f, "Out"):
		return true, l.pin.Read() == gpio.High, nil
	case strings.HasPrefix(f, "In"):
		return false, l.pin.Read() == gpio.High, nil
	}
	return false, false, fmt.Errorf("%s is in use as %s, not as a GPIO", l.pin.Name(), f)
}

// Drive makes the line an output at the given level (level first, then
// direction: no glitch).
func (l *memLine) Drive(high bool) error {
	return l.pin.Out(gpio.Level(high))
}
