// Package simspec describes an emulated machine: which power boards it
// carries, which LCD backpack and which BlinkStick, and where each sits. It
// is the vocabulary of the configuration's [hardware.sim] table, as plain
// names and values, so that the configuration can be checked without the
// emulators; package machine builds the machine a Spec describes and its
// tests keep these names and the emulators' in step.
package simspec

import "strings"

// Spec is one emulated machine.
type Spec struct {
	// Board is one of Boards: which power boards are fitted.
	Board string
	// HATVersion is the ClusterHAT's version ("2.5"; 1.x boards switch
	// power through GPIO lines, later ones through an I2C expander).
	HATVersion string
	// HATChip is the expander of a v2.x/v3.x ClusterHAT, one of HATChips,
	// answering on HATBus at HATAddress.
	HATChip    string
	HATBus     int
	HATAddress uint16
	// CTRL are the ClusterCTRL boards, each one of CTRLs.
	CTRL []string
	// WPLink: the ClusterHAT's write-protect solder link is bridged.
	WPLink bool
	// Pi is the head node's model: "4" (a Pi 4 Model B) or "5".
	Pi string
	// LCD is the character display.
	LCD LCD
	// LED is the BlinkStick model, one of LEDs.
	LED string
	// Dir keeps the machine between runs: the chips' saved state, and the
	// device tree, /dev and sysfs trees the machine shows.
	Dir string
}

// LCD is an HD44780 module behind an I2C backpack.
type LCD struct {
	Bus     int
	Address uint16
	// Backpack is the name of one of Backpacks.
	Backpack   string
	Cols, Rows int
	// Charset is the controller's character ROM, "A00" or "A02".
	Charset string
}

// HasHAT reports whether the machine carries a ClusterHAT.
func (s Spec) HasHAT() bool { return strings.Contains(s.Board, "clusterhat") }

// HasCTRL reports whether the machine carries ClusterCTRL boards.
func (s Spec) HasCTRL() bool { return strings.Contains(s.Board, "clusterctrl") }

// Boards are the fittings an emulated machine can have.
var Boards = []string{"clusterhat", "clusterctrl", "clusterhat+clusterctrl", "none"}

// HATChips are the ClusterHAT v2.x/v3.x expanders: the XRA1200P, and the
// PCA9554 fitted to some later boards.
var HATChips = []string{"xra1200p", "pca9554"}

// CTRLs are the ClusterCTRL models.
var CTRLs = []string{"single", "phat", "triple", "a+6", "stack"}

// Expanders of LCD backpacks.
const (
	PCF8574  = "PCF8574"
	MCP23008 = "MCP23008"
)

// Backpack is an LCD backpack: its port expander (PCF8574 or MCP23008)
// and the name of its wiring.
type Backpack struct {
	Name     string
	Expander string
}

// Backpacks are the LCD backpacks that can be emulated.
var Backpacks = []Backpack{
	{"standard", PCF8574},
	{"standard-bl-low", PCF8574},
	{"mjkdz", PCF8574},
	{"lcdxio", PCF8574},
	{"adafruit", MCP23008},
}

// BackpackByName looks a backpack up by name.
func BackpackByName(name string) (Backpack, bool) {
	for _, b := range Backpacks {
		if b.Name == name {
			return b, true
		}
	}
	return Backpack{}, false
}

// LEDs are the BlinkStick models that can be emulated.
var LEDs = []string{"original", "pro", "square", "strip", "nano", "flex"}
