package api

import "time"

// DHCP reports the cluster's DHCP server and its leases.
type DHCP struct {
	// State is "off", "waiting", "probing", "serving", "other-server" or
	// "failed".
	State string `json:"state"`
	// Reason says, in words, why the server is not serving.
	Reason    string `json:"reason,omitempty"`
	Interface string `json:"interface,omitempty"`
	// Pool is the range leased to machines without a reservation.
	Pool   string   `json:"pool,omitempty"`
	Router string   `json:"router,omitempty"`
	DNS    []string `json:"dns,omitempty"`
	// LeaseSeconds is the lease time handed out.
	LeaseSeconds int64 `json:"lease_seconds,omitempty"`
	// OtherServer is another DHCP server seen on the cluster network:
	// the one that answered the start-up probe, or one a node chose.
	OtherServer string `json:"other_server,omitempty"`
	// Leases are the addresses given out (or offered) now, by address.
	Leases  []Lease     `json:"leases,omitempty"`
	Packets DHCPPackets `json:"packets"`
	// SaveError is set while leases cannot be written to the state
	// directory (they would be lost on restart).
	SaveError string `json:"save_error,omitempty"`
	// LeaseWrites counts writes to the lease files since the server
	// started (journal batches and snapshots, each with an fsync).
	LeaseWrites int64 `json:"lease_writes"`
	// PingChecks counts ping checks of new pool addresses; PingInUse
	// those answered by a machine without a lease (not offered).
	PingChecks int64 `json:"ping_checks"`
	PingInUse  int64 `json:"ping_in_use"`
}

// DHCP states.
const (
	DHCPOff         = "off"
	DHCPWaiting     = "waiting"
	DHCPProbing     = "probing"
	DHCPServing     = "serving"
	DHCPOtherServer = "other-server"
	DHCPFailed      = "failed"
)

// Lease is one address given to one machine.
type Lease struct {
	Address string `json:"address"`
	MAC     string `json:"mac"`
	// Hostname is the name handed out (pN for nodes), else the one the
	// machine sent.
	Hostname string `json:"hostname,omitempty"`
	// Node is pN when the lease is a cluster node's.
	Node     string    `json:"node,omitempty"`
	Expires  time.Time `json:"expires"`
	Reserved bool      `json:"reserved,omitempty"`
	Offered  bool      `json:"offered,omitempty"`
}

// DHCPPackets counts DHCP packets since the server started.
type DHCPPackets struct {
	Received int64 `json:"received"`
	Offers   int64 `json:"offers"`
	Acks     int64 `json:"acks"`
	Naks     int64 `json:"naks"`
	// Dropped counts packets not answered, by reason: "malformed",
	// "not-request", "not-ethernet", "relayed", "bad-message-type",
	// "pool-exhausted", "for-another-server", "no-address",
	// "unknown-lease", "rate-limited", "send-failed".
	Dropped map[string]int64 `json:"dropped,omitempty"`
}

// Bridge reports the ClusterHAT bridge, when enabled.
type Bridge struct {
	Name   string `json:"name"`
	Exists bool   `json:"exists"`
	// Ports are the interfaces in the bridge, with the node each one is
	// (ethpiN and ethupiN are node pN).
	Ports []BridgePort `json:"ports,omitempty"`
	Error string       `json:"error,omitempty"`
}

// BridgePort is one interface in the bridge.
type BridgePort struct {
	Interface string `json:"interface"`
	Node      string `json:"node,omitempty"`
	Up        bool   `json:"up"`
	Carrier   bool   `json:"carrier"`
}
