package clusterctrl

import (
	"fmt"
	"sync"

	"github.com/headnode/headnode/hw/emu"
)

// Registers (layout 0x02).
const (
	RegVersion = 0x00
	RegMaxPi   = 0x01
	RegOrder   = 0x02
	RegMode    = 0x03
	RegType    = 0x04
	RegData7   = 0x05 // DATA7 .. DATA0 at 0x05 .. 0x0C
	RegData0   = 0x0C
	RegCmd     = 0x0D
	RegStatus  = 0x0E
)

// Command codes.
const (
	CmdInit        = 0x01
	CmdRescan      = 0x02
	CmdOn          = 0x03
	CmdOff         = 0x04
	CmdAlertOn     = 0x05
	CmdAlertOff    = 0x06
	CmdHubCycle    = 0x07
	CmdHubOn       = 0x08
	CmdHubOff      = 0x09
	CmdLEDEnable   = 0x0A
	CmdLEDDisable  = 0x0B
	CmdPwrOn       = 0x0C
	CmdPwrOff      = 0x0D
	CmdReset       = 0x0E
	CmdGetPStatus  = 0x0F
	CmdFan         = 0x10
	CmdGetPath     = 0x11
	CmdUSBBootEn   = 0x12
	CmdUSBBootDis  = 0x13
	CmdGetUStatus  = 0x14
	CmdSetOrder    = 0x15
	CmdACTEnable   = 0x16
	CmdACTDisable  = 0x17
	CmdPing        = 0x90
	CmdSave        = 0xF0
	CmdSaveDefault = 0xF1
	CmdGetData     = 0xF2
	CmdSaveOrder   = 0xF3
	CmdSaveUSBBoot = 0xF4
	CmdSavePOS     = 0xF5
	CmdSaveLED     = 0xF6
)

// STATUS values.
const (
	StatusOK          = 0x00
	StatusError       = 0x01
	StatusNoSuchPi    = 0x02
	StatusUnknownCmd  = 0x03
	StatusShouldReset = 0x04
)

// GET_DATA sub-commands.
const (
	DataVersion   = 0x00
	DataADCCount  = 0x01
	DataADCRead   = 0x02
	DataTemp      = 0x03
	DataFanStatus = 0x04
)

// Variant describes one board, from its config.h.
type Variant struct {
	Name  string
	Type  byte // REG_TYPE; Single and A+6 share 0x03
	MaxPi int
	// GPIOD boards (pHAT, Single) have the LED_EN(0) quirk: enabling all
	// LEDs also drives every node's power enable high.
	GPIOD   bool
	Fan     bool
	USBBoot bool
	ACT     bool
	// ADCs are the types of the voltage ADCs (1: 5 V/2, 2: VIN divider).
	ADCs []byte
	// Paths are the GETPATH answers: [0] the controller, [n] node n; nil
	// when the board has no paths (Stack).
	Paths [][]byte
}

// The boards of burtyb/ClusterCTRL (DA omitted: it is a HAT multiplexer,
// not a node power board).
var (
	Single = Variant{Name: "Single", Type: 0x03, MaxPi: 1, GPIOD: true, USBBoot: true,
		Paths: [][]byte{{2}, {4}}}
	PHAT = Variant{Name: "pHAT", Type: 0x02, MaxPi: 2, GPIOD: true,
		Paths: [][]byte{{2}, {4}, {3}}}
	Triple = Variant{Name: "Triple", Type: 0x01, MaxPi: 3, Fan: true, USBBoot: true, ADCs: []byte{1},
		Paths: [][]byte{{1}, {4}, {3}, {2}}}
	APlus6 = Variant{Name: "A+6", Type: 0x03, MaxPi: 5, Fan: true, ACT: true, ADCs: []byte{1, 1},
		Paths: [][]byte{{4, 1}, {1}, {2}, {3}, {4, 2}, {4, 4}}}
	Stack = Variant{Name: "Stack", Type: 0x04, MaxPi: 5, Fan: true, ADCs: []byte{1, 2}}
)

// Variants lists the boards by lower-case name.
var Variants = map[string]Variant{"single": Single, "phat": PHAT, "triple": Triple, "a+6": APlus6, "stack": Stack}

