package led

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/headnode/headnode/hw/hidraw"
)

// RGB is a colour.
type RGB struct{ R, G, B uint8 }

func (c RGB) String() string { return fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B) }

// Scale multiplies every channel by f (0-1).
func (c RGB) Scale(f float64) RGB {
	s := func(v uint8) uint8 {
		x := float64(v)*f + 0.5
		if x > 255 {
			return 255
		}
		return uint8(x)
	}
	return RGB{s(c.R), s(c.G), s(c.B)}
}

// FeatureDevice takes HID feature reports (report ID first): an open
// hidraw node or an emulated device.
type FeatureDevice interface {
	SetFeature(b []byte) error
	GetFeature(b []byte) (int, error)
	Close() error
}

// Device is a USB status light with one or more LEDs.
type Device interface {
	// Show sets every LED (frame[i] is LED i; missing entries are off).
	// Drivers write only what differs from the last successful Show.
	Show(frame []RGB) error
	// LEDs is how many LEDs the device has.
	LEDs() int
	// Kind names the model ("BlinkStick Strip").
	Kind() string
	// Serial is the USB serial number.
	Serial() string
	Close() error
}

// ErrUnplugged is wrapped by errors from a device that went away.
var ErrUnplugged = hidraw.ErrUnplugged

// USB identities of the supported lights.
const (
	blinkStickVID, blinkStickPID = 0x20a0, 0x41e5
	blink1VID, blink1PID         = 0x27b8, 0x01ed
)

// Supported reports whether info is a light this package drives.
func Supported(info hidraw.Info) bool {
	return info.Vendor == blinkStickVID && info.Product == blinkStickPID ||
		info.Vendor == blink1VID && info.Product == blink1PID
}

// Open returns the driver for the light described by info, talking through
// dev.
func Open(info hidraw.Info, dev FeatureDevice) (Device, error) {
	switch {
	case info.Vendor == blinkStickVID && info.Product == blinkStickPID:
		return NewBlinkStick(dev, info.Serial, info.BCDDevice, info.HasBCD)
	case info.Vendor == blink1VID && info.Product == blink1PID:
		return NewBlink1(dev, info.Serial), nil
	}
	return nil, fmt.Errorf("led: %04x:%04x is not a supported light (BlinkStick 20a0:41e5, blink(1) 27b8:01ed)", info.Vendor, info.Product)
}

// retry sends once more after errors a low-speed USB control transfer can
// recover from (a stall, a timeout, a transfer error), as the vendor's
// .NET library does; ENODEV means unplugged and is final.
func retry(f func() error) error {
	err := f()
	if errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ETIMEDOUT) || errors.Is(err, syscall.EIO) {
		err = f()
	}
	return err
}

// Variant is a BlinkStick model.
type Variant int

// BlinkStick models.
const (
	VariantOriginal Variant = iota
	VariantPro
	VariantSquare
	VariantStrip
	VariantNano
	VariantFlex
)

var variantNames = []string{"BlinkStick", "BlinkStick Pro", "BlinkStick Square", "BlinkStick Strip", "BlinkStick Nano", "BlinkStick Flex"}

func (v Variant) String() string { return variantNames[v] }

// VariantOf tells the model from the serial ("BSnnnnnn-M.m": M is 1 on the
// original, 2 on the Pro, 3 on the rest) and, for M = 3, the USB
// bcdDevice (0x0200 Square, 0x0201 Strip, 0x0202 Nano, 0x0203 Flex). Never
// from the product name: many Squares call themselves "BlinkStick".
func VariantOf(serial string, bcd uint16, hasBCD bool) (Variant, error) {
	_, ver, ok := strings.Cut(serial, "-")
	major, _, _ := strings.Cut(ver, ".")
	m, err := strconv.Atoi(major)
	if !ok || err != nil {
		return 0, fmt.Errorf("led: BlinkStick serial %q is not BSnnnnnn-M.m", serial)
	}
	switch {
	case m == 1:
		return VariantOriginal, nil
	case m == 2:
		return VariantPro, nil
	case !hasBCD:
		return VariantSquare, nil // eight LEDs is the safe guess
	}
	switch bcd {
	case 0x0201:
		return VariantStrip, nil
	case 0x0202:
		return VariantNano, nil
	case 0x0203:
		return VariantFlex, nil
	}
	return VariantSquare, nil
}

// BlinkStick drives one BlinkStick.
type BlinkStick struct {
	dev     FeatureDevice
	variant Variant
	serial  string
	leds    int
	frameID byte // 0: LED 0 only through report 1; 5: one report 5 per LED
	last    []RGB
}

