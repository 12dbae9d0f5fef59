package clusterhat

import (
	"errors"
	"fmt"
	"time"

	"periph.io/x/conn/v3/i2c"

	"github.com/headnode/headnode/power/board"
)

// Expander registers used (XRA1200P names; PCA9554 has 0x00-0x03).
const (
	regInput  = 0x00
	regOutput = 0x01
	regConfig = 0x03
	regPullUp = 0x04
)

// Bits of the expander port.
const (
	bitLED   = 4
	bitHub   = 5
	bitAlert = 6
	bitWP    = 7
)

// Opts configures an expander-driven ClusterHAT.
type Opts struct {
	// Address is the expander's I2C address, 0x20-0x23.
	Address uint16
	// Major and Minor are the HAT version from its EEPROM (2.5 = 2, 5).
	Major, Minor int
	// HubResetOff is how long `hub reset` keeps the hub off.
	HubResetOff time.Duration
}

// DefaultOpts is a ClusterHAT v2.5 at 0x20.
var DefaultOpts = Opts{Address: 0x20, Major: 2, Minor: 5, HubResetOff: time.Second}

// Dev is a ClusterHAT v2.x/v3.x.
type Dev struct {
	bus    i2c.Bus
	busNum int
	opts   Opts
	chip   string
	// WPLink is the EEPROM write-protect solder link: 1 bridged, 0 open,
	// -1 unknown (PCA9554 has no programmable pull-up to test it).
	WPLink int
}

// NewI2C returns the ClusterHAT whose expander is at opts.Address on bus
// (number busNum, for messages). It reads the expander to tell the
// XRA1200P from the PCA9554, as the official tool does: the PCA9554 does
// not acknowledge register 0x04. Nothing is written.
func NewI2C(bus i2c.Bus, busNum int, opts Opts) (*Dev, error) {
	if opts.Address < 0x20 || opts.Address > 0x23 {
		return nil, fmt.Errorf("ClusterHAT expander address 0x%02x is out of range; use 0x20-0x23", opts.Address)
	}
	if opts.Major < 2 || opts.Major > 3 {
		return nil, fmt.Errorf("ClusterHAT v%d.%d has no I2C expander", opts.Major, opts.Minor)
	}
	d := &Dev{bus: bus, busNum: busNum, opts: opts}
	if _, err := d.read(regConfig); err != nil {
		return nil, fmt.Errorf("no ClusterHAT expander answers at 0x%02x on I2C bus %d: %w", opts.Address, busNum, err)
	}
	if _, err := d.read(regPullUp); err != nil {
		d.chip = "PCA9554"
	} else {
		d.chip = "XRA1200P"
	}
	return d, nil
}

// tries is how often a transaction is attempted: a lone NACK or bus
// glitch (the images run bus 1 as bit-banged i2c-gpio) must not fail a
// request. Every access is a whole register read or write, so repeating
// one is harmless.
const tries = 5

func (d *Dev) tx(w, r []byte) error {
	var err error
	for range tries {
		if err = d.bus.Tx(d.opts.Address, w, r); err == nil {
			return nil
		}
	}
	return err
}

func (d *Dev) read(reg byte) (byte, error) {
	var r [1]byte
	if err := d.tx([]byte{reg}, r[:]); err != nil {
		return 0, err
	}
	return r[0], nil
}

func (d *Dev) write(reg, v byte) error {
	return d.tx([]byte{reg, v}, nil)
}

// setBit is the official tool's on()/off(): read the output latch, change
// one bit, write it back.
func (d *Dev) setBit(bit int, on bool) error {
	v, err := d.read(regOutput)
	if err != nil {
		return err
	}
	if on {
		v |= 1 << bit
	} else {
		v &^= 1 << bit
	}
	return d.write(regOutput, v)
}

// hubActiveHigh: only v2.0 switches the hub on with a 1; from v2.1 on (and
// v3.x) the bit holds the hub in reset. The official tool tests only the
// minor version in `hub on/off`, which would be wrong on a v3.0; this uses
// the rule its init uses (v2.0 only).
func (d *Dev) hubActiveHigh() bool { return d.opts.Major == 2 && d.opts.Minor == 0 }

func (d *Dev) hasLEDBit() bool { return d.opts.Major == 2 }

// Info implements board.Board.
func (d *Dev) Info() board.Info {
	rev := fmt.Sprintf("%d.%d", d.opts.Major, d.opts.Minor)
	return board.Info{Kind: "clusterhat", Model: "ClusterHAT v" + rev, Revision: rev, Chip: d.chip, Bus: d.busNum, Address: d.opts.Address}
}

