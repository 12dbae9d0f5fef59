package api

// Display reports the LCD and the status LED.
type Display struct {
	LCD LCD `json:"lcd"`
	LED LED `json:"led"`
}

// Device states of the LCD and the LED.
const (
	DeviceDisabled = "disabled" // turned off in the configuration
	DeviceStarting = "starting" // not looked for yet
	DeviceOK       = "ok"
	DeviceMissing  = "missing" // not found, unplugged or not answering
)

// LCD is the character display.
type LCD struct {
	State string `json:"state"`
	Error string `json:"error,omitempty"`
	Bus   int    `json:"bus"`
	// Address is where the backpack answers, e.g. "0x27".
	Address string `json:"address,omitempty"`
	Chip    string `json:"chip,omitempty"`
	PinMap  string `json:"pinmap,omitempty"`
	// PinMapDetected is true when the pin map was read off the board
	// rather than configured.
	PinMapDetected bool   `json:"pinmap_detected,omitempty"`
	Size           string `json:"size,omitempty"`
	Charset        string `json:"charset,omitempty"`
	// Rows is the text on the glass: read back from the emulated
	// controller when simulating, the last text written otherwise.
	Rows     []string `json:"rows,omitempty"`
	Emulated bool     `json:"emulated,omitempty"`
}

// LED is the USB status light.
type LED struct {
	State  string `json:"state"`
	Error  string `json:"error,omitempty"`
	Kind   string `json:"kind,omitempty"` // e.g. "BlinkStick Strip"
	Serial string `json:"serial,omitempty"`
	LEDs   int    `json:"leds,omitempty"`
	// Mode is "auto" (follows health), "identify" or "stopped".
	Mode string `json:"mode,omitempty"`
	// Pattern is what LED 0 plays: "starting", "ok", "degraded",
	// "failed-N", "identify" or "stopped".
	Pattern string `json:"pattern,omitempty"`
	// Colors are what the LEDs show ("#rrggbb", LED 0 first), sampled
	// when anything else about the light changes (at most four times a
	// second) and otherwise at most every 5 s: each sample is a new
	// status to publish, which costs in proportion to the cluster.
	Colors   []string `json:"colors,omitempty"`
	Emulated bool     `json:"emulated,omitempty"`
}

// LEDRequest is the body of POST /v1/led.
type LEDRequest struct {
	Mode string `json:"mode"` // identify | stopped | auto
}
