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

// Variant describes one board, from its config.h and config.c.
type Variant struct {
	Name  string
	Type  byte // CTRL_TYPE; Single and A+6 share 0x03
	MaxPi int  // CTRL_MAXPI
	// PID is the USB product ID (vendor 0x3171), from usbconfighw.h.
	PID uint16
	// GPIOD boards (pHAT, Single) switch their nodes through named pins
	// and keep their LED enables differently (see the package doc).
	GPIOD bool
	// Fan: the FAN command is compiled in (FANENPORT or FANSTATUS);
	// FanPin: it drives a fan (FANENPORT), else it only records it.
	Fan, FanPin bool
	USBBoot     bool // USBBOOT lines
	ACT         bool // LEDACTPORT: an ACT LED
	Alert       bool // LEDALERTPORT: an ALERT LED
	Hub         bool // HUBENPORT: a hub the firmware can switch
	NodeLEDs    bool // a LED per node (not NOPLED)
	// ADCs are the types of the voltage ADCs (1: 5 V/2, 2: VIN divider);
	// Temp: the AVR's temperature sensor is read (ADCTEMP).
	ADCs []byte
	Temp bool
	// Paths are the GETPATH answers: [0] the controller, [n] node n; nil
	// when the board has no paths (NOPATHS, the Stack).
	Paths [][]byte
}

// The boards of burtyb/ClusterCTRL (DA omitted: it is a HAT multiplexer,
// not a node power board).
var (
	Single = Variant{Name: "Single", Type: 0x03, MaxPi: 1, PID: 0x0015, GPIOD: true, USBBoot: true, Alert: true, Hub: true, NodeLEDs: true,
		Paths: [][]byte{{2}, {4}}}
	PHAT = Variant{Name: "pHAT", Type: 0x02, MaxPi: 2, PID: 0x0012, GPIOD: true, Alert: true, Hub: true, NodeLEDs: true,
		Paths: [][]byte{{2}, {4}, {3}}}
	Triple = Variant{Name: "Triple", Type: 0x01, MaxPi: 3, PID: 0x0014, Fan: true, FanPin: true, USBBoot: true, Alert: true, Hub: true, NodeLEDs: true,
		ADCs: []byte{1}, Temp: true, Paths: [][]byte{{1}, {4}, {3}, {2}}}
	APlus6 = Variant{Name: "A+6", Type: 0x03, MaxPi: 5, PID: 0x0013, Fan: true, FanPin: true, ACT: true, Alert: true, Hub: true, NodeLEDs: true,
		ADCs: []byte{1, 1}, Temp: true, Paths: [][]byte{{4, 1}, {1}, {2}, {3}, {4, 2}, {4, 4}}}
	Stack = Variant{Name: "Stack", Type: 0x04, MaxPi: 5, PID: 0x0016, Fan: true, ADCs: []byte{1, 2}, Temp: true}
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

// EEPROM is the board's persistent settings (one bit per node): address
// 0x01 order, 0x02 PWR LED, 0x03 ACT LED, 0x10 LED enables, 0x30 power-on
// state, 0x50 USBBOOT.
type EEPROM struct {
	Order   byte `json:"order"`
	PwrLED  bool `json:"pwr_led"`
	ACTLED  bool `json:"act_led"`
	LED     byte `json:"led"`
	POS     byte `json:"pos"`
	USBBoot byte `json:"usbboot"`
}

// factoryEEPROM is what SAVEDEFAULTS writes.
func factoryEEPROM() EEPROM {
	return EEPROM{Order: 20, PwrLED: true, ACTLED: true, LED: 0xFF, POS: 0x00, USBBoot: 0xFF}
}

// State is the board's whole state, for saving an emulated board across
// daemon restarts: the EEPROM, the firmware's RAM (struct state and the
// registers it keeps) and the output pins.
type State struct {
	EEPROM EEPROM `json:"eeprom"`
	Order  byte   `json:"order"`
	Mode   byte   `json:"mode"`
	// The firmware's state struct: enp (power), enpled, usbboot, enpwr,
	// enact, and fanstatus.
	Power   byte `json:"power"`
	LED     byte `json:"led"`
	USBBoot byte `json:"usbboot"`
	PwrLED  bool `json:"pwr_led"`
	ACTLED  bool `json:"act_led"`
	FanReq  byte `json:"fan_req"`
	// Pins: node power enables, node LEDs, USBBOOT lines, the ALERT LED
	// and the fan.
	PowerPins   byte `json:"power_pins"`
	LEDPins     byte `json:"led_pins"`
	USBBootPins byte `json:"usbboot_pins"`
	Alert       bool `json:"alert"`
	Fan         bool `json:"fan"`
}

// Dev is one emulated board. It implements emu.Device at address 0x20.
type Dev struct {
	opts Opts

	mu       sync.Mutex
	st       State
	data     [8]byte // DATA0..DATA7
	cmd      byte
	status   byte
	ptr      byte // the register pointer (emulated_address)
	busyLeft int
	hubOn    bool
	hubCyc   int
	cooling  byte // cooling requests from the nodes (Stack)
	adc      [2]uint16
	temp     uint16
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
	// 5.1 V on a type 1 input (raw*6.4453125 mV), 12.0 V on type 2, and
	// about 24.6 °C by the tool's temperature conversion.
	for i, typ := range opts.Variant.ADCs {
		d.adc[i] = 791
		if typ == 2 {
			d.adc[i] = 360
		}
	}
	d.temp = 247 + 30
	d.st.EEPROM = factoryEEPROM()
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

// bootLocked is main() up to the event loop (lines 1220-1452): RAM
// zeroed, the hub enabled, ALERT off, the PWR LED, ACT enable, LED
// enables, power-on state and USBBOOT from EEPROM, then each node whose
// power-on bit is set switched on in turn, its LED lit if enabled, with
// ALERT lit (and AUTOONDELAY waited) before each; ALERT off at the end.
func (d *Dev) bootLocked() {
	v := d.opts.Variant
	e := d.st.EEPROM
	d.st = State{EEPROM: e, Order: e.Order, PwrLED: e.PwrLED, LED: e.LED, Power: e.POS}
	if v.ACT {
		d.st.ACTLED = e.ACTLED
	}
	if v.USBBoot {
		d.st.USBBoot = e.USBBoot
		d.st.USBBootPins = e.USBBoot & d.mask()
	}
	d.data = [8]byte{}
	d.cmd, d.status, d.busyLeft, d.ptr = 0, 0, 0, 0
	d.hubOn = true
	// The emulation applies the auto power-on at once; ALERT ends off.
	d.st.PowerPins = e.POS & d.mask()
	if v.NodeLEDs {
		d.st.LEDPins = e.POS & e.LED & d.mask()
	}
}

func (d *Dev) mask() byte { return byte(1)<<d.opts.Variant.MaxPi - 1 }

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
	return d.st.PowerPins&(1<<(n-1)) != 0
}

// NodeLED reports whether node n's LED is lit.
func (d *Dev) NodeLED(n int) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.st.LEDPins&(1<<(n-1)) != 0
}

