package clusterctrl

import (
	"errors"
	"fmt"
	"time"

	"periph.io/x/conn/v3/i2c"

	"github.com/headnode/headnode/power/board"
)

// Address is the firmware's I2C slave address.
const Address = 0x20

// Registers of layout 0x02.
const (
	regVersion = 0x00
	regMaxPi   = 0x01
	regOrder   = 0x02
	regMode    = 0x03
	regType    = 0x04
	regData0   = 0x0C // DATAn is at 0x0C-n
	regCmd     = 0x0D
	regStatus  = 0x0E
)

// Commands used.
const (
	cmdOn         = 0x03
	cmdOff        = 0x04
	cmdAlertOn    = 0x05
	cmdAlertOff   = 0x06
	cmdHubCycle   = 0x07
	cmdLEDEnable  = 0x0A
	cmdLEDDisable = 0x0B
	cmdPwrOn      = 0x0C
	cmdPwrOff     = 0x0D
	cmdGetPStatus = 0x0F
	cmdGetData    = 0xF2
)

// Layout is the register layout this driver speaks.
const Layout = 0x02

// initMarker is written to the MODE register, which the firmware keeps in
// RAM and never uses: it reads something else after the MCU restarts, which
// is how a controller reboot is told from a daemon restart (see the
// package documentation for why MODE is cleared by a reset). If it were
// not, the only effect is that the boot policy is not applied after a
// board reset; node power is never cut because of it.
const initMarker = 0xA5

// Opts configures the driver.
type Opts struct {
	// Poll is the pause between reads of CMD while a command runs.
	Poll time.Duration
	// Timeout bounds one command, including waiting for a previous one.
	Timeout time.Duration
	// Retries is how often a NAKed write is tried again.
	Retries int
	// Backoff is the first pause before a retry; it doubles each time.
	Backoff time.Duration
	// HubResetOff is how long `hub reset` keeps the hub off (HUB_CYCLE,
	// in 10 ms units, at least 100 ms).
	HubResetOff time.Duration
}

// DefaultOpts suits the firmware's USB polling (about 1 ms per
// transaction).
var DefaultOpts = Opts{Poll: time.Millisecond, Timeout: 5 * time.Second, Retries: 5, Backoff: 2 * time.Millisecond, HubResetOff: time.Second}

// Dev is one ClusterCTRL board.
type Dev struct {
	bus      i2c.Bus
	busNum   int
	opts     Opts
	maxPi    int
	order    int
	typ      byte
	model    string
	firmware string
}

// New reads the board on bus (number busNum): it refuses a register layout
// other than 0x02 (firmware before 2019 put CMD and STATUS elsewhere, and
// commands written to the new places would be lost). Nothing is written.
func New(bus i2c.Bus, busNum int, opts Opts) (*Dev, error) {
	if opts.Timeout == 0 {
		opts.Timeout = DefaultOpts.Timeout
	}
	d := &Dev{bus: bus, busNum: busNum, opts: opts}
	var hdr [5]byte
	if err := d.bus.Tx(Address, []byte{regVersion}, hdr[:]); err != nil {
		return nil, fmt.Errorf("no ClusterCTRL answers on I2C bus %d: %w", busNum, err)
	}
	if hdr[regVersion] != Layout {
		return nil, fmt.Errorf("ClusterCTRL on I2C bus %d has register layout 0x%02x; only 0x%02x (firmware 1.2 and later) is supported: update its firmware", busNum, hdr[regVersion], Layout)
	}
	d.maxPi, d.order, d.typ = int(hdr[regMaxPi]), int(hdr[regOrder]), hdr[regType]
	if d.maxPi < 1 || d.maxPi > 32 {
		return nil, fmt.Errorf("ClusterCTRL on I2C bus %d reports %d nodes", busNum, d.maxPi)
	}
	d.model = model(d.typ, d.maxPi)
	if v, err := d.command(cmdGetData, 0); err == nil {
		d.firmware = fmt.Sprintf("%d.%d", v[1], v[0])
	}
	return d, nil
}

// model names the board. REG_TYPE 3 is both the A+6 and the Single; MAXPI
// tells them apart.
func model(typ byte, maxPi int) string {
	switch typ {
	case 0:
		return "DA"
	case 1:
		return "Triple"
	case 2:
		return "pHAT"
	case 3:
		if maxPi == 1 {
			return "Single"
		}
		return "A+6"
	case 4:
		return "Stack"
	}
	return fmt.Sprintf("type 0x%02x", typ)
}

// Order is the board's order value (its place in global node numbering).
func (d *Dev) Order() int { return d.order }

// Info implements board.Board.
func (d *Dev) Info() board.Info {
	return board.Info{Kind: "clusterctrl", Model: "ClusterCTRL " + d.model, Revision: d.model, Bus: d.busNum, Address: Address, Order: d.order, Firmware: d.firmware}
}

// Nodes implements board.Board.
func (d *Dev) Nodes() int { return d.maxPi }

func (d *Dev) read(reg byte, n int) ([]byte, error) {
	r := make([]byte, n)
	return r, d.bus.Tx(Address, []byte{reg}, r)
}

// write retries while the firmware NAKs (it does while a command runs).
func (d *Dev) write(reg, v byte) error {
	var err error
	pause := d.opts.Backoff
	for try := 0; try <= d.opts.Retries; try++ {
		if try > 0 {
			time.Sleep(pause)
			pause *= 2
		}
		if err = d.bus.Tx(Address, []byte{reg, v}, nil); err == nil {
			return nil
		}
	}
	return err
}

