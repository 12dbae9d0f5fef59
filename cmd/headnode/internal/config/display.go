package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/headnode/headnode/display/lcd"
	"github.com/headnode/headnode/hw/machine/simspec"
)

// LCD configures the character display.
type LCD struct {
	Enabled bool `toml:"enabled"`
	// I2CBus is the bus the backpack is on (usually the ClusterHAT's).
	I2CBus int `toml:"i2c_bus"`
	// Address is "auto" or an I2C address, written as an integer (0x27) or
	// a string ("0x27").
	Address any    `toml:"address"`
	Size    string `toml:"size"`
	Charset string `toml:"charset"`
	// PinMap is "auto", a preset name or a custom map.
	PinMap    string `toml:"pinmap"`
	Backlight bool   `toml:"backlight"`
	// Refresh is the period of full re-initialisation and redraw.
	Refresh Duration `toml:"refresh"`
}

// LED configures the USB status LED.
type LED struct {
	Enabled    bool    `toml:"enabled"`
	Brightness float64 `toml:"brightness"`
	// Serial picks one light when several are plugged in; "" takes the
	// first found.
	Serial string `toml:"serial"`
}

func defaultLCD() LCD {
	return LCD{
		Enabled:   true,
		I2CBus:    1,
		Address:   "auto",
		Size:      "16x2",
		Charset:   "A00",
		PinMap:    "auto",
		Backlight: true,
		Refresh:   Duration{Duration: time.Minute},
	}
}

func defaultLED() LED { return LED{Enabled: true, Brightness: 0.3} }

func (c *Config) validateDisplay(bad badFunc) {
	if _, err := c.LCD.I2CAddress(); err != nil {
		bad("lcd.address", "%v", err)
	}
	if c.LCD.I2CBus < 0 || c.LCD.I2CBus > 255 {
		bad("lcd.i2c_bus", "%d is out of range; use a bus number 0-255 (1 is /dev/i2c-1)", c.LCD.I2CBus)
	}
	if _, _, err := parseSize(c.LCD.Size); err != nil {
		bad("lcd.size", "%v", err)
	}
	switch c.LCD.Charset {
	case "A00", "A02":
	default:
		bad("lcd.charset", "%q is not valid; use \"A00\" (Japanese ROM, most modules) or \"A02\" (European ROM)", c.LCD.Charset)
	}
	if c.LCD.PinMap != "auto" {
		if _, err := lcd.ParsePinMap(c.LCD.PinMap); err != nil {
			bad("lcd.pinmap", "%s", strings.TrimPrefix(err.Error(), "pin map "))
		}
	}
	if msg := c.LCD.Refresh.check(5*time.Second, time.Hour); msg != "" {
		bad("lcd.refresh", "%s", msg)
	}
	if c.LED.Brightness < 0 || c.LED.Brightness > 1 {
		bad("led.brightness", "%g is out of range; use 0.0 to 1.0", c.LED.Brightness)
	}

	// The emulated LCD and LED of [hardware.sim].
	sim := c.Hardware.Sim
	if _, _, err := parseSize(sim.LCDSize); err != nil {
		bad("hardware.sim.lcd_size", "%v", err)
	}
	if a, err := parseI2CAddress(sim.LCDAddress); err != nil {
		bad("hardware.sim.lcd_address", "%v", err)
	} else if a == 0 {
		bad("hardware.sim.lcd_address", "the emulated LCD needs an address such as 0x27, not \"auto\"")
	}
	if b, ok := simspec.BackpackByName(sim.LCDPinMap); !ok {
		var names []string
		for _, b := range simspec.Backpacks {
			names = append(names, strconv.Quote(b.Name))
		}
		bad("hardware.sim.lcd_pinmap", "%q is not an emulated backpack; use %s", sim.LCDPinMap, strings.Join(names, ", "))
	} else if a, _ := parseI2CAddress(sim.LCDAddress); b.Expander == simspec.MCP23008 && a != 0 && (a < 0x20 || a > 0x27) {
		bad("hardware.sim.lcd_address", "0x%02x is not an MCP23008 address; the %s backpack answers at 0x20-0x27", a, b.Name)
	}
	if !slices.Contains(simspec.LEDs, sim.LED) {
		var names []string
		for _, k := range simspec.LEDs {
			names = append(names, strconv.Quote(k))
		}
		bad("hardware.sim.led", "%q is not an emulated BlinkStick; use %s", sim.LED, strings.Join(names, ", "))
	}
}

// parseSize reads "16x2"-style panel sizes.
func parseSize(s string) (cols, rows int, err error) {
	switch s {
	case "16x2", "20x2", "16x4", "20x4":
		c, r, _ := strings.Cut(s, "x")
		cols, _ = strconv.Atoi(c)
		rows, _ = strconv.Atoi(r)
		return cols, rows, nil
	}
	return 0, 0, fmt.Errorf("%q is not valid; use \"16x2\", \"20x2\", \"16x4\" or \"20x4\"", s)
}

// Dimensions returns the configured panel's columns and rows.
func (l LCD) Dimensions() (cols, rows int) {
	cols, rows, _ = parseSize(l.Size)
	return cols, rows
}

// LCDDimensions returns the emulated panel's columns and rows.
func (s HardwareSim) LCDDimensions() (cols, rows int) {
	cols, rows, _ = parseSize(s.LCDSize)
	return cols, rows
}

// LCDI2CAddress returns the emulated backpack's address.
func (s HardwareSim) LCDI2CAddress() uint16 {
	a, _ := parseI2CAddress(s.LCDAddress)
	return a
}

// I2CAddress returns the configured LCD address, or 0 for "auto".
func (l LCD) I2CAddress() (uint16, error) { return parseI2CAddress(l.Address) }

func parseI2CAddress(addr any) (uint16, error) {
	var v int64
	switch a := addr.(type) {
	case nil:
		return 0, nil
	case int64:
		v = a
	case string:
		if a == "auto" {
			return 0, nil
		}
		n, err := strconv.ParseInt(a, 0, 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not valid; use \"auto\" or an I2C address such as 0x27", a)
		}
		v = n
	default:
		return 0, fmt.Errorf("%v is not valid; use \"auto\" or an I2C address such as 0x27", a)
	}
	if v < 0x03 || v > 0x77 {
		return 0, fmt.Errorf("0x%x is out of range; I2C addresses are 0x03-0x77 (typical LCDs: 0x27, 0x3f)", v)
	}
	return uint16(v), nil
}