// Nodes implements board.Board.
func (d *Dev) Nodes() int { return 4 }

// Init implements board.Board. The expander comes up with every pin an
// input (configuration 0xFF); that is how a first access after the HAT
// powered up is recognised. Then, in the official tool's order: detect the
// write-protect link (XRA1200P) and set write-protect, set P1-P4 from the
// power-on-state jumper, ALERT off, LEDs on (v2), hub on, and only then
// make every pin an output, so the latch is ready before the pins drive.
func (d *Dev) Init() (bool, error) {
	cfg, err := d.read(regConfig)
	if err != nil {
		return false, err
	}
	in, err := d.read(regInput)
	if err != nil {
		return false, err
	}
	if cfg != 0xFF {
		d.WPLink = -1
		if d.chip == "XRA1200P" {
			pu, err := d.read(regPullUp)
			if err != nil {
				return false, err
			}
			d.WPLink = int(pu >> bitWP & 1)
		}
		return false, nil
	}
	steps := []func() error{
		d.initWriteProtect,
		// Power-on state: all of P1-P4 reading high means the POS link is
		// cut ("auto power on"); the default link holds them low (off).
		func() error { return d.setNodes(in&0x0F == 0x0F) },
		func() error { return d.setBit(bitAlert, false) },
		func() error {
			if !d.hasLEDBit() {
				return nil
			}
			return d.setBit(bitLED, true)
		},
		func() error { return d.setBit(bitHub, d.hubActiveHigh()) },
		func() error { return d.write(regConfig, 0x00) },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return false, fmt.Errorf("initialising the ClusterHAT: %w", err)
		}
	}
	return true, nil
}

func (d *Dev) initWriteProtect() error {
	d.WPLink = -1
	if d.chip == "XRA1200P" {
		// Without its pull-up, the WP pin reads high only through the
		// solder link.
		if err := d.write(regPullUp, 0x7F); err != nil {
			return err
		}
		in, err := d.read(regInput)
		if err != nil {
			return err
		}
		if in>>bitWP&1 == 1 {
			d.WPLink = 1
			return d.write(regPullUp, 0xFF)
		}
		d.WPLink = 0
	}
	return d.setBit(bitWP, true)
}

func (d *Dev) setNodes(on bool) error {
	v, err := d.read(regOutput)
	if err != nil {
		return err
	}
	if on {
		v |= 0x0F
	} else {
		v &^= 0x0F
	}
	return d.write(regOutput, v)
}

// Read implements board.Board: node power from the input register (the
// pins' levels).
func (d *Dev) Read() (board.State, error) {
	cfg, err := d.read(regConfig)
	if err != nil {
		return board.State{}, err
	}
	in, err := d.read(regInput)
	if err != nil {
		return board.State{}, err
	}
	st := board.State{Reset: cfg == 0xFF, Powered: make([]bool, 4)}
	for i := range 4 {
		st.Powered[i] = in>>i&1 == 1
	}
	hub := in>>bitHub&1 == 1
	st.Hub = board.Flag(hub == d.hubActiveHigh())
	st.Alert = board.Flag(in>>bitAlert&1 == 1)
	if d.hasLEDBit() {
		st.LEDs = board.Flag(in>>bitLED&1 == 1)
	}
	return st, nil
}

// SetPower implements board.Board.
func (d *Dev) SetPower(n int, on bool) error {
	if n < 1 || n > 4 {
		return fmt.Errorf("ClusterHAT has nodes 1-4, not %d", n)
	}
	return d.setBit(n-1, on)
}

// SetAlert implements board.Board.
func (d *Dev) SetAlert(on bool) error { return d.setBit(bitAlert, on) }

// SetHub implements board.Board.
func (d *Dev) SetHub(on bool) error { return d.setBit(bitHub, on == d.hubActiveHigh()) }

// ResetHub implements board.Board: hub off, wait, hub on.
func (d *Dev) ResetHub() error {
	if err := d.SetHub(false); err != nil {
		return err
	}
	time.Sleep(d.opts.HubResetOff)
	return d.SetHub(true)
}

// SetLEDs implements board.Board. Only v2.x has the LED-enable bit.
func (d *Dev) SetLEDs(on bool) error {
	if !d.hasLEDBit() {
		return board.Unsupported("ClusterHAT v%d.%d has no LED switch (only v2.x does)", d.opts.Major, d.opts.Minor)
	}
	return d.setBit(bitLED, on)
}

var _ board.Board = (*Dev)(nil)

// errNoHub is returned by v1 boards.
var errNoHub = errors.New("hub control is not supported on ClusterHAT v1.x (its hub is always on)")