// USBBoot reports whether node n's USBBOOT line is driven.
func (d *Dev) USBBoot(n int) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.st.USBBootPins&(1<<(n-1)) != 0
}

// PwrLED, Alert, Hub, ACT and Fan report the board's power LED, ALERT
// LED, hub, ACT LED enable and fan.
func (d *Dev) PwrLED() bool { d.mu.Lock(); defer d.mu.Unlock(); return d.st.PwrLED }
func (d *Dev) Alert() bool  { d.mu.Lock(); defer d.mu.Unlock(); return d.st.Alert }
func (d *Dev) Hub() bool    { d.mu.Lock(); defer d.mu.Unlock(); return d.hubOn }
func (d *Dev) ACT() bool    { d.mu.Lock(); defer d.mu.Unlock(); return d.st.ACTLED }
func (d *Dev) Fan() bool    { d.mu.Lock(); defer d.mu.Unlock(); return d.st.Fan }

// EEPROMContent returns the saved settings.
func (d *Dev) EEPROMContent() EEPROM { d.mu.Lock(); defer d.mu.Unlock(); return d.st.EEPROM }

// HubCycles counts completed HUB_CYCLE commands.
func (d *Dev) HubCycles() int { d.mu.Lock(); defer d.mu.Unlock(); return d.hubCyc }

// Commands returns how many times command code c was executed.
func (d *Dev) Commands(c byte) int { d.mu.Lock(); defer d.mu.Unlock(); return d.cmds[c] }

// Order returns the order value in RAM (what REG_ORDER reads).
func (d *Dev) Order() byte { d.mu.Lock(); defer d.mu.Unlock(); return d.st.Order }

// SetCoolingRequests sets the Stack's cooling request lines (bit 0 = P1).
func (d *Dev) SetCoolingRequests(b byte) { d.mu.Lock(); defer d.mu.Unlock(); d.cooling = b }

// SetADC sets the raw reading of voltage ADC n (1-based) and SetTemp the
// temperature sensor's.
func (d *Dev) SetADC(n int, raw uint16) { d.mu.Lock(); defer d.mu.Unlock(); d.adc[n-1] = raw }
func (d *Dev) SetTemp(raw uint16)       { d.mu.Lock(); defer d.mu.Unlock(); d.temp = raw }