// Opts configures an emulated board.
type Opts struct {
	Variant Variant
	// Order is the order value in EEPROM (the factory default is 20).
	Order byte
	// Firmware is the version GET_DATA reports (major, minor).
	Firmware [2]byte
	// Layout is the register layout version in VERSION; the firmware
	// since 2019 reports 0x02. Only VERSION is emulated for other values.
	Layout byte
	// Busy is how many bus transactions a command stays pending.
	Busy int
}

// DefaultOpts is a Stack with firmware 1.8 at the factory order 20.
var DefaultOpts = Opts{Variant: Stack, Order: 20, Firmware: [2]byte{1, 8}, Layout: 0x02, Busy: 1}

// EEPROM is the board's persistent settings (one bit per node).
type EEPROM struct {
	Order   byte   `json:"order"`
	PwrLED  bool   `json:"pwr_led"`
	ACTLED  bool   `json:"act_led"`
	LED     uint16 `json:"led"`
	POS     uint16 `json:"pos"`
	USBBoot uint16 `json:"usbboot"`
}

// State is the board's whole state, for saving an emulated board across
// daemon restarts.
type State struct {
	EEPROM  EEPROM `json:"eeprom"`
	Order   byte   `json:"order"`
	Mode    byte   `json:"mode"`
	Power   uint16 `json:"power"`
	LED     uint16 `json:"led"`
	USBBoot uint16 `json:"usbboot"`
	PwrLED  bool   `json:"pwr_led"`
	ACTLED  bool   `json:"act_led"`
	Alert   bool   `json:"alert"`
	Fan     bool   `json:"fan"`
}

// Dev is one emulated board. It implements emu.Device at address 0x20.
type Dev struct {
	opts Opts

	mu       sync.Mutex
	st       State
	data     [8]byte // DATA0..DATA7
	cmd      byte
	status   byte
	busyLeft int
	hubOn    bool
	hubCyc   int
	cmds     map[byte]int
	onChange func()
}

// Address is the emulated slave address.
const Address = 0x20

// New returns a board that has just powered up with factory-default EEPROM
// at opts.Order.
func New(opts Opts) *Dev {
	if opts.Layout == 0 {
		opts.Layout = 0x02
	}
	if opts.Firmware == [2]byte{} {
		opts.Firmware = DefaultOpts.Firmware
	}
	d := &Dev{opts: opts, cmds: map[byte]int{}}
	d.st.EEPROM = EEPROM{Order: 20, PwrLED: true, ACTLED: true, LED: 0xFFFF, POS: 0, USBBoot: 0xFFFF}
	if opts.Order != 0 {
		d.st.EEPROM.Order = opts.Order
	}
	d.bootLocked()
	return d
}

// Reset is an MCU reset or power cycle: RAM state is lost and the EEPROM
// power-on state is applied (ALERT off, hub on, nodes whose POS bit is set
// switched on).
func (d *Dev) Reset() {
	d.mu.Lock()
	d.bootLocked()
	f := d.onChange
	d.mu.Unlock()
	if f != nil {
		f()
	}
}

func (d *Dev) bootLocked() {
	e := d.st.EEPROM
	d.st = State{EEPROM: e, Order: e.Order, PwrLED: e.PwrLED, ACTLED: e.ACTLED, LED: e.LED, USBBoot: e.USBBoot}
	d.data = [8]byte{}
	d.cmd, d.status, d.busyLeft = 0, 0, 0
	d.hubOn = true
	// The firmware lights ALERT and waits AUTOONDELAY before each
	// switch-on; the emulation applies the result at once.
	d.st.Power = e.POS & d.mask()
}

func (d *Dev) mask() uint16 { return uint16(1)<<d.opts.Variant.MaxPi - 1 }

// OnChange registers f to be called after state changes.
func (d *Dev) OnChange(f func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.onChange = f
}

// Variant returns the board kind.
func (d *Dev) Variant() Variant { return d.opts.Variant }

// Powered reports whether node n (1-based) has power.
func (d *Dev) Powered(n int) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.st.Power&(1<<(n-1)) != 0
}

// NodeLED reports whether node n's LED is lit (powered and enabled).
func (d *Dev) NodeLED(n int) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	bit := uint16(1) << (n - 1)
	return d.st.Power&bit != 0 && d.st.LED&bit != 0
}

// PwrLED, Alert and Hub report the board's power LED, ALERT LED and hub.
func (d *Dev) PwrLED() bool { d.mu.Lock(); defer d.mu.Unlock(); return d.st.PwrLED }
func (d *Dev) Alert() bool  { d.mu.Lock(); defer d.mu.Unlock(); return d.st.Alert }
func (d *Dev) Hub() bool    { d.mu.Lock(); defer d.mu.Unlock(); return d.hubOn }

