package gpio

import (
	"fmt"
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
type Line struct {
	pin gpio.PinIO
}

// Open returns BCM GPIO line n.
func Open(n int) (*Line, error) {
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
		return nil, fmt.Errorf("GPIO%d: cannot read the line without changing it (no /dev/gpiomem; Pi 5 GPIO is not supported for ClusterHAT v1)", n)
	}
	return &Line{pin: p}, nil
}

// Name is the line's name, e.g. "GPIO5".
func (l *Line) Name() string { return l.pin.Name() }

// State returns whether the line is an output and its level.
func (l *Line) State() (output, high bool, err error) {
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
func (l *Line) Drive(high bool) error {
	return l.pin.Out(gpio.Level(high))
}