// Save returns the whole state.
func (d *Dev) Save() State { d.mu.Lock(); defer d.mu.Unlock(); return d.st }

// Restore loads a state from Save.
func (d *Dev) Restore(s State) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.st = s
	d.hubOn = true
}

// Tx implements emu.Device. Each Tx is what i2c-tiny-usb sends as up to
// two messages: w (the register select and any data) and r (the read).
func (d *Dev) Tx(w, r []byte) error {
	d.mu.Lock()
	changed := d.tickLocked()
	var err error
	if len(w) > 0 && d.cmd != 0 {
		// i2c_do_emulated: while a command is pending every message that
		// is not a read is NAKed, a register select included.
		err = fmt.Errorf("clusterctrl: busy with command 0x%02x: %w", d.cmd, emu.ErrNACK)
	} else {
		if len(w) > 0 {
			d.ptr = w[0]
		}
		for _, v := range w[min(1, len(w)):] {
			if d.writeLocked(d.ptr, v) {
				changed = true
			}
			d.ptr++
		}
		for i := range r {
			r[i] = d.readLocked(d.ptr)
			d.ptr++
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

func (d *Dev) readLocked(reg byte) byte {
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

func (d *Dev) writeLocked(reg, v byte) bool {
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
			if v == CmdHubCycle && d.opts.Variant.Hub {
				d.hubOn = false
			}
		}
	}
	return false
}

// node returns DATA0's bit when it names a node (1..MAXPI).
func (d *Dev) node() (byte, bool) {
	n := int(d.data[0])
	if n < 1 || n > d.opts.Variant.MaxPi {
		return 0, false
	}
	return byte(1) << (n - 1), true
}

// execLocked runs one command as the firmware's event loop does (lines
// 1458-2045).
func (d *Dev) execLocked(c byte) {
	d.cmds[c]++
	v := d.opts.Variant
	st := &d.st
	switch c {
	case CmdOn:
		if bit, ok := d.node(); ok {
			st.PowerPins |= bit
			st.Power |= bit
			if v.NodeLEDs && st.LED&bit != 0 {
				st.LEDPins |= bit
			}
		}
		d.status = StatusOK
	case CmdOff:
		if bit, ok := d.node(); ok {
			st.PowerPins &^= bit
			st.Power &^= bit
			st.LEDPins &^= bit
		}
		d.status = StatusOK
	case CmdUSBBootEn, CmdUSBBootDis:
		if !v.USBBoot {
			d.status = StatusUnknownCmd
			break
		}
		if bit, ok := d.node(); ok {
			if c == CmdUSBBootEn {
				st.USBBootPins |= bit
				st.USBBoot |= bit
			} else {
				st.USBBootPins &^= bit
				st.USBBoot &^= bit
			}
		}
		d.status = StatusOK
	case CmdLEDEnable:
		d.ledEnableLocked()
		d.status = StatusOK
	case CmdLEDDisable:
		if d.data[0] == 0 {
			st.PwrLED = false
			st.LEDPins = 0
			st.LED = 0
		} else if bit, ok := d.node(); ok {
			st.LEDPins &^= bit
			st.LED &^= bit
		}
		d.status = StatusOK
	case CmdAlertOn, CmdAlertOff:
		if v.Alert {
			st.Alert = c == CmdAlertOn
		}
		d.status = StatusOK
	case CmdSave:
		st.EEPROM.Order = st.Order
		d.saveLEDLocked()
		st.EEPROM.POS = st.Power
		if v.USBBoot {
			st.EEPROM.USBBoot = st.USBBoot
		}
		d.status = StatusOK
	case CmdSaveUSBBoot:
		if v.USBBoot {
			st.EEPROM.USBBoot = st.USBBoot
		}
		d.status = StatusOK
	case CmdSaveOrder:
		st.EEPROM.Order = st.Order
		d.status = StatusOK
	case CmdSavePOS:
		st.EEPROM.POS = st.Power
		d.status = StatusOK
	case CmdSaveLED:
		d.saveLEDLocked()
		d.status = StatusOK
	case CmdHubCycle:
		// The hub was off while the command was pending (at least DATA0
		// x 10 ms, 100 ms minimum); STATUS is left as it was.
		if d.data[0] < 10 {
			d.data[0] = 10
		}
		d.hubOn = true
		d.hubCyc++
	case CmdSaveDefault:
		e := factoryEEPROM()
		if !v.USBBoot {
			e.USBBoot = st.EEPROM.USBBoot
		}
		st.EEPROM = e
		d.status = StatusOK
	case CmdPwrOn, CmdPwrOff:
		st.PwrLED = c == CmdPwrOn
		d.status = StatusOK
	case CmdReset:
		// The watchdog resets the MCU: RAM, STATUS included, starts over.
		d.bootLocked()
	case CmdGetPStatus:
		if bit, ok := d.node(); ok {
			if v.GPIOD {
				d.data[0] = b2i(st.Power&bit != 0)
			} else {
				d.data[0] = b2i(st.PowerPins&bit != 0)
			}
			d.status = StatusOK
		} else {
			d.data[0], d.status = 0xFF, StatusNoSuchPi
		}
	case CmdGetUStatus:
		bit, ok := d.node()
		switch {
		case !v.USBBoot || !ok:
			d.data[0] = 0xFF
		case v.GPIOD:
			d.data[0] = b2i(st.USBBoot&bit != 0)
		default:
			d.data[0] = b2i(st.USBBootPins&bit != 0)
		}
		d.status = StatusOK
	case CmdFan:
		if !v.Fan {
			d.status = StatusUnknownCmd
			break
		}
		if v.FanPin {
			st.Fan = d.data[0] == 1
		}
		st.FanReq = d.data[0]
		d.status = StatusOK
	case CmdGetData:
		d.getDataLocked()
	case CmdSetOrder:
		if d.data[0] > 0 {
			st.Order = d.data[0]
			d.status = StatusOK
		} else {
			d.status = StatusError
		}
	case CmdACTEnable, CmdACTDisable:
		if !v.ACT {
			d.status = StatusUnknownCmd
			break
		}
		st.ACTLED = c == CmdACTEnable
		d.status = StatusOK
	case CmdGetPath:
		n := int(d.data[0])
		if v.Paths == nil || n > v.MaxPi {
			d.data = [8]byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}
			d.status = StatusError
			break
		}
		// paths[n][0] goes to DATA7, paths[n][7] to DATA0.
		p := v.Paths[n]
		for i := range 8 {
			b := byte(0xFF)
			if i < len(p) {
				b = p[i]
			}
			d.data[7-i] = b
		}
		d.status = StatusOK
	default:
		// INIT, RESCAN, PING, HUB_ON and HUB_OFF included: no branch.
		d.status = StatusUnknownCmd
	}
}

// ledEnableLocked is LED_EN (lines 1618-1675).
func (d *Dev) ledEnableLocked() {
	v := d.opts.Variant
	st := &d.st
	if d.data[0] == 0 {
		st.PwrLED = true
		if v.GPIOD {
			// Every node's power enable and LED driven high, and every
			// bit of both set: the firmware powers the nodes on.
			st.PowerPins |= d.mask()
			st.LEDPins |= d.mask()
			st.Power, st.LED = 0xFF, 0xFF
			return
		}
		st.LED |= d.mask()
		if v.NodeLEDs {
			st.LEDPins |= st.Power & d.mask()
		}
		return
	}
	bit, ok := d.node()
	if !ok {
		return
	}
	if v.GPIOD {
		// Recorded, and lit, only while the node is powered.
		if st.Power&bit != 0 {
			st.LEDPins |= bit
			st.LED |= bit
		}
		return
	}
	st.LED |= bit
	if v.NodeLEDs && st.Power&bit != 0 {
		st.LEDPins |= bit
	}
}

// saveLEDLocked is save_led (lines 786-811).
func (d *Dev) saveLEDLocked() {
	st := &d.st
	st.EEPROM.PwrLED, st.EEPROM.LED = st.PwrLED, st.LED
	if d.opts.Variant.ACT {
		st.EEPROM.ACTLED = st.ACTLED
	}
}

// getDataLocked is GETDATA (lines 1907-1994): STATUS 0x01 unless a
// sub-command the board has answers.
func (d *Dev) getDataLocked() {
	v := d.opts.Variant
	d.status = StatusError
	switch d.data[0] {
	case DataVersion:
		d.data = [8]byte{d.opts.Firmware[1], d.opts.Firmware[0], 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}
		d.status = StatusOK
	case DataADCCount:
		d.data[0] = byte(len(v.ADCs))
		d.status = StatusOK
	case DataADCRead:
		n := int(d.data[1])
		if n < 1 || n > len(v.ADCs) {
			return
		}
		raw := d.adc[n-1]
		d.data[0], d.data[1], d.data[2] = v.ADCs[n-1], byte(raw), byte(raw>>8)
		d.status = StatusOK
	case DataTemp:
		if !v.Temp {
			return
		}
		d.data[0], d.data[1], d.data[2] = 2, byte(d.temp), byte(d.temp>>8)
		d.status = StatusOK
	case DataFanStatus:
		d.data[0] = d.st.FanReq | d.cooling<<1
		d.status = StatusOK
	}
}

func b2i(b bool) byte {
	if b {
		return 1
	}
	return 0
}
