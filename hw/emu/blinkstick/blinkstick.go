package blinkstick

import (
	"fmt"
	"slices"
	"sync"
	"syscall"
	"time"
)

// Kind is a BlinkStick variant.
type Kind string

// Variants.
const (
	Original Kind = "original"
	Pro      Kind = "pro"
	Square   Kind = "square"
	Strip    Kind = "strip"
	Nano     Kind = "nano"
	Flex     Kind = "flex"
)

// Kinds lists every variant.
var Kinds = []Kind{Original, Pro, Square, Strip, Nano, Flex}

// identity returns the serial's major version, USB bcdDevice and LED count
// of each variant.
func (k Kind) identity() (major int, bcd uint16, leds int, ok bool) {
	switch k {
	case Original:
		return 1, 0x0200, 1, true
	case Pro:
		return 2, 0x0200, 1, true
	case Square:
		return 3, 0x0200, 8, true
	case Strip:
		return 3, 0x0201, 8, true
	case Nano:
		return 3, 0x0202, 2, true
	case Flex:
		return 3, 0x0203, 32, true
	}
	return 0, 0, 0, false
}

// Valid reports whether k is a known variant.
func (k Kind) Valid() bool { _, _, _, ok := k.identity(); return ok }

// USB identity shared by every BlinkStick.
const (
	VendorID  = 0x20a0
	ProductID = 0x41e5
)

// RGB is one LED's colour.
type RGB struct{ R, G, B uint8 }

func (c RGB) String() string { return fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B) }

// Change is the visible state of every LED from At on.
type Change struct {
	At   time.Time
	LEDs []RGB
}

// Opts configures an emulated stick.
type Opts struct {
	// Serial; "" gives BS000001-<major>.0.
	Serial string
	// Mode0 starts a multi-LED stick in mode 0, as older Square firmware
	// shipped: frames reach LED 0 only until mode 2 is set. Otherwise
	// multi-LED sticks start in mode 2 and the others in mode 0.
	Mode0 bool
	// FlexLEDs is a Flex's LED count (0: 16).
	FlexLEDs int
}

// Stick is an emulated BlinkStick. It implements hidraw.Feature.
type Stick struct {
	mu        sync.Mutex
	kind      Kind
	serial    string
	bcd       uint16
	leds      []RGB
	mode      byte
	info      [2][32]byte
	unplugged bool
	history   []Change
	reports   int
}

// New returns a plugged-in stick of kind k with every LED off.
func New(k Kind, o *Opts) *Stick {
	major, bcd, leds, ok := k.identity()
	if !ok {
		panic(fmt.Sprintf("blinkstick: unknown kind %q", k))
	}
	if o == nil {
		o = &Opts{}
	}
	s := &Stick{kind: k, serial: o.Serial, bcd: bcd}
	if s.serial == "" {
		s.serial = fmt.Sprintf("BS000001-%d.0", major)
	}
	if k == Flex {
		leds = 16
		if o.FlexLEDs > 0 {
			leds = o.FlexLEDs
		}
	}
	s.leds = make([]RGB, leds)
	if leds > 1 && !o.Mode0 {
		s.mode = 2
	}
	return s
}

// Kind returns the variant.
func (s *Stick) Kind() Kind { return s.kind }

// Serial returns the USB serial number.
func (s *Stick) Serial() string { return s.serial }

// BCDDevice returns the USB device release number.
func (s *Stick) BCDDevice() uint16 { return s.bcd }

// LEDs returns the colours the LEDs show now.
func (s *Stick) LEDs() []RGB {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]RGB(nil), s.leds...)
}

// Mode returns the EEPROM mode.
func (s *Stick) Mode() byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mode
}

// History returns every change of the LEDs, in order.
func (s *Stick) History() []Change {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Change(nil), s.history...)
}

// Reports counts the feature reports the stick accepted.
func (s *Stick) Reports() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reports
}