// NewBlinkStick identifies the stick and prepares it: a Flex is asked for
// its LED count; a multi-LED stick not in WS2812 mode (2) is switched to
// it once (the mode lives in EEPROM, so this is not repeated needlessly).
func NewBlinkStick(dev FeatureDevice, serial string, bcd uint16, hasBCD bool) (*BlinkStick, error) {
	v, err := VariantOf(serial, bcd, hasBCD)
	if err != nil {
		return nil, err
	}
	s := &BlinkStick{dev: dev, variant: v, serial: serial}
	switch v {
	case VariantOriginal, VariantPro:
		s.leds, s.frameID = 1, 1
		return s, nil
	case VariantNano:
		s.leds, s.frameID = 2, 5
	case VariantFlex:
		b := []byte{0x81, 0}
		if err := retry(func() error { _, err := dev.GetFeature(b); return err }); err != nil {
			return nil, fmt.Errorf("led: reading the Flex's LED count: %w", err)
		}
		s.leds = max(1, min(int(b[1]), 64))
	default:
		s.leds = 8
	}
	if s.frameID == 0 {
		s.frameID = frameReport(s.leds)
	}
	mode := []byte{4, 0}
	if err := retry(func() error { _, err := dev.GetFeature(mode); return err }); err != nil {
		return nil, fmt.Errorf("led: reading the mode of %s: %w", serial, err)
	}
	if mode[1] != 2 {
		if err := retry(func() error { return dev.SetFeature([]byte{4, 2}) }); err != nil {
			return nil, fmt.Errorf("led: setting %s to WS2812 mode: %w", serial, err)
		}
	}
	return s, nil
}

// frameReport is the smallest frame report (6: 8 LEDs, 7: 16, 8: 32, 9: 64)
// that holds n LEDs.
func frameReport(n int) byte {
	id := byte(6)
	for size := 8; size < n && id < 9; size *= 2 {
		id++
	}
	return id
}

// Show implements Device.
func (s *BlinkStick) Show(frame []RGB) error {
	want := make([]RGB, s.leds)
	copy(want, frame)
	var err error
	switch s.frameID {
	case 1:
		if s.last == nil || want[0] != s.last[0] {
			c := want[0]
			err = retry(func() error { return s.dev.SetFeature([]byte{1, c.R, c.G, c.B}) })
		}
	case 5:
		for i, c := range want {
			if s.last != nil && c == s.last[i] {
				continue
			}
			if err = retry(func() error { return s.dev.SetFeature([]byte{5, 0, byte(i), c.R, c.G, c.B}) }); err != nil {
				break
			}
		}
	default:
		if s.last == nil || !slices.Equal(want, s.last) {
			b := make([]byte, 2+3*(8<<(s.frameID-6)))
			b[0] = s.frameID
			for i, c := range want {
				b[2+3*i], b[3+3*i], b[4+3*i] = c.G, c.R, c.B
			}
			err = retry(func() error { return s.dev.SetFeature(b) })
		}
	}
	if err != nil {
		s.last = nil // unknown: write everything next time
		return fmt.Errorf("led: %s %s: %w", s.variant, s.serial, err)
	}
	s.last = want
	return nil
}

// LEDs implements Device.
func (s *BlinkStick) LEDs() int { return s.leds }

// Kind implements Device.
func (s *BlinkStick) Kind() string { return s.variant.String() }

// Variant returns the model.
func (s *BlinkStick) Variant() Variant { return s.variant }

// Serial implements Device.
func (s *BlinkStick) Serial() string { return s.serial }

// Close implements Device.
func (s *BlinkStick) Close() error { return s.dev.Close() }

// Blink1 drives a ThingM blink(1): feature report 1 carrying the command
// 'n' (set now) with the colour, for both LEDs of an mk2 at once.
type Blink1 struct {
	dev    FeatureDevice
	serial string
	last   *RGB
}

// NewBlink1 returns the driver for a blink(1).
func NewBlink1(dev FeatureDevice, serial string) *Blink1 { return &Blink1{dev: dev, serial: serial} }

// Show implements Device.
func (b *Blink1) Show(frame []RGB) error {
	var c RGB
	if len(frame) > 0 {
		c = frame[0]
	}
	if b.last != nil && *b.last == c {
		return nil
	}
	if err := retry(func() error { return b.dev.SetFeature([]byte{1, 'n', c.R, c.G, c.B, 0, 0, 0, 0}) }); err != nil {
		b.last = nil
		return fmt.Errorf("led: blink(1) %s: %w", b.serial, err)
	}
	b.last = &c
	return nil
}

// LEDs implements Device.
func (b *Blink1) LEDs() int { return 1 }

// Kind implements Device.
func (b *Blink1) Kind() string { return "blink(1)" }

// Serial implements Device.
func (b *Blink1) Serial() string { return b.serial }

// Close implements Device.
func (b *Blink1) Close() error { return b.dev.Close() }
