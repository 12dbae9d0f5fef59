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
	regData7   = 0x05
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
	cmdReset      = 0x0E
	cmdGetPStatus = 0x0F
	cmdFan        = 0x10
	cmdGetPath    = 0x11
	cmdUSBBootEn  = 0x12
	cmdUSBBootDis = 0x13
	cmdGetUStatus = 0x14
	cmdSetOrder   = 0x15
	cmdACTEnable  = 0x16
	cmdACTDisable = 0x17
	cmdSave       = 0xF0
	cmdSaveDefs   = 0xF1
	cmdGetData    = 0xF2
	cmdSaveOrder  = 0xF3
	cmdSaveUSB    = 0xF4
	cmdSavePOS    = 0xF5
	cmdSaveLED    = 0xF6
)

// GET_DATA sub-commands.
const (
	dataVersion   = 0x00
	dataADCCount  = 0x01
	dataADCRead   = 0x02
	dataTemp      = 0x03
	dataFanStatus = 0x04
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
	// Retries is how often a NAKed write (or read) is tried again.
	Retries int
	// Backoff is the first pause before a retry; it doubles each time.
	Backoff time.Duration
	// HubResetOff is how long `hub reset` keeps the hub off (HUB_CYCLE,
	// in 10 ms units, at least 100 ms).
	HubResetOff time.Duration
	// SensorInterval is how often Read refreshes the slow readings
	// (voltages, temperature, fan and USBBOOT state); a command that
	// changes one of them refreshes them at the next Read.
	SensorInterval time.Duration
}

// DefaultOpts suits the firmware's USB polling (about 1 ms per
// transaction).
var DefaultOpts = Opts{Poll: time.Millisecond, Timeout: 5 * time.Second, Retries: 5, Backoff: 2 * time.Millisecond, HubResetOff: time.Second, SensorInterval: 5 * time.Second}

// Dev is one ClusterCTRL board.
type Dev struct {
	bus    i2c.Bus
	busNum int
	opts   Opts
	maxPi  int
	order  int
	typ    byte
	model  string
	fw     [2]int // major, minor; {-1, -1} when GET_DATA failed

	// leds is the node LED state last asked for: nil when unknown, which
	// leaves the firmware's own LED enables alone.
	leds *bool

	// The slow readings, refreshed every SensorInterval.
	extras     board.State
	extrasAt   time.Time
	extrasGood bool
}