// Unplug disconnects the stick: every report fails with ENODEV until Plug.
// The LEDs go dark (no USB power); the EEPROM keeps the mode.
func (s *Stick) Unplug() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unplugged = true
	for i := range s.leds {
		s.leds[i] = RGB{}
	}
}

// Plug connects it again, LEDs off.
func (s *Stick) Plug() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unplugged = false
}

// reportLen is each report's length including the ID byte.
func reportLen(id byte) int {
	switch id {
	case 1:
		return 4
	case 2, 3:
		return 33
	case 4, 0x81:
		return 2
	case 5:
		return 6
	case 6, 7, 8, 9:
		return 2 + 3*(8<<(id-6))
	}
	return 0
}

func (s *Stick) knows(id byte) bool {
	switch {
	case reportLen(id) == 0:
		return false
	case s.kind == Original:
		return id <= 3
	case id == 0x81:
		return s.kind == Flex
	}
	return true
}

// SetFeature implements hidraw.Feature.
func (s *Stick) SetFeature(b []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.unplugged {
		return syscall.ENODEV
	}
	if len(b) < 2 {
		return syscall.EINVAL
	}
	id := b[0]
	if !s.knows(id) || len(b) != reportLen(id) {
		return syscall.EPIPE
	}
	s.reports++
	before := append([]RGB(nil), s.leds...)
	switch id {
	case 1:
		s.leds[0] = RGB{b[1], b[2], b[3]}
	case 2, 3:
		copy(s.info[id-2][:], b[1:])
	case 4:
		s.mode = b[1]
	case 5:
		if i := int(b[2]); b[1] == 0 && i < len(s.leds) && (i == 0 || s.mode == 2) {
			s.leds[i] = RGB{b[3], b[4], b[5]}
		}
	case 6, 7, 8, 9:
		if b[1] != 0 {
			break // channels 1 and 2 exist on the Pro only, with nothing on them here
		}
		n := (len(b) - 2) / 3
		if s.mode != 2 {
			n = 1 // without WS2812 mode only the first LED is driven
		}
		for i := 0; i < n && i < len(s.leds); i++ {
			g, r, bl := b[2+3*i], b[3+3*i], b[4+3*i]
			s.leds[i] = RGB{r, g, bl}
		}
	case 0x81:
		if c := int(b[1]); c >= 1 && c <= 64 {
			old := s.leds
			s.leds = make([]RGB, c)
			copy(s.leds, old)
			before = nil
		}
	}
	if !slices.Equal(before, s.leds) {
		s.history = append(s.history, Change{At: time.Now(), LEDs: append([]RGB(nil), s.leds...)})
	}
	return nil
}

// GetFeature implements hidraw.Feature: b[0] names the report; the answer
// starts with the report ID.
func (s *Stick) GetFeature(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.unplugged {
		return 0, syscall.ENODEV
	}
	if len(b) < 2 {
		return 0, syscall.EINVAL
	}
	id := b[0]
	n := reportLen(id)
	if !s.knows(id) || len(b) < n {
		return 0, syscall.EPIPE
	}
	ans := make([]byte, n)
	ans[0] = id
	switch id {
	case 1:
		ans[1], ans[2], ans[3] = s.leds[0].R, s.leds[0].G, s.leds[0].B
	case 2, 3:
		copy(ans[1:], s.info[id-2][:])
	case 4:
		ans[1] = s.mode
	case 0x81:
		ans[1] = byte(len(s.leds))
	case 6, 7, 8, 9:
		for i := 0; i < (n-2)/3 && i < len(s.leds); i++ {
			ans[2+3*i], ans[3+3*i], ans[4+3*i] = s.leds[i].G, s.leds[i].R, s.leds[i].B
		}
	default:
		return 0, syscall.EPIPE
	}
	return copy(b, ans), nil
}

// Close implements hidraw.Feature.
func (s *Stick) Close() error { return nil }
