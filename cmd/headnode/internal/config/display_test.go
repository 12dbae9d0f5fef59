package config

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestDisplayKeyErrors(t *testing.T) {
	for _, tc := range []struct {
		doc  string
		want []string
	}{
		{"[lcd]\npinmap = \"sainsmart\"\ni2c_bus = 300\nrefresh = \"1s\"\n", []string{
			`c.toml:2: lcd.pinmap: "sainsmart" is not known; use "standard", "standard-bl-low", "mjkdz", "lcdxio", "adafruit", or give the bits like "rs=0 rw=1 e=2 d4=4 d5=5 d6=6 d7=7 bl=3"`,
			`c.toml:3: lcd.i2c_bus: 300 is out of range; use a bus number 0-255 (1 is /dev/i2c-1)`,
			`c.toml:4: lcd.refresh: 1s is out of range; use 5s to 1h0m0s`,
		}},
		{"[lcd]\npinmap = \"rs=0 rw=1 e=2 d4=4 d5=5 d6=6 d7=7\"\n", []string{
			`c.toml:2: lcd.pinmap: "rs=0 rw=1 e=2 d4=4 d5=5 d6=6 d7=7": bl is missing; give every line (rw and bl may be "none")`,
		}},
		{"[hardware.sim]\nlcd_size = \"8x1\"\nlcd_address = \"auto\"\nlcd_pinmap = \"blue\"\nled = \"square-ish\"\n", []string{
			`c.toml:2: hardware.sim.lcd_size: "8x1" is not valid; use "16x2", "20x2", "16x4" or "20x4"`,
			`c.toml:3: hardware.sim.lcd_address: the emulated LCD needs an address such as 0x27, not "auto"`,
			`c.toml:4: hardware.sim.lcd_pinmap: "blue" is not an emulated backpack; use "standard", "standard-bl-low", "mjkdz", "lcdxio", "adafruit"`,
			`c.toml:5: hardware.sim.led: "square-ish" is not an emulated BlinkStick; use "original", "pro", "square", "strip", "nano", "flex"`,
		}},
		{"[hardware.sim]\nlcd_address = 0x3f\nlcd_pinmap = \"adafruit\"\n", []string{
			`c.toml:2: hardware.sim.lcd_address: 0x3f is not an MCP23008 address; the adafruit backpack answers at 0x20-0x27`,
		}},
	} {
		got := problems(t, tc.doc)
		if diff := cmp.Diff(tc.want, got, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
			t.Errorf("%q (-want +got):\n%s", tc.doc, diff)
		}
	}
	c, err := Parse([]byte("[lcd]\nsize = \"20x4\"\npinmap = \"mjkdz\"\n[hardware.sim]\nlcd_size = \"16x4\"\nlcd_address = \"0x3f\"\n"), "c.toml")
	if err != nil {
		t.Fatal(err)
	}
	if cols, rows := c.LCD.Dimensions(); cols != 20 || rows != 4 {
		t.Errorf("lcd size %dx%d", cols, rows)
	}
	if cols, rows := c.Hardware.Sim.LCDDimensions(); cols != 16 || rows != 4 || c.Hardware.Sim.LCDI2CAddress() != 0x3f {
		t.Errorf("sim lcd %dx%d at %#x", cols, rows, c.Hardware.Sim.LCDI2CAddress())
	}
}
