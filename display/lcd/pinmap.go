package lcd

import (
	"fmt"
	"strconv"
	"strings"
)

// PinMap says which expander bit drives which LCD line. A bit of -1 means
// the line is not wired (RW tied to ground, no backlight transistor).
type PinMap struct {
	Name      string
	RS, RW, E int
	D         [4]int // D4, D5, D6, D7
	BL        int
	// BLActiveLow: the backlight is lit when BL is low.
	BLActiveLow bool
	// MCP23008 is true for maps of MCP23008 backpacks.
	MCP23008 bool
}

// Pin-map presets of the common backpacks.
var (
	// Standard: the blue PCF8574 boards (LCM1602 IIC, YwRobot, DFRobot,
	// SainSmart, Funduino) and the Raspberry Pi hd44780-i2c-lcd overlay.
	Standard = PinMap{Name: "standard", RS: 0, RW: 1, E: 2, BL: 3, D: [4]int{4, 5, 6, 7}}
	// StandardBLLow: the standard map with an active-low backlight (Robot
	// Arduino LCM1602).
	StandardBLLow = PinMap{Name: "standard-bl-low", RS: 0, RW: 1, E: 2, BL: 3, D: [4]int{4, 5, 6, 7}, BLActiveLow: true}
	// MJKDZ: mjkdz and GY-I2CLCD boards.
	MJKDZ = PinMap{Name: "mjkdz", RS: 6, RW: 5, E: 4, BL: 7, D: [4]int{0, 1, 2, 3}, BLActiveLow: true}
	// LCDXIO: ElectroFun LCDXIO, lcdproc's default.
	LCDXIO = PinMap{Name: "lcdxio", RS: 4, RW: 5, E: 6, BL: 7, D: [4]int{0, 1, 2, 3}, BLActiveLow: true}
	// Adafruit: the Adafruit #292 backpack, MCP23008 side.
	Adafruit = PinMap{Name: "adafruit", RS: 1, RW: -1, E: 2, BL: 7, D: [4]int{3, 4, 5, 6}, MCP23008: true}
)

// Presets are the named pin maps ParsePinMap accepts.
var Presets = []PinMap{Standard, StandardBLLow, MJKDZ, LCDXIO, Adafruit}

// ParsePinMap accepts a preset name or a custom map written as
// "rs=0 rw=1 e=2 d4=4 d5=5 d6=6 d7=7 bl=3" (commas or spaces between
// pairs; rw=none for a grounded RW, bl=none without backlight control,
// bl_low to make the backlight active-low, mcp23008 for an MCP23008
// board).
func ParsePinMap(s string) (PinMap, error) {
	for _, p := range Presets {
		if s == p.Name {
			return p, nil
		}
	}
	if !strings.Contains(s, "=") {
		return PinMap{}, fmt.Errorf("pin map %q is not known; use %s, or give the bits like \"rs=0 rw=1 e=2 d4=4 d5=5 d6=6 d7=7 bl=3\"", s, presetNames())
	}
	m := PinMap{Name: "custom", RS: -2, RW: -2, E: -2, BL: -2, D: [4]int{-2, -2, -2, -2}}
	fields := map[string]*int{"rs": &m.RS, "rw": &m.RW, "e": &m.E, "bl": &m.BL, "d4": &m.D[0], "d5": &m.D[1], "d6": &m.D[2], "d7": &m.D[3]}
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		k, v, _ := strings.Cut(strings.ToLower(f), "=")
		switch k {
		case "bl_low":
			m.BLActiveLow = true
			continue
		case "mcp23008":
			m.MCP23008 = true
			continue
		}
		p, ok := fields[k]
		if !ok {
			return PinMap{}, fmt.Errorf("pin map %q: unknown line %q; the lines are rs, rw, e, d4, d5, d6, d7, bl (and the flags bl_low, mcp23008)", s, k)
		}
		if v == "none" && (k == "rw" || k == "bl") {
			*p = -1
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 7 {
			return PinMap{}, fmt.Errorf("pin map %q: %s=%q is not a bit number 0-7", s, k, v)
		}
		*p = n
	}
	used := map[int]string{}
	for _, k := range []string{"rs", "rw", "e", "d4", "d5", "d6", "d7", "bl"} {
		n := *fields[k]
		if n == -2 {
			return PinMap{}, fmt.Errorf("pin map %q: %s is missing; give every line (rw and bl may be \"none\")", s, k)
		}
		if n < 0 {
			continue
		}
		if other, dup := used[n]; dup {
			return PinMap{}, fmt.Errorf("pin map %q: bit %d is given to both %s and %s", s, n, other, k)
		}
		used[n] = k
	}
	return m, nil
}

func presetNames() string {
	var names []string
	for _, p := range Presets {
		names = append(names, strconv.Quote(p.Name))
	}
	return strings.Join(names, ", ")
}

func (m PinMap) String() string { return m.Name }

func (m PinMap) bit(n int) byte {
	if n < 0 {
		return 0
	}
	return 1 << n
}

// port is the expander value that puts nibble n on D4-D7 with RS as given,
// RW low, E low and the backlight as given.
func (m PinMap) port(rs bool, n byte, backlight bool) byte {
	var v byte
	if rs {
		v |= m.bit(m.RS)
	}
	for i, b := range m.D {
		if n&(1<<i) != 0 {
			v |= m.bit(b)
		}
	}
	if backlight != m.BLActiveLow {
		v |= m.bit(m.BL)
	}
	return v
}