// waitIdle polls CMD until the firmware has finished.
func (d *Dev) waitIdle(deadline time.Time) error {
	for {
		b, err := d.read(regCmd, 1)
		if err != nil {
			return err
		}
		if b[0] == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ClusterCTRL on I2C bus %d: command 0x%02x still running after %s", d.busNum, b[0], d.opts.Timeout)
		}
		time.Sleep(d.opts.Poll)
	}
}

// statusError explains a STATUS value.
func statusError(cmd, status byte) error {
	switch status {
	case 0x00:
		return nil
	case 0x01:
		return fmt.Errorf("command 0x%02x failed (STATUS 0x01: not supported or bad argument)", cmd)
	case 0x02:
		return fmt.Errorf("command 0x%02x: no such node (STATUS 0x02)", cmd)
	case 0x03:
		return board.Unsupported("command 0x%02x is not implemented by this board's firmware (STATUS 0x03)", cmd)
	}
	return fmt.Errorf("command 0x%02x: STATUS 0x%02x", cmd, status)
}

// command runs one firmware command with DATA0 = arg: wait until idle,
// write DATA0, write CMD, poll until done, check STATUS, and return
// DATA0..DATA7.
func (d *Dev) command(cmd, arg byte) ([8]byte, error) {
	var out [8]byte
	deadline := time.Now().Add(d.opts.Timeout)
	if err := d.waitIdle(deadline); err != nil {
		return out, err
	}
	if err := d.write(regData0, arg); err != nil {
		return out, err
	}
	if err := d.write(regCmd, cmd); err != nil {
		return out, err
	}
	if err := d.waitIdle(deadline); err != nil {
		return out, err
	}
	if cmd != cmdHubCycle { // HUB_CYCLE leaves STATUS as it was
		st, err := d.read(regStatus, 1)
		if err != nil {
			return out, err
		}
		if err := statusError(cmd, st[0]); err != nil {
			return out, fmt.Errorf("ClusterCTRL on I2C bus %d: %w", d.busNum, err)
		}
	}
	// DATA7..DATA0 in one block read, as the firmware auto-increments.
	b, err := d.read(regData0-7, 8)
	if err != nil {
		return out, err
	}
	for i := range 8 {
		out[i] = b[7-i]
	}
	return out, nil
}

// Init implements board.Board: fresh when MODE lacks our marker, i.e. the
// MCU restarted (it has applied its own EEPROM power-on state). The
// firmware needs no initialisation; marking it is the only write.
func (d *Dev) Init() (bool, error) {
	m, err := d.read(regMode, 1)
	if err != nil {
		return false, err
	}
	if m[0] == initMarker {
		return false, nil
	}
	return true, d.write(regMode, initMarker)
}

// Read implements board.Board: GET_PSTATUS for every node. (On the pHAT
// and Single the firmware answers from its stored state, which its own
// commands keep equal to the pins.)
func (d *Dev) Read() (board.State, error) {
	m, err := d.read(regMode, 1)
	if err != nil {
		return board.State{}, err
	}
	st := board.State{Reset: m[0] != initMarker, Powered: make([]bool, d.maxPi)}
	for n := 1; n <= d.maxPi; n++ {
		v, err := d.command(cmdGetPStatus, byte(n))
		if err != nil {
			return board.State{}, err
		}
		st.Powered[n-1] = v[0] == 1
	}
	return st, nil
}

// SetPower implements board.Board.
func (d *Dev) SetPower(n int, on bool) error {
	if n < 1 || n > d.maxPi {
		return fmt.Errorf("ClusterCTRL %s has nodes 1-%d, not %d", d.model, d.maxPi, n)
	}
	cmd := byte(cmdOff)
	if on {
		cmd = cmdOn
	}
	_, err := d.command(cmd, byte(n))
	return err
}

// SetAlert implements board.Board.
func (d *Dev) SetAlert(on bool) error {
	cmd := byte(cmdAlertOff)
	if on {
		cmd = cmdAlertOn
	}
	_, err := d.command(cmd, 0)
	return err
}

// SetHub implements board.Board. The firmware defines HUB_ON/HUB_OFF but
// does not implement them.
func (d *Dev) SetHub(bool) error {
	return board.Unsupported("ClusterCTRL %s firmware cannot switch its hub on or off; `hub reset` power-cycles it", d.model)
}

// ResetHub implements board.Board: HUB_CYCLE.
func (d *Dev) ResetHub() error {
	units := d.opts.HubResetOff / (10 * time.Millisecond)
	units = max(10, min(units, 255))
	_, err := d.command(cmdHubCycle, byte(units))
	return err
}

// SetLEDs implements board.Board: LED_EN/LED_DIS per node and the power
// LED, never LED_EN for all nodes at once: on the pHAT and the Single the
// firmware then also drives every node's power enable high (it writes the
// whole port), which is why `clusterctrl led on` powers their nodes on.
func (d *Dev) SetLEDs(on bool) error {
	cmd, pwr := byte(cmdLEDDisable), byte(cmdPwrOff)
	if on {
		cmd, pwr = cmdLEDEnable, cmdPwrOn
	}
	var errs []error
	for n := 1; n <= d.maxPi; n++ {
		if _, err := d.command(cmd, byte(n)); err != nil {
			errs = append(errs, err)
		}
	}
	if _, err := d.command(pwr, 0); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

var _ board.Board = (*Dev)(nil)
