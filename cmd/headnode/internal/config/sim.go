package config

import (
	"path/filepath"

	"github.com/headnode/headnode/hw/machine/simspec"
)

// HardwareSim describes the emulated machine used with [hardware] backend =
// "sim": by default a ClusterHAT v2.5 with four Pi Zero nodes (expander at
// 0x20 on bus 1), a 16x2 LCD behind a PCF8574 at 0x27 with the standard
// pin map, and a BlinkStick Strip. The power part validates the board keys,
// the display part the LCD and LED keys; the names they accept are
// package simspec's.
type HardwareSim struct {
	Board      string   `toml:"board"`       // clusterhat | clusterctrl | clusterhat+clusterctrl | none
	Revision   string   `toml:"revision"`    // ClusterHAT version, e.g. "2.5" (1.x: GPIO)
	Chip       string   `toml:"chip"`        // ClusterHAT expander: xra1200p | pca9554
	CTRL       []string `toml:"ctrl"`        // ClusterCTRL boards, e.g. ["triple", "stack"]
	LCDSize    string   `toml:"lcd_size"`    // 16x2 | 20x2 | 16x4 | 20x4
	LCDAddress any      `toml:"lcd_address"` // I2C address, e.g. 0x27
	LCDPinMap  string   `toml:"lcd_pinmap"`  // backpack pin map preset
	LED        string   `toml:"led"`         // BlinkStick kind, e.g. "strip"
	WPLink     bool     `toml:"wp_link"`     // ClusterHAT write-protect solder link bridged
	Pi         string   `toml:"pi"`          // the head node: "4" (Pi 4 Model B) or "5"
}

// defaultHardwareSim is the machine `headnode sim` emulates without flags,
// as the README's "Try it" describes it.
func defaultHardwareSim() HardwareSim {
	return HardwareSim{
		Board:      "clusterhat",
		Revision:   "2.5",
		Chip:       "xra1200p",
		CTRL:       []string{"triple"},
		LCDSize:    "16x2",
		LCDAddress: int64(0x27),
		LCDPinMap:  "standard",
		LED:        "strip",
		Pi:         "4",
	}
}

// SimSpec is the emulated machine of [hardware.sim], placed where the rest
// of the configuration looks for the hardware: the ClusterHAT expander on
// [power]'s bus and address, the LCD on [lcd]'s bus with its character
// ROM. Its state is kept in state_dir/sim.
func (c *Config) SimSpec() simspec.Spec {
	s := c.Hardware.Sim
	cols, rows := s.LCDDimensions()
	return simspec.Spec{
		Board:      s.Board,
		HATVersion: s.Revision,
		HATChip:    s.Chip,
		HATBus:     c.Power.I2CBus,
		HATAddress: uint16(c.Power.HATAddress),
		CTRL:       s.CTRL,
		WPLink:     s.WPLink,
		Pi:         s.Pi,
		LCD: simspec.LCD{
			Bus: c.LCD.I2CBus, Address: s.LCDI2CAddress(), Backpack: s.LCDPinMap,
			Cols: cols, Rows: rows, Charset: c.LCD.Charset,
		},
		LED: s.LED,
		Dir: filepath.Join(c.Daemon.StateDir, "sim"),
	}
}
