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
	// State is "ok", "missing" (does not answer) or "failed" (bus or
	// board broken).
	State string `json:"state"`
	Error string `json:"error,omitempty"`
	// Read back from the board; absent when it cannot tell.
	Alert *bool `json:"alert,omitempty"`
	Hub   *bool `json:"hub,omitempty"`
	LEDs  *bool `json:"leds,omitempty"`
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
}

// Node states.
const (
	NodeOff         = "off"
	NodeBooting     = "booting"
	NodeUp          = "up"
	NodeUnreachable = "unreachable"
	NodeUnknown     = "unknown"
)

// PowerRequest is the body of POST /v1/power/{on,off,alert,hub,leds}.
type PowerRequest struct {
	// Nodes for on/off ("p1", "p3"); empty means all.
	Nodes []string `json:"nodes,omitempty"`
	// State for alert/leds ("on", "off") and hub ("on", "off", "reset").
	State string `json:"state,omitempty"`
}
