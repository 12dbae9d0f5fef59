package display

import "slices"

// Status is what the outputs show. The daemon fills it from its own state.
type Status struct {
	Uplink   Uplink
	Health   Health
	NAT      string // "ok", "failed", "waiting", "cleared", ...
	Nodes    []Node // in order p1, p2, ...; empty when node power is unknown
	Hostname string
	// TempC is the SoC temperature, when known (HasTemp).
	TempC     float64
	HasTemp   bool
	Throttled bool // the firmware reports under-voltage or throttling now
}

// Uplink is the interface to the user's network.
type Uplink struct {
	Interface       string
	Exists, Carrier bool
	IPv4            string   // "192.168.1.194" or "192.168.1.194/24"; "" when none
	IPv6            []string // with or without prefix length
}

// Health is the daemon's verdict.
type Health struct {
	State   string // one of the State constants
	Class   int    // failure class for the blink count: 1 config, 2 NAT, 3 board/bus, 4 uplink
	Reasons []string
}

// Health states.
const (
	StateStarting = "starting"
	StateOK       = "ok"
	StateDegraded = "degraded"
	StateFailed   = "failed"
	StateStopped  = "stopped"
)

// NodeState is a cluster node's lifecycle state.
type NodeState string

// Node states.
const (
	NodeOff         NodeState = "off"
	NodeBooting     NodeState = "booting"
	NodeUp          NodeState = "up"
	NodeUnreachable NodeState = "unreachable"
	NodeUnknown     NodeState = "unknown"
)

// Node is one cluster node.
type Node struct {
	Name  string
	State NodeState
}

// clone copies s deeply: Screen and Light keep the Status they are given
// while the caller may go on changing its slices.
func (s Status) clone() Status {
	s.Uplink.IPv6 = slices.Clone(s.Uplink.IPv6)
	s.Health.Reasons = slices.Clone(s.Health.Reasons)
	s.Nodes = slices.Clone(s.Nodes)
	return s
}
