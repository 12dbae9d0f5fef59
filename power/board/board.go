// Package board is the contract between node power drivers and the rest of
// headnode: what every board kind (ClusterHAT v1 over GPIO, v2/v3 over an
// I2C expander, ClusterCTRL over USB, none) can be asked, and the errors
// they share. Nodes are numbered 1..Nodes() on each board.
package board

import (
	"errors"
	"fmt"
	"syscall"
)

// Board is one node power controller.
type Board interface {
	// Info describes the board.
	Info() Info
	// Nodes is how many nodes the board powers.
	Nodes() int
	// Init initialises a board that came up reset, exactly as the
	// official tool does on its first access, and reports fresh = true:
	// the controller itself (not just the daemon) has restarted. On a
	// board that is already initialised it writes nothing and reports
	// fresh = false, so a daemon restart never changes a node's power.
	Init() (fresh bool, err error)
	// Read reads the board's actual state back from pin levels or the
	// board's own status, never from what was last requested.
	Read() (State, error)
	// SetPower switches node n (1..Nodes()).
	SetPower(n int, on bool) error
	SetAlert(on bool) error
	SetHub(on bool) error
	ResetHub() error
	// SetLEDs switches the board's own node LEDs; it never changes a
	// node's power.
	SetLEDs(on bool) error
}

// Info describes a board for users.
type Info struct {
	Kind     string `json:"kind"`               // "clusterhat", "clusterctrl"
	Model    string `json:"model"`              // "ClusterHAT v2.5", "ClusterCTRL Triple"
	Revision string `json:"revision,omitempty"` // "2.5", "Triple"
	Chip     string `json:"chip,omitempty"`     // "XRA1200P", "PCA9554", "GPIO"
	Bus      int    `json:"bus"`                // I2C bus; -1 for GPIO
	Address  uint16 `json:"address,omitempty"`  // I2C address
	Order    int    `json:"order,omitempty"`    // ClusterCTRL order
	Firmware string `json:"firmware,omitempty"` // ClusterCTRL firmware version
}

// State is a board's state as read back.
type State struct {
	// Reset is true when the board came up reset since Init (its
	// controller rebooted); Init must run again.
	Reset   bool
	Powered []bool // per node, index 0 = node 1
	// Flags the board can read back; nil when it cannot.
	Alert, Hub, LEDs *bool
}

// ErrUnsupported is wrapped by errors for things a board cannot do; the
// request is refused and nothing changes.
var ErrUnsupported = errors.ErrUnsupported

// Unsupported returns an error wrapping ErrUnsupported with msg.
func Unsupported(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrUnsupported)
}

// IsMissing reports whether err means the device did not answer (an I2C
// NACK: absent, unplugged or unpowered), as opposed to a broken bus.
func IsMissing(err error) bool {
	return errors.Is(err, syscall.EREMOTEIO) || errors.Is(err, syscall.ENXIO)
}

// Flag returns a pointer to b, for State.
func Flag(b bool) *bool { return &b }
