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
	// FirmwareMajor and FirmwareMinor are Firmware as GET_DATA gives it.
	FirmwareMajor int `json:"firmware_major,omitempty"`
	FirmwareMinor int `json:"firmware_minor,omitempty"`
	// ClusterHAT: its version, its EEPROM's identity (empty when the
	// version was forced), and its write-protect solder link: 1 bridged,
	// 0 open, -1 unknown (a PCA9554 cannot test it), nil before Init.
	Major     int    `json:"major,omitempty"`
	Minor     int    `json:"minor,omitempty"`
	UUID      string `json:"uuid,omitempty"`
	Vendor    string `json:"vendor,omitempty"`
	ProductID string `json:"product_id,omitempty"`
	Forced    string `json:"forced,omitempty"`
	WPLink    *int   `json:"wp_link,omitempty"`
}

// State is a board's state as read back.
type State struct {
	// Reset is true when the board came up reset since Init (its
	// controller rebooted); Init must run again.
	Reset   bool
	Powered []bool // per node, index 0 = node 1
	// Flags the board can read back; nil when it cannot.
	Alert, Hub, LEDs *bool
	// WP is the HAT EEPROM's write-protect line (ClusterHAT v2/v3).
	WP *bool
	// USBBoot is each node's USBBOOT line, on boards that have them
	// (ClusterCTRL Single and Triple); nil elsewhere.
	USBBoot []bool
	// FanStatus is a ClusterCTRL's fan status (GET_DATA 4): bit 0 the
	// fan was asked for, bits 1-7 nodes asking for cooling (Stack).
	FanStatus *byte
	// ADCs are a ClusterCTRL's voltage readings, Temp its temperature
	// sensor's raw reading (nil without one).
	ADCs []ADC
	Temp *uint16
}

// ADC is one ClusterCTRL voltage reading as the firmware gives it.
type ADC struct {
	// Type is 1 (3.3 V reference, input halved) or 2 (3.3 V reference,
	// 10 k + 1.07 k divider); other types are not known.
	Type byte
	Raw  uint16
}

// Optional capabilities: a board that lacks an interface cannot do it.
type (
	// FanSwitch switches the board's fan (ClusterCTRL Triple, A+6,
	// Stack).
	FanSwitch interface{ SetFan(on bool) error }
	// ACTSwitch enables the board's activity LED (ClusterCTRL A+6).
	ACTSwitch interface{ SetACT(on bool) error }
	// USBBootSwitch drives a node's USBBOOT line (ClusterCTRL Single,
	// Triple): the node boots from USB (rpiboot) at its next power-on.
	USBBootSwitch interface{ SetUSBBoot(n int, on bool) error }
	// WriteProtect switches the HAT EEPROM's write protection.
	WriteProtect interface{ SetWP(on bool) error }
	// PathReader tells where node n (0: the board itself) sits on the
	// board's USB hub, as port numbers from the hub down.
	PathReader interface{ Path(n int) ([]byte, error) }
	// Controller is a board with its own controller and EEPROM
	// (ClusterCTRL): its order value, its saved settings, and a restart.
	Controller interface {
		SetOrder(order int) error
		Save(what Saving) error
		Restart() error
	}
	// LEDMemory is told the node LED state last asked for (kept across
	// daemon restarts by the caller) without writing to the board.
	LEDMemory interface{ RememberLEDs(on bool) }
)

// Saving is what Controller.Save writes to the board's EEPROM.
type Saving string

// What can be saved.
const (
	SaveAll      Saving = "all"      // order, LEDs, power-on state, USBBOOT
	SaveOrder    Saving = "order"    // the order value
	SaveUSBBoot  Saving = "usbboot"  // the USBBOOT lines
	SavePOS      Saving = "pos"      // the nodes' power now, as the power-on state
	SaveLEDs     Saving = "leds"     // the LED enables
	SaveDefaults Saving = "defaults" // factory defaults (order 20, nodes off at power-on)
)

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