// New reads the board on bus (number busNum): it refuses a register layout
// other than 0x02 (firmware before 2019 put CMD and STATUS elsewhere, and
// commands written to the new places would be lost). Nothing is written
// but the firmware-version query (GET_DATA 0), which changes no setting.
func New(bus i2c.Bus, busNum int, opts Opts) (*Dev, error) {
	if opts.Timeout == 0 {
		opts.Timeout = DefaultOpts.Timeout
	}
	if opts.SensorInterval == 0 {
		opts.SensorInterval = DefaultOpts.SensorInterval
	}
	d := &Dev{bus: bus, busNum: busNum, opts: opts, fw: [2]int{-1, -1}}
	hdr, err := d.read(regVersion, 5)
	if err != nil {
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
	if v, err := d.command(cmdGetData, dataVersion); err == nil {
		d.fw = [2]int{int(v[1]), int(v[0])}
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

// gpiod reports whether the board is one of those whose firmware switches
// nodes through named pins (GPIOD in their config.h): the pHAT and the
// Single. Their LED enables follow other rules (see SetPower).
func (d *Dev) gpiod() bool { return d.typ == 2 || (d.typ == 3 && d.maxPi == 1) }

// Order is the board's order value (its place in global node numbering).
func (d *Dev) Order() int { return d.order }

// Info implements board.Board.
func (d *Dev) Info() board.Info {
	i := board.Info{Kind: "clusterctrl", Model: "ClusterCTRL " + d.model, Revision: d.model, Bus: d.busNum, Address: Address, Order: d.order}
	if d.fw[0] >= 0 {
		i.Firmware = fmt.Sprintf("%d.%d", d.fw[0], d.fw[1])
		i.FirmwareMajor, i.FirmwareMinor = d.fw[0], d.fw[1]
	}
	return i
}

// Nodes implements board.Board.
func (d *Dev) Nodes() int { return d.maxPi }

// retried runs tx until it is not NAKed, at most Retries more times with a
// doubling pause: the firmware NAKs every message but a bare read while a
// command runs, and a lone NAK on the USB adapter must not fail a request.
// Every access is a whole register read or write, so repeating one is
// harmless.
func (d *Dev) retried(tx func() error) error {
	var err error
	pause := d.opts.Backoff
	for try := 0; try <= d.opts.Retries; try++ {
		if try > 0 {
			time.Sleep(pause)
			pause *= 2
		}
		if err = tx(); err == nil || !board.IsMissing(err) {
			return err
		}
	}
	return err
}

func (d *Dev) read(reg byte, n int) ([]byte, error) {
	r := make([]byte, n)
	return r, d.retried(func() error { return d.bus.Tx(Address, []byte{reg}, r) })
}

func (d *Dev) write(reg, v byte) error {
	return d.retried(func() error { return d.bus.Tx(Address, []byte{reg, v}, nil) })
}

// waitIdle polls CMD until the firmware has finished. While a command is
// pending the poll's register select is NAKed (the firmware answers only
// reads then); that is the command still running, not an error.
func (d *Dev) waitIdle(deadline time.Time) error {
	var r [1]byte
	for {
		err := d.bus.Tx(Address, []byte{regCmd}, r[:])
		switch {
		case err == nil && r[0] == 0:
			return nil
		case err != nil && !board.IsMissing(err):
			return err
		}
		if time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("ClusterCTRL on I2C bus %d: still busy (NAKing) after %s: %w", d.busNum, d.opts.Timeout, err)
			}
			return fmt.Errorf("ClusterCTRL on I2C bus %d: command 0x%02x still running after %s", d.busNum, r[0], d.opts.Timeout)
		}
		time.Sleep(d.opts.Poll)
	}
}

// StatusError is a command the firmware refused: its STATUS value.
type StatusError struct {
	Cmd, Status byte
}

func (e *StatusError) Error() string {
	switch e.Status {
	case 0x01:
		return fmt.Sprintf("command 0x%02x failed (STATUS 0x01: not supported or bad argument)", e.Cmd)
	case 0x02:
		return fmt.Sprintf("command 0x%02x: no such node (STATUS 0x02)", e.Cmd)
	case 0x03:
		return fmt.Sprintf("command 0x%02x is not implemented by this board's firmware (STATUS 0x03)", e.Cmd)
	}
	return fmt.Sprintf("command 0x%02x: STATUS 0x%02x", e.Cmd, e.Status)
}

// Unwrap makes an unknown command (STATUS 0x03) board.ErrUnsupported.
func (e *StatusError) Unwrap() error {
	if e.Status == 0x03 {
		return board.ErrUnsupported
	}
	return nil
}

// statusError explains a STATUS value; nil for 0x00 (OK).
func statusError(cmd, status byte) error {
	if status == 0x00 {
		return nil
	}
	return &StatusError{Cmd: cmd, Status: status}
}

// command runs one firmware command with DATA0 = args[0], DATA1 =
// args[1], ...: wait until idle, write the data registers (the highest
// first, as the official tool does), write CMD, poll until done, check
// STATUS, and return DATA0..DATA7.
func (d *Dev) command(cmd byte, args ...byte) ([8]byte, error) {
	var out [8]byte
	deadline := time.Now().Add(d.opts.Timeout)
	if err := d.waitIdle(deadline); err != nil {
		return out, err
	}
	for i := len(args) - 1; i >= 0; i-- {
		if err := d.write(regData0-byte(i), args[i]); err != nil {
			return out, err
		}
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
	b, err := d.read(regData7, 8)
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
	d.extrasGood = false
	return true, d.write(regMode, initMarker)
}

// Read implements board.Board: GET_PSTATUS for every node (on the pHAT and
// Single the firmware answers from its stored state, which its own
// commands keep equal to the pins), and every SensorInterval the slow
// readings.
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
	if !d.extrasGood || time.Since(d.extrasAt) >= d.opts.SensorInterval {
		if err := d.readExtras(); err != nil {
			return board.State{}, err
		}
	}
	st.USBBoot, st.FanStatus, st.ADCs, st.Temp = d.extras.USBBoot, d.extras.FanStatus, d.extras.ADCs, d.extras.Temp
	if d.leds != nil {
		st.LEDs = board.Flag(*d.leds)
	}
	return st, nil
}

// readExtras reads what changes slowly or only by request: each node's
// USBBOOT line (GET_USTATUS answers 0xFF where the board has none), the
// fan status, the voltage ADCs and the temperature (GET_DATA 1-4;
// STATUS 0x01 where the board has no such reading).
func (d *Dev) readExtras() error {
	var x board.State
	for n := 1; n <= d.maxPi; n++ {
		v, err := d.command(cmdGetUStatus, byte(n))
		if err != nil {
			return err
		}
		if v[0] == 0xFF {
			x.USBBoot = nil
			break
		}
		x.USBBoot = append(x.USBBoot, v[0] == 1)
	}
	if v, err := d.command(cmdGetData, dataFanStatus); err == nil {
		fs := v[0]
		x.FanStatus = &fs
	} else if !isStatus(err) {
		return err
	}
	v, err := d.command(cmdGetData, dataADCCount)
	if err != nil && !isStatus(err) {
		return err
	}
	for n := 1; err == nil && n <= int(v[0]) && n <= 2; n++ {
		a, aerr := d.command(cmdGetData, dataADCRead, byte(n))
		if aerr != nil {
			if !isStatus(aerr) {
				return aerr
			}
			continue
		}
		x.ADCs = append(x.ADCs, board.ADC{Type: a[0], Raw: uint16(a[2])<<8 | uint16(a[1])})
	}
	if t, err := d.command(cmdGetData, dataTemp); err == nil && t[0] == 2 {
		raw := uint16(t[2])<<8 | uint16(t[1])
		x.Temp = &raw
	} else if err != nil && !isStatus(err) {
		return err
	}
	d.extras, d.extrasAt, d.extrasGood = x, time.Now(), true
	return nil
}

// isStatus reports whether err is the firmware refusing a command (a
// STATUS value), as opposed to the bus failing.
func isStatus(err error) bool {
	var se *StatusError
	return errors.As(err, &se)
}

// SetPower implements board.Board. On the pHAT and the Single the firmware
// keeps a node's LED enable only while the node is powered (LED_EN for an
// unpowered node is dropped), so after `leds on` with a node off it would
// come up with its LED dark: when LEDs were last asked on, the node's LED
// is enabled again once it has power.
func (d *Dev) SetPower(n int, on bool) error {
	if err := d.checkNode(n); err != nil {
		return err
	}
	if _, err := d.command(pick(on, cmdOn, cmdOff), byte(n)); err != nil {
		return err
	}
	if on && d.gpiod() && d.leds != nil && *d.leds {
		if _, err := d.command(cmdLEDEnable, byte(n)); err != nil {
			return fmt.Errorf("p%d is on, but its LED was not enabled: %w", n, err)
		}
	}
	return nil
}

// SetAlert implements board.Board.
func (d *Dev) SetAlert(on bool) error {
	_, err := d.command(pick(on, cmdAlertOn, cmdAlertOff), 0)
	return err
}

// checkNode refuses a node the board does not have.
func (d *Dev) checkNode(n int) error {
	if n < 1 || n > d.maxPi {
		return fmt.Errorf("ClusterCTRL %s has nodes 1-%d, not %d", d.model, d.maxPi, n)
	}
	return nil
}

// pick is the command for on, or for off.
func pick(on bool, onCmd, offCmd byte) byte {
	if on {
		return onCmd
	}
	return offCmd
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
	d.leds = board.Flag(on)
	cmd, pwr := pick(on, cmdLEDEnable, cmdLEDDisable), pick(on, cmdPwrOn, cmdPwrOff)
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

// RememberLEDs implements board.LEDMemory.
func (d *Dev) RememberLEDs(on bool) { d.leds = board.Flag(on) }

// SetFan implements board.FanSwitch (FAN; the Stack records the request
// and runs its fans from it and the nodes' cooling requests).
func (d *Dev) SetFan(on bool) error {
	var v byte
	if on {
		v = 1
	}
	_, err := d.command(cmdFan, v)
	d.extrasGood = false
	return d.unsupported(err, "has no fan control")
}

// SetACT implements board.ACTSwitch (ACT_EN/ACT_DIS, the A+6 only).
func (d *Dev) SetACT(on bool) error {
	_, err := d.command(pick(on, cmdACTEnable, cmdACTDisable), 0)
	return d.unsupported(err, "has no ACT LED")
}

// SetUSBBoot implements board.USBBootSwitch (USBBOOT_EN/USBBOOT_DIS).
func (d *Dev) SetUSBBoot(n int, on bool) error {
	if err := d.checkNode(n); err != nil {
		return err
	}
	_, err := d.command(pick(on, cmdUSBBootEn, cmdUSBBootDis), byte(n))
	d.extrasGood = false
	return d.unsupported(err, "has no USBBOOT lines")
}

// Path implements board.PathReader (GETPATH): the ports from the board's
// hub to node n, or for n = 0 the board's own place below that hub.
func (d *Dev) Path(n int) ([]byte, error) {
	v, err := d.command(cmdGetPath, byte(n))
	if err != nil {
		if isStatus(err) {
			return nil, board.Unsupported("ClusterCTRL %s has no USB path for p%d (its nodes are not on its USB hub)", d.model, n)
		}
		return nil, err
	}
	var p []byte
	for i := 7; i >= 0; i-- {
		if v[i] != 0xFF {
			p = append(p, v[i])
		}
	}
	return p, nil
}

// SetOrder implements board.Controller (SET_ORDER, not saved until
// Save(SaveOrder)).
func (d *Dev) SetOrder(order int) error {
	if order < 1 || order > 255 {
		return fmt.Errorf("order %d is out of range 1-255", order)
	}
	if _, err := d.command(cmdSetOrder, byte(order)); err != nil {
		return err
	}
	o, err := d.read(regOrder, 1)
	if err != nil {
		return err
	}
	d.order = int(o[0])
	return nil
}

// Save implements board.Controller.
func (d *Dev) Save(what board.Saving) error {
	cmd, ok := map[board.Saving]byte{board.SaveAll: cmdSave, board.SaveOrder: cmdSaveOrder, board.SaveUSBBoot: cmdSaveUSB,
		board.SavePOS: cmdSavePOS, board.SaveLEDs: cmdSaveLED, board.SaveDefaults: cmdSaveDefs}[what]
	if !ok {
		return fmt.Errorf("nothing called %q to save; use all, order, usbboot, pos, leds or defaults", what)
	}
	_, err := d.command(cmd)
	return err
}

// Restart implements board.Controller (RESET): the MCU restarts through
// its watchdog and applies its saved power-on state, so the nodes' power
// is not kept. The firmware never reports RESET done (it restarts, and on
// USB the board re-enumerates), so this does not wait for it.
func (d *Dev) Restart() error {
	if err := d.waitIdle(time.Now().Add(d.opts.Timeout)); err != nil {
		return err
	}
	d.extrasGood = false
	return d.write(regCmd, cmdReset)
}

// unsupported turns the firmware's "unknown command" into one line that
// says what the board lacks.
func (d *Dev) unsupported(err error, lacks string) error {
	if errors.Is(err, board.ErrUnsupported) {
		return board.Unsupported("ClusterCTRL %s %s", d.model, lacks)
	}
	return err
}

var (
	_ board.Board         = (*Dev)(nil)
	_ board.FanSwitch     = (*Dev)(nil)
	_ board.ACTSwitch     = (*Dev)(nil)
	_ board.USBBootSwitch = (*Dev)(nil)
	_ board.PathReader    = (*Dev)(nil)
	_ board.Controller    = (*Dev)(nil)
	_ board.LEDMemory     = (*Dev)(nil)
)

// Millivolts converts an ADC reading as the official tool does
// (burtyb/clusterhat-image files/usr/sbin/clusterctrl at
// dd66f59ffe9e6e981288c9a49b0affbb7ca0c751, lines 813-818): type 1, the
// 3.3 V reference with the input halved, raw x 6.4453125; type 2, the 3.3
// V reference behind a 10 k + 1.07 k divider, raw x 33.34093896028037.
// ok is false for a type the tool does not know.
func Millivolts(a board.ADC) (mV float64, ok bool) {
	switch a.Type {
	case 1:
		return float64(a.Raw) * 6.4453125, true
	case 2:
		return float64(a.Raw) * 33.34093896028037, true
	}
	return 0, false
}

// Celsius converts the temperature sensor's reading as the official tool
// does (line 822): (raw - 247) / 1.22. The tool's own history calls these
// readings inaccurate; the firmware's debug output uses an offset of
// 324.31 instead.
func Celsius(raw uint16) float64 { return (float64(raw) - 247) / 1.22 }
