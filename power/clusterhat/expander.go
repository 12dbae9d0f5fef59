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

// Hub polarities (Opts.HubPolarity): which level of bit 5 switches the
// hub on.
const (
	// HubAuto is the official tool's first-run rule: a 1 switches the hub
	// on a v2.0 only; every later board holds it in reset with a 1.
	HubAuto = "auto"
	// HubHigh: a 1 switches the hub on.
	HubHigh = "high"
	// HubLow: a 0 switches the hub on.
	HubLow = "low"
)

// Opts configures an expander-driven ClusterHAT.
type Opts struct {
	// Address is the expander's I2C address, 0x20-0x23.
	Address uint16
	// Major and Minor are the HAT version from its EEPROM (2.5 = 2, 5).
	Major, Minor int
	// HubResetOff is how long `hub reset` keeps the hub off.
	HubResetOff time.Duration
	// HubPolarity is HubAuto (or ""), HubHigh or HubLow.
	HubPolarity string
	// Size is how many of P1-P4 are counted (the official tool's
	// CLUSTERHAT_SIZE); 0 means 4.
	Size int
	// Identity is what the HAT's EEPROM says, for Info; Forced is the
	// version forced instead of reading it ("" when read).
	UUID, Vendor, ProductID, Forced string
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
	// -1 unknown (PCA9554 has no programmable pull-up to test it); known
	// after Init.
	WPLink int
	inited bool
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
	switch opts.HubPolarity {
	case "", HubAuto, HubHigh, HubLow:
	default:
		return nil, fmt.Errorf("hub polarity %q: use %q, %q or %q", opts.HubPolarity, HubAuto, HubHigh, HubLow)
	}
	if opts.Size == 0 {
		opts.Size = 4
	}
	if opts.Size < 1 || opts.Size > 4 {
		return nil, fmt.Errorf("ClusterHAT size %d: a ClusterHAT has 1-4 nodes", opts.Size)
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

// A stable read is agree reads in a row of the same value, within at most
// readTries reads.
const (
	agree     = 3
	readTries = 16
)

// stableRead reads reg until agree reads in a row give the same value. A
// read can come back corrupted (a glitch on the bit-banged bus flips a
// bit, a stuck SDA reads 0xFF) without any error; node power is decided
// from these reads, so a lone odd value must never count, nor two alike
// (at a bit flipped in one read of twenty, two reads flipped the same way
// come about once in a few thousand). Pins that really change settle
// within a read.
func (d *Dev) stableRead(reg byte) (byte, error) {
	last, err := d.read(reg)
	if err != nil {
		return 0, err
	}
	same := 1
	for range readTries - 1 {
		v, err := d.read(reg)
		if err != nil {
			return 0, err
		}
		if v == last {
			if same++; same == agree {
				return v, nil
			}
			continue
		}
		last, same = v, 1
	}
	return 0, fmt.Errorf("ClusterHAT expander register 0x%02x reads differently every time (%d reads on I2C bus %d): %w", reg, readTries, d.busNum, errUnstable)
}

// errUnstable is reads that never agree: the bus is broken.
var errUnstable = errors.New("unstable reads")

// confirmTries is how many reads of the configuration register in a row
// must say "every pin an input" before the board is taken as reset.
const confirmTries = 3

// looksReset reports whether the expander is in its power-on state, which
// is what re-initialising it (and applying the boot policy) rests on: the
// configuration register reads 0xFF (every pin an input) on confirmTries
// reads in a row. After Init it is 0x00; a lone read of 0xFF (a glitch on
// the bus reads all ones) is a corrupted read, and nothing is done about
// it. A configuration that really reads 0xFF means the pins drive nothing,
// however that came about (a reset, an init cut short), and init is what
// puts that right.
func (d *Dev) looksReset(cfg byte) (bool, error) {
	if cfg != 0xFF {
		return false, nil
	}
	for range confirmTries - 1 {
		v, err := d.read(regConfig)
		if err != nil {
			return false, err
		}
		if v != 0xFF {
			return false, nil
		}
	}
	return true, nil
}

// setBits is the official tool's on()/off() made safe: read the output
// latch (a stable read), change the bits in mask to those of v, write it
// back, and read it back (a stable read); if the latch
// does not hold what was written (a write that did not stick), it is done
// again from the start. The read before the write matters most: written
// back from a corrupted read, one flipped bit would switch another node.
func (d *Dev) setBits(mask, v byte) error {
	const rmwTries = 3
	var got, want byte
	for range rmwTries {
		cur, err := d.stableRead(regOutput)
		if err != nil {
			return err
		}
		// Written even when unchanged, as the official tool does.
		want = cur&^mask | v&mask
		if err := d.write(regOutput, want); err != nil {
			return err
		}
		if got, err = d.stableRead(regOutput); err != nil {
			return err
		}
		if got == want {
			return nil
		}
	}
	return fmt.Errorf("ClusterHAT output latch reads 0x%02x after writing 0x%02x (%d tries)", got, want, rmwTries)
}

func (d *Dev) setBit(bit int, on bool) error {
	var v byte
	if on {
		v = 1 << bit
	}
	return d.setBits(1<<bit, v)
}

// hubActiveHigh tells which level of bit 5 switches the hub on. The
// sources disagree for a v3.0 (see the package documentation); HubAuto
// follows the official tool's first-run rule, active high on v2.0 only.
func (d *Dev) hubActiveHigh() bool {
	switch d.opts.HubPolarity {
	case HubHigh:
		return true
	case HubLow:
		return false
	}
	return d.opts.Major == 2 && d.opts.Minor == 0
}

func (d *Dev) hasLEDBit() bool { return d.opts.Major == 2 }

// Info implements board.Board.
func (d *Dev) Info() board.Info {
	rev := fmt.Sprintf("%d.%d", d.opts.Major, d.opts.Minor)
	i := board.Info{Kind: "clusterhat", Model: "ClusterHAT v" + rev, Revision: rev, Chip: d.chip, Bus: d.busNum, Address: d.opts.Address,
		Major: d.opts.Major, Minor: d.opts.Minor, UUID: d.opts.UUID, Vendor: d.opts.Vendor, ProductID: d.opts.ProductID, Forced: d.opts.Forced}
	if d.inited {
		wl := d.WPLink
		i.WPLink = &wl
	}
	return i
}

// Nodes implements board.Board: P1-P4, or as many as Opts.Size counts.
func (d *Dev) Nodes() int { return d.opts.Size }

// Init implements board.Board. The expander comes up with every pin an
// input (configuration 0xFF); that is how a first access after the HAT
// powered up is recognised (confirmed by looksReset). Then, in the
// official tool's order: detect the write-protect link (XRA1200P) and set
// write-protect, set P1-P4 from the power-on-state jumper, ALERT off, LEDs
// on (v2), hub on, and only then make every pin an output, so the latch
// is ready before the pins drive.
func (d *Dev) Init() (bool, error) {
	cfg, err := d.read(regConfig)
	if err != nil {
		return false, err
	}
	reset, err := d.looksReset(cfg)
	if err != nil {
		return false, err
	}
	in, err := d.stableRead(regInput)
	if err != nil {
		return false, err
	}
	if !reset {
		d.WPLink = -1
		if d.chip == "XRA1200P" {
			pu, err := d.stableRead(regPullUp)
			if err != nil {
				return false, err
			}
			d.WPLink = int(pu >> bitWP & 1)
		}
		d.inited = true
		return false, nil
	}
	steps := []func() error{
		d.initWriteProtect,
		// Power-on state: all of P1-P4 reading high means the POS link is
		// cut ("auto power on"); the default link holds them low (off).
		func() error { return d.setBits(0x0F, fill(in&0x0F == 0x0F)) },
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
	d.inited = true
	return true, nil
}

func fill(on bool) byte {
	if on {
		return 0xFF
	}
	return 0
}

func (d *Dev) initWriteProtect() error {
	d.WPLink = -1
	if d.chip == "XRA1200P" {
		// Without its pull-up, the WP pin reads high only through the
		// solder link.
		if err := d.write(regPullUp, 0x7F); err != nil {
			return err
		}
		in, err := d.stableRead(regInput)
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

// Read implements board.Board: node power from the input register (the
// pins' levels), read until it reads the same agree times in a row.
func (d *Dev) Read() (board.State, error) {
	cfg, err := d.read(regConfig)
	if err != nil {
		return board.State{}, err
	}
	reset, err := d.looksReset(cfg)
	if err != nil {
		return board.State{}, err
	}
	in, err := d.stableRead(regInput)
	if err != nil {
		return board.State{}, err
	}
	st := board.State{Reset: reset, Powered: make([]bool, d.opts.Size)}
	for i := range d.opts.Size {
		st.Powered[i] = in>>i&1 == 1
	}
	hub := in>>bitHub&1 == 1
	st.Hub = board.Flag(hub == d.hubActiveHigh())
	st.Alert = board.Flag(in>>bitAlert&1 == 1)
	st.WP = board.Flag(in>>bitWP&1 == 1)
	if d.hasLEDBit() {
		st.LEDs = board.Flag(in>>bitLED&1 == 1)
	}
	return st, nil
}

// SetPower implements board.Board.
func (d *Dev) SetPower(n int, on bool) error {
	if n < 1 || n > d.opts.Size {
		return fmt.Errorf("ClusterHAT has nodes 1-%d, not %d", d.opts.Size, n)
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

// ErrWPLinked refuses to turn write protection off while the WP solder
// link is bridged: the link holds the pin high whatever the expander
// drives.
var ErrWPLinked = errors.New("the EEPROM's write protection cannot be turned off: its WP solder link is bridged")

// SetWP implements board.WriteProtect (bit 7). As the official tool, only
// on v2.x, and not off while the solder link is bridged.
func (d *Dev) SetWP(on bool) error {
	if d.opts.Major != 2 {
		return board.Unsupported("ClusterHAT v%d.%d: write protection is switched on v2.x only", d.opts.Major, d.opts.Minor)
	}
	if !on && d.chip == "XRA1200P" && d.WPLink == 1 {
		return ErrWPLinked
	}
	return d.setBit(bitWP, on)
}

var (
	_ board.Board        = (*Dev)(nil)
	_ board.WriteProtect = (*Dev)(nil)
)

// errNoHub is returned by v1 boards.
var errNoHub = errors.New("hub control is not supported on ClusterHAT v1.x (its hub is always on)")
