package config

// HardwareSim describes the emulated machine used with [hardware] backend =
// "sim" (design.md): by default a ClusterHAT v2.5 with four Pi Zero nodes
// (expander at 0x20 on bus 1), a 16x2 LCD behind a PCF8574 at 0x27 with the
// standard pin map, and a BlinkStick Strip. The power part validates and
// uses the board keys, the display part the LCD and LED keys.
type HardwareSim struct {
	Board      string   `toml:"board"`       // clusterhat | clusterctrl | clusterhat+clusterctrl | none
	Revision   string   `toml:"revision"`    // ClusterHAT version, e.g. "2.5" (1.x: GPIO)
	Chip       string   `toml:"chip"`        // ClusterHAT expander: xra1200p | pca9554
	CTRL       []string `toml:"ctrl"`        // ClusterCTRL boards, e.g. ["triple", "stack"]
	LCDSize    string   `toml:"lcd_size"`    // 16x2 | 20x2 | 16x4 | 20x4
	LCDAddress any      `toml:"lcd_address"` // I2C address, e.g. 0x27
	LCDPinMap  string   `toml:"lcd_pinmap"`  // backpack pin map preset
	LED        string   `toml:"led"`         // BlinkStick kind, e.g. "strip"
}

// defaultHardwareSim is the emulated machine of design.md.
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
	}
}