// HubCycles counts completed HUB_CYCLE commands.
func (d *Dev) HubCycles() int { d.mu.Lock(); defer d.mu.Unlock(); return d.hubCyc }

// Commands returns how many times command code c was executed.
func (d *Dev) Commands(c byte) int { d.mu.Lock(); defer d.mu.Unlock(); return d.cmds[c] }

// Order returns the order value in RAM (what REG_ORDER reads).
func (d *Dev) Order() byte { d.mu.Lock(); defer d.mu.Unlock(); return d.st.Order }

// Save returns the whole state.
func (d *Dev) Save() State { d.mu.Lock(); defer d.mu.Unlock(); return d.st }

// Restore loads a state from Save.
func (d *Dev) Restore(s State) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.st = s
	d.hubOn = true
}

// Tx implements emu.Device.
func (d *Dev) Tx(w, r []byte) error {
	d.mu.Lock()
	changed := d.tickLocked()
	var err error
	if len(w) == 0 {
		err = fmt.Errorf("clusterctrl: transfer without a register: %w", emu.ErrNACK)
	} else if len(w) > 1 && d.cmd != 0 {
		// Busy: writes are NAKed until the pending command is done.
		err = fmt.Errorf("clusterctrl: busy with command 0x%02x: %w", d.cmd, emu.ErrNACK)
	} else {
		reg := int(w[0])
		for _, v := range w[1:] {
			if d.writeLocked(reg, v) {
				changed = true
			}
			reg++
		}
		for i := range r {
			r[i] = d.readLocked(reg)
			reg++
		}
	}
	f := d.onChange
	d.mu.Unlock()
	if changed && f != nil {
		f()
	}
	return err
}

// tickLocked advances a pending command by one transaction and runs it
// when its time has come.
func (d *Dev) tickLocked() bool {
	if d.cmd == 0 {
		return false
	}
	if d.busyLeft > 0 {
		d.busyLeft--
		return false
	}
	d.execLocked(d.cmd)
	d.cmd = 0
	return true
}

func (d *Dev) readLocked(reg int) byte {
	if d.opts.Layout != 0x02 {
		if reg == RegVersion {
			return d.opts.Layout
		}
		return 0xFF
	}
	switch {
	case reg == RegVersion:
		return 0x02
	case reg == RegMaxPi:
		return byte(d.opts.Variant.MaxPi)
	case reg == RegOrder:
		return d.st.Order
	case reg == RegMode:
		return d.st.Mode
	case reg == RegType:
		return d.opts.Variant.Type
	case reg >= RegData7 && reg <= RegData0:
		return d.data[RegData0-reg]
	case reg == RegCmd:
		return d.cmd
	case reg == RegStatus:
		return d.status
	}
	return 0xFF
}

func (d *Dev) writeLocked(reg int, v byte) bool {
	switch {
	case reg == RegOrder:
		if v == 0 {
			v = 1
		}
		d.st.Order = v
		return true
	case reg == RegMode:
		d.st.Mode = v
		return true
	case reg >= RegData7 && reg <= RegData0:
		d.data[RegData0-reg] = v
	case reg == RegCmd:
		if v != 0 {
			d.cmd = v
			d.busyLeft = d.opts.Busy
			if v == CmdHubCycle {
				d.hubOn = false
			}
		}
	}
	return false
}

func (d *Dev) node() (uint16, bool) {
	n := int(d.data[0])
	if n < 1 || n > d.opts.Variant.MaxPi {
		return 0, false
	}
	return uint16(1) << (n - 1), true
}

