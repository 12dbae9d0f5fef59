package led

import (
	"fmt"

	"github.com/headnode/headnode/hw/hidraw"
)

// Finder finds a supported light among the hidraw devices. A light that
// was unplugged comes back under another /dev/hidrawN, so it is found
// again by its serial.
type Finder struct {
	// Root of the sysfs and /dev trees; "" is the real system.
	Root string
	// Open opens a device node; nil means hidraw.Open.
	Open func(path string) (FeatureDevice, error)
	// Wrap, when set, wraps every opened device (the HID trace).
	Wrap func(dev FeatureDevice, info hidraw.Info) FeatureDevice
	// Serial, when set, is the only light accepted.
	Serial string

	last string // serial of the light found last
}

// Find opens the configured light, else the one found last, else the
// first supported one.
func (f *Finder) Find() (Device, error) {
	infos, err := hidraw.Enumerate(f.Root)
	if err != nil {
		return nil, fmt.Errorf("listing hidraw devices: %w", err)
	}
	var pick *hidraw.Info
	for i, info := range infos {
		if !Supported(info) {
			continue
		}
		switch {
		case f.Serial != "":
			if info.Serial == f.Serial {
				pick = &infos[i]
			}
		case info.Serial == f.last && f.last != "":
			pick = &infos[i]
		case pick == nil:
			pick = &infos[i]
		}
	}
	if pick == nil {
		if f.Serial != "" {
			return nil, fmt.Errorf("no status LED with serial %s (BlinkStick or blink(1)) is plugged in", f.Serial)
		}
		return nil, fmt.Errorf("no status LED (BlinkStick or blink(1)) is plugged in")
	}
	open := f.Open
	if open == nil {
		open = func(p string) (FeatureDevice, error) { return hidraw.Open(p) }
	}
	raw, err := open(pick.Path)
	if err != nil {
		return nil, fmt.Errorf("opening the status LED %s at %s: %w", pick.Serial, pick.Path, err)
	}
	if f.Wrap != nil {
		raw = f.Wrap(raw, *pick)
	}
	dev, err := Open(*pick, raw)
	if err != nil {
		raw.Close()
		return nil, err
	}
	f.last = pick.Serial
	return dev, nil
}
