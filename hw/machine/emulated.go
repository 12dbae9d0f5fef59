package machine

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"

	"github.com/headnode/headnode/hw/emu"
	"github.com/headnode/headnode/hw/emu/blinkstick"
	"github.com/headnode/headnode/hw/emu/boards"
	"github.com/headnode/headnode/hw/emu/gadget"
	"github.com/headnode/headnode/hw/emu/hd44780"
	"github.com/headnode/headnode/hw/hidraw"
	"github.com/headnode/headnode/hw/lcdrom"
	"github.com/headnode/headnode/hw/machine/simspec"
)

// emulated is an emulated machine: its I2C buses, and the chips of a Spec
// on them.
type emulated struct {
	mu    sync.Mutex
	buses map[int]*emu.Bus

	boards                 *boards.Machine // nil when it could not be built...
	boardsErr              error           // ...for this reason
	hatDir, devDir, sysDir string
	usbRoot                string          // the USB tree consoles plug into (package gadget)
	lcd                    *hd44780.Module // nil when its backpack is unknown

	// The BlinkStick, in a sysfs and /dev tree of its own that the real
	// discovery (hidraw.Enumerate) reads as it reads the system's.
	ledMu   sync.Mutex
	stick   *blinkstick.Stick // nil when its kind is unknown
	hid     *blinkstick.Sysfs // nil when the tree could not be made
	hidRoot string
	plugged bool
}

// newEmulated builds the machine s describes, restoring its boards' saved
// state. What cannot be built is left out: the boards with e.boardsErr,
// the LCD or the LED with one of errs.
func newEmulated(s simspec.Spec) (e *emulated, errs []error) {
	e = &emulated{
		buses:   map[int]*emu.Bus{},
		hatDir:  filepath.Join(s.Dir, "hat"),
		devDir:  filepath.Join(s.Dir, "dev"),
		sysDir:  filepath.Join(s.Dir, "sys"),
		hidRoot: filepath.Join(s.Dir, "hid"),
		usbRoot: gadget.Dir(s.Dir),
	}
	spec := boards.Spec{Chip: s.HATChip, HATBus: s.HATBus, HATAddress: s.HATAddress, WPLink: s.WPLink, Pi: s.Pi, Dir: s.Dir}
	if s.HasHAT() {
		spec.HAT = s.HATVersion
	}
	if s.HasCTRL() {
		spec.CTRL = s.CTRL
	}
	if m, err := boards.New(spec, e.bus); err != nil {
		e.boardsErr = fmt.Errorf("emulated boards: %w", err)
	} else {
		e.boards, e.hatDir, e.devDir, e.sysDir = m, m.HATDir, m.DevDir, m.SysDir
	}

	// After the boards: a backpack set to the expander's address replaces
	// it on the bus, as it would shout it down on a real one.
	if b, ok := hd44780.BoardByName(s.LCD.Backpack); !ok {
		errs = append(errs, fmt.Errorf("emulated LCD: no backpack %q", s.LCD.Backpack))
	} else {
		rom, _ := lcdrom.ByName(s.LCD.Charset) // nil is the A00 ROM
		e.lcd = hd44780.New(b, &hd44780.Opts{Cols: s.LCD.Cols, Rows: s.LCD.Rows, ROM: rom})
		e.bus(s.LCD.Bus).Attach(s.LCD.Address, e.lcd)
	}

	if k := blinkstick.Kind(s.LED); !k.Valid() {
		errs = append(errs, fmt.Errorf("emulated LED: no BlinkStick %q", s.LED))
	} else {
		e.stick = blinkstick.New(k, nil)
	}
	// The tree is rebuilt on every start, as the kernel's is on boot.
	err := os.RemoveAll(e.hidRoot)
	if err == nil {
		e.hid, err = blinkstick.NewSysfs(e.hidRoot)
	}
	if err == nil && e.stick != nil {
		_, err = e.hid.Plug(e.stick)
		e.plugged = err == nil
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("emulated LED: %w", err))
	}
	return e, errs
}

// bus returns emulated bus n, creating it on first use.
func (e *emulated) bus(n int) *emu.Bus {
	e.mu.Lock()
	defer e.mu.Unlock()
	b, ok := e.buses[n]
	if !ok {
		b = emu.NewBus(fmt.Sprintf("emu-i2c-%d", n))
		e.buses[n] = b
	}
	return b
}

func (e *emulated) openHID(path string) (hidraw.Feature, error) {
	if e.hid == nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: os.ErrNotExist}
	}
	return e.hid.Open(path)
}

// Faults breaks an emulated machine's hardware on purpose, as the soak
// test does and as users of `headnode sim` can try.
type Faults struct{ e *emulated }

// SetI2C makes a fraction nackRate of bus n's transactions fail with a
// NACK and a fraction errorRate with a bus error; 0 turns each off. Both
// come from seeded generators, so that a run can be repeated.
func (f *Faults) SetI2C(n int, nackRate, errorRate float64) {
	b := f.e.bus(n)
	b.SetNACKRate(nackRate, 1)
	if errorRate <= 0 {
		b.SetInject(nil)
		return
	}
	rng := rand.New(rand.NewPCG(2, 3))
	// Called under the bus lock: the generator needs no other.
	b.SetInject(func(uint16, []byte) error {
		if rng.Float64() < errorRate {
			return fmt.Errorf("emulated bus error: %w", emu.ErrBus)
		}
		return nil
	})
}

// SetFlips makes a fraction rate of the reads from addr (0: any address)
// on bus n come back with one bit flipped and no error; 0 turns it off.
func (f *Faults) SetFlips(n int, rate float64, addr uint16) {
	f.e.bus(n).SetFlipRate(rate, addr, 5)
}

// I2CStats counts bus n's transactions, those failed on purpose, and the
// reads corrupted on purpose.
type I2CStats struct {
	Transactions, Injected, Flipped int64
}

// I2C returns bus n's counts.
func (f *Faults) I2C(n int) I2CStats {
	st := f.e.bus(n).Stats()
	return I2CStats{Transactions: st.Transactions, Injected: st.Injected, Flipped: st.Flipped}
}

// SetLCDPower cuts the LCD backpack's power (false) or gives it back: the
// module stops answering, and comes back in its power-on state.
func (f *Faults) SetLCDPower(on bool) error {
	if f.e.lcd == nil {
		return errors.New("the emulated machine has no LCD")
	}
	if on {
		f.e.lcd.PowerOn()
	} else {
		f.e.lcd.PowerOff()
	}
	return nil
}

// SetLEDPlugged unplugs the BlinkStick (false) or plugs it back in, under
// a new hidraw device as the kernel does.
func (f *Faults) SetLEDPlugged(on bool) error {
	e := f.e
	e.ledMu.Lock()
	defer e.ledMu.Unlock()
	if e.stick == nil || e.hid == nil {
		return errors.New("the emulated machine has no BlinkStick")
	}
	if on == e.plugged {
		return nil
	}
	var err error
	if on {
		_, err = e.hid.Plug(e.stick)
	} else {
		err = e.hid.Unplug(e.stick)
	}
	if err != nil {
		return err
	}
	e.plugged = on
	return nil
}