func (d *Dev) execLocked(c byte) {
	d.cmds[c]++
	v := d.opts.Variant
	st := &d.st
	d.status = StatusOK
	switch c {
	case CmdInit, CmdRescan, CmdPing:
	case CmdOn:
		if bit, ok := d.node(); ok {
			st.Power |= bit
		}
	case CmdOff:
		if bit, ok := d.node(); ok {
			st.Power &^= bit
		}
	case CmdAlertOn:
		st.Alert = true
	case CmdAlertOff:
		st.Alert = false
	case CmdHubCycle:
		// HUB_CYCLE does not update STATUS; the hub was off while the
		// command was pending.
		d.hubOn = true
		d.hubCyc++
	case CmdLEDEnable, CmdLEDDisable:
		on := c == CmdLEDEnable
		if d.data[0] == 0 {
			st.PwrLED = on
			if on {
				st.LED = 0xFFFF
				if v.GPIOD {
					// The firmware quirk: the port write that enables
					// the LEDs also drives every power enable high.
					st.Power = d.mask()
				}
			} else {
				st.LED = 0
			}
		} else if bit, ok := d.node(); ok {
			if on {
				st.LED |= bit
			} else {
				st.LED &^= bit
			}
		}
	case CmdPwrOn:
		st.PwrLED = true
	case CmdPwrOff:
		st.PwrLED = false
	case CmdReset:
		d.bootLocked()
		return
	case CmdGetPStatus:
		if bit, ok := d.node(); ok {
			d.data[0] = b2i(st.Power&bit != 0)
		} else {
			d.data[0], d.status = 0xFF, StatusNoSuchPi
		}
	case CmdFan:
		if !v.Fan {
			d.status = StatusUnknownCmd
			break
		}
		st.Fan = d.data[0] != 0
	case CmdGetPath:
		n := int(d.data[0])
		d.data = [8]byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}
		if v.Paths == nil || n >= len(v.Paths) {
			d.status = StatusError
			break
		}
		for i, p := range v.Paths[n] {
			d.data[len(v.Paths[n])-1-i] = p
		}
	case CmdUSBBootEn, CmdUSBBootDis:
		if !v.USBBoot {
			d.status = StatusUnknownCmd
			break
		}
		if bit, ok := d.node(); ok {
			if c == CmdUSBBootEn {
				st.USBBoot |= bit
			} else {
				st.USBBoot &^= bit
			}
		}
	case CmdGetUStatus:
		if bit, ok := d.node(); ok && v.USBBoot {
			d.data[0] = b2i(st.USBBoot&bit != 0)
		} else {
			d.data[0] = 0xFF
		}
	case CmdSetOrder:
		if d.data[0] == 0 {
			d.status = StatusError
			break
		}
		st.Order = d.data[0]
	case CmdACTEnable, CmdACTDisable:
		if !v.ACT {
			d.status = StatusUnknownCmd
			break
		}
		st.ACTLED = c == CmdACTEnable
	case CmdSave:
		st.EEPROM.Order, st.EEPROM.LED, st.EEPROM.POS, st.EEPROM.USBBoot = st.Order, st.LED, st.Power, st.USBBoot
		st.EEPROM.PwrLED, st.EEPROM.ACTLED = st.PwrLED, st.ACTLED
	case CmdSaveDefault:
		st.EEPROM = EEPROM{Order: 20, PwrLED: true, ACTLED: true, LED: 0xFFFF, POS: 0, USBBoot: 0xFFFF}
	case CmdSaveOrder:
		st.EEPROM.Order = st.Order
	case CmdSaveUSBBoot:
		st.EEPROM.USBBoot = st.USBBoot
	case CmdSavePOS:
		st.EEPROM.POS = st.Power
	case CmdSaveLED:
		st.EEPROM.LED, st.EEPROM.PwrLED = st.LED, st.PwrLED
	case CmdGetData:
		d.getDataLocked()
	default:
		d.status = StatusUnknownCmd
	}
}

func (d *Dev) getDataLocked() {
	v := d.opts.Variant
	switch d.data[0] {
	case DataVersion:
		d.data[1], d.data[0] = d.opts.Firmware[0], d.opts.Firmware[1]
	case DataADCCount:
		d.data[0] = byte(len(v.ADCs))
	case DataADCRead:
		n := int(d.data[1])
		if n < 1 || n > len(v.ADCs) {
			d.status = StatusError
			return
		}
		// 5.1 V on a type 1 input (raw*6.4453125 mV), 12 V on type 2.
		raw := uint16(791)
		if v.ADCs[n-1] == 2 {
			raw = 360
		}
		d.data[0], d.data[1], d.data[2] = v.ADCs[n-1], byte(raw), byte(raw>>8)
	case DataTemp:
		raw := uint16(247 + 30) // about 24.6 °C by the tool's conversion
		d.data[0], d.data[1], d.data[2] = 2, byte(raw), byte(raw>>8)
	case DataFanStatus:
		d.data[0] = b2i(d.st.Fan)
	default:
		d.status = StatusError
	}
}

func b2i(b bool) byte {
	if b {
		return 1
	}
	return 0
}
