package api

import "time"

// Power reports the node power controller and the nodes.
type Power struct {
	// Board summarises the boards: "ClusterHAT v2.5", "none", ...
	Board  string       `json:"board"`
	Boards []PowerBoard `json:"boards,omitempty"`
	// BootPolicy is [power] boot; BootApplied is when it was last applied
	// (after the controller itself booted), BootNote says to what.
	BootPolicy  string    `json:"boot_policy"`
	BootApplied time.Time `json:"boot_applied,omitzero"`
	BootNote    string    `json:"boot_note,omitempty"`
	Stagger     string    `json:"stagger"`
	Probe       string    `json:"probe"`
	Nodes       []Node    `json:"nodes"`
	// Queued are nodes waiting for their staggered power-on.
	Queued   []string `json:"queued,omitempty"`
	Errors   []string `json:"errors,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
	// LEDs is the boards' node LED state last asked for ("on", "off").
	LEDs string `json:"leds,omitempty"`
	// HATSize is [power] hat_size: the ClusterHAT nodes counted.
	HATSize int `json:"hat_size,omitempty"`
	// Head is the head node itself: its model and power supply.
	Head Head `json:"head"`
}

// Head is what the head node says about itself.
type Head struct {
	// Revision is the board revision code ("0x00c03114"), "" unknown.
	Revision string `json:"revision,omitempty"`
	Pi5      bool   `json:"pi5"`
	// Throttled is the firmware's throttling flags as `vcgencmd
	// get_throttled` prints them ("0x50005"); "" when they cannot be
	// read. ThrottledSource says where they came from: "firmware" (the
	// firmware driver's get_throttled), "hwmon" (the rpi_volt hwmon's
	// under-voltage alarm, which gives only UnderVoltageOccurred) or "".
	Throttled       string `json:"throttled,omitempty"`
	ThrottledSource string `json:"throttled_source,omitempty"`
	// The flags, now and "has occurred" (within the last few seconds:
	// the kernel's hwmon driver clears them every 2 s).
	UnderVoltage         bool `json:"under_voltage"`
	UnderVoltageOccurred bool `json:"under_voltage_occurred"`
	FrequencyCapped      bool `json:"frequency_capped"`
	Throttling           bool `json:"throttling"`
	SoftTempLimit        bool `json:"soft_temp_limit"`
	// Fan is the head node's fan ([power] fan_gpio), read back; absent
	// without one.
	Fan      *bool  `json:"fan,omitempty"`
	FanGPIO  int    `json:"fan_gpio,omitempty"`
	FanError string `json:"fan_error,omitempty"`
}

// PowerBoard is one power board.
type PowerBoard struct {
	Model    string `json:"model"` // "ClusterHAT v2.5", "ClusterCTRL Triple"
	Kind     string `json:"kind"`  // "clusterhat", "clusterctrl"
	Chip     string `json:"chip,omitempty"`
	Bus      int    `json:"bus"` // -1: GPIO
	Address  string `json:"address,omitempty"`
	Order    int    `json:"order,omitempty"`
	Firmware string `json:"firmware,omitempty"`
	Nodes    string `json:"nodes"` // "p1-p4"
	// First is the board's first node's number, Count how many it has.
	First int `json:"first"`
	Count int `json:"count"`
	// State is "ok", "missing" (does not answer) or "failed" (bus or
	// board broken).
	State string `json:"state"`
	Error string `json:"error,omitempty"`
	// Read back from the board; absent when it cannot tell.
	Alert *bool `json:"alert,omitempty"`
	Hub   *bool `json:"hub,omitempty"`
	LEDs  *bool `json:"leds,omitempty"`

	// ClusterHAT: its version ("2.5"), what its EEPROM says (absent
	// when the version is forced: Forced is then [power] hat_version),
	// its EEPROM's write protection and the WP solder link (1 bridged, 0
	// open, -1 unknown: a PCA9554 cannot test it).
	Version   string `json:"version,omitempty"`
	Major     int    `json:"major,omitempty"`
	Minor     int    `json:"minor,omitempty"`
	UUID      string `json:"uuid,omitempty"`
	Vendor    string `json:"vendor,omitempty"`
	ProductID string `json:"product_id,omitempty"`
	Forced    string `json:"forced,omitempty"`
	WP        *bool  `json:"wp,omitempty"`
	WPLink    *int   `json:"wp_link,omitempty"`

	// ClusterCTRL: its firmware as it reports it, its fan (asked for,
	// and the nodes asking for cooling, Stack), voltages and
	// temperature.
	FirmwareMajor int `json:"firmware_major,omitempty"`
	FirmwareMinor int `json:"firmware_minor,omitempty"`
	// FanStatus is the firmware's fan status byte: bit 0 the fan was
	// asked for, bits 1-7 P1-P7 asking for cooling.
	FanStatus   *int      `json:"fan_status,omitempty"`
	Fan         *bool     `json:"fan,omitempty"`
	Cooling     []string  `json:"cooling_requested,omitempty"`
	Voltages    []Voltage `json:"voltages,omitempty"`
	Temperature *Reading  `json:"temperature,omitempty"`
}

