package config

import (
	"fmt"
	"strconv"
)

// LCD configures the character display.
type LCD struct {
	Enabled bool `toml:"enabled"`
	// Address is "auto" or an I2C address, written as an integer (0x27) or
	// a string ("0x27").
	Address any    `toml:"address"`
	Size    string `toml:"size"`
	Charset string `toml:"charset"`
}

// LED configures the USB status LED.
type LED struct {
	Enabled    bool    `toml:"enabled"`
	Brightness float64 `toml:"brightness"`
}

func (c *Config) validateDisplay(bad badFunc) {
	if _, err := c.LCD.I2CAddress(); err != nil {
		bad("lcd.address", "%v", err)
	}
	switch c.LCD.Size {
	case "16x2", "20x2", "16x4", "20x4":
	default:
		bad("lcd.size", "%q is not valid; use \"16x2\", \"20x2\", \"16x4\" or \"20x4\"", c.LCD.Size)
	}
	switch c.LCD.Charset {
	case "A00", "A02":
	default:
		bad("lcd.charset", "%q is not valid; use \"A00\" (Japanese ROM, most modules) or \"A02\" (European ROM)", c.LCD.Charset)
	}
	if c.LED.Brightness < 0 || c.LED.Brightness > 1 {
		bad("led.brightness", "%g is out of range; use 0.0 to 1.0", c.LED.Brightness)
	}

}

// I2CAddress returns the configured LCD address, or 0 for "auto".
func (l LCD) I2CAddress() (uint16, error) {
	var v int64
	switch a := l.Address.(type) {
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