// Voltage is one ClusterCTRL ADC reading.
type Voltage struct {
	// ADC is its number (1, 2); Type 1 is a 5 V rail halved, 2 the input
	// through a 10 k + 1.07 k divider.
	ADC  int `json:"adc"`
	Type int `json:"type"`
	// Raw is the 10-bit reading, Volts the official tool's conversion.
	Raw   int     `json:"raw"`
	Volts float64 `json:"volts"`
}

// Reading is a raw sensor reading and its value (°C).
type Reading struct {
	Raw     int     `json:"raw"`
	Celsius float64 `json:"celsius"`
}

// Node is one cluster node.
type Node struct {
	Name    string `json:"name"`
	Address string `json:"address,omitempty"`
	// State is "off", "booting", "up", "unreachable" or "unknown" (no
	// power control for it).
	State string    `json:"state"`
	Since time.Time `json:"since,omitzero"`
	// Powered is read back from the board; absent when unknown.
	Powered   *bool `json:"powered,omitempty"`
	Reachable bool  `json:"reachable"`
	// Requested is the last power request: "on", "off" or "".
	Requested string `json:"requested,omitempty"`
	// Gadget is the node's USB gadget link (ethpiN), when it has one.
	Gadget string `json:"gadget,omitempty"`
	// USBBoot is the node's USBBOOT line (ClusterCTRL Single, Triple):
	// it boots from USB (rpiboot) at its next power-on; absent where
	// there is none.
	USBBoot *bool `json:"usbboot,omitempty"`
}

// Node states.
const (
	NodeOff         = "off"
	NodeBooting     = "booting"
	NodeUp          = "up"
	NodeUnreachable = "unreachable"
	NodeUnknown     = "unknown"
)

// PowerRequest is the body of POST /v1/power/OP, OP one of on, off,
// alert, hub, leds, wp, fan, act, usbboot, paths, setorder, save, restart
// and init.
type PowerRequest struct {
	// Nodes for on, off, usbboot and paths ("p1", "p3"; empty means all,
	// but for usbboot), and alert (their boards only).
	Nodes []string `json:"nodes,omitempty"`
	// State is "on" or "off" (alert, leds, wp, fan, act, usbboot) or
	// "on", "off", "reset" (hub).
	State string `json:"state,omitempty"`
	// Target is for fan ("" every fan, "c" the head node's, or a
	// ClusterCTRL order) and act ("" every board, or an order).
	Target string `json:"target,omitempty"`
	// Order is the ClusterCTRL board for save and restart, and the old
	// order for setorder; NewOrder the new one.
	Order    int `json:"order,omitempty"`
	NewOrder int `json:"new_order,omitempty"`
	// Save is what save writes to the EEPROM: all (the default), order,
	// usbboot, pos, leds or defaults.
	Save string `json:"save,omitempty"`
}

// PowerPaths is the answer to POST /v1/power/paths: node name -> USB
// path ("1-1.3.4"; "" for a board whose nodes have none, the Stack).
type PowerPaths struct {
	Paths map[string]string `json:"paths"`
}
