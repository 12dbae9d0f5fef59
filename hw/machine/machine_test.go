package machine

import (
	"bufio"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/headnode/headnode/hw/detect"
	"github.com/headnode/headnode/hw/emu"
	"github.com/headnode/headnode/hw/emu/blinkstick"
	"github.com/headnode/headnode/hw/emu/clusterctrl"
	"github.com/headnode/headnode/hw/emu/expander"
	"github.com/headnode/headnode/hw/emu/hd44780"
	"github.com/headnode/headnode/hw/hidraw"
	"github.com/headnode/headnode/hw/machine/simspec"
	"github.com/headnode/headnode/hw/trace"
)

// spec is a ClusterHAT v2.5 and a ClusterCTRL Triple, a 16x2 LCD at 0x27
// on the HAT's bus and a BlinkStick Strip.
func spec(t *testing.T) simspec.Spec {
	return simspec.Spec{
		Board: "clusterhat+clusterctrl", HATVersion: "2.5", HATChip: "xra1200p", HATBus: 1, HATAddress: 0x20,
		CTRL: []string{"triple"},
		LCD:  simspec.LCD{Bus: 1, Address: 0x27, Backpack: "standard", Cols: 16, Rows: 2, Charset: "A00"},
		LED:  "strip",
		Dir:  t.TempDir(),
	}
}

func openSim(t *testing.T, s simspec.Spec, o Options) *Machine {
	t.Helper()
	o.Backend, o.Sim = "sim", s
	m, errs := Open(o)
	if len(errs) > 0 || m.BoardsErr() != nil {
		t.Fatalf("Open: %v, boards: %v", errs, m.BoardsErr())
	}
	return m
}

// The names the configuration accepts are exactly those the emulators
// model: a name added on one side only fails here.
func TestVocabularyIsTheEmulators(t *testing.T) {
	var backpacks []simspec.Backpack
	for _, b := range hd44780.Boards {
		backpacks = append(backpacks, simspec.Backpack{Name: b.Name, Expander: b.Chip.String()})
	}
	if !slices.Equal(backpacks, simspec.Backpacks) {
		t.Errorf("simspec.Backpacks %v, the emulator has %v", simspec.Backpacks, backpacks)
	}
	var kinds []string
	for _, k := range blinkstick.Kinds {
		kinds = append(kinds, string(k))
	}
	if !slices.Equal(kinds, simspec.LEDs) {
		t.Errorf("simspec.LEDs %v, the emulator has %v", simspec.LEDs, kinds)
	}
	if ctrls := slices.Sorted(maps.Keys(clusterctrl.Variants)); !slices.Equal(ctrls, slices.Sorted(slices.Values(simspec.CTRLs))) {
		t.Errorf("simspec.CTRLs %v, the emulator has %v", simspec.CTRLs, ctrls)
	}
	for _, chip := range simspec.HATChips {
		s := spec(t)
		s.Board, s.HATChip = "clusterhat", chip
		m := openSim(t, s, Options{})
		if got := strings.ToLower(m.emu.boards.Expander.Chip().String()); got != chip {
			t.Errorf("HAT chip %q built a %s", chip, got)
		}
	}
}

// Every value of the vocabulary builds a machine with no part missing.
func TestEveryNameBuilds(t *testing.T) {
	for _, b := range simspec.Boards {
		s := spec(t)
		s.Board, s.CTRL = b, simspec.CTRLs
		openSim(t, s, Options{})
	}
	for _, b := range simspec.Backpacks {
		s := spec(t)
		s.LCD.Backpack = b.Name
		if _, ok := openSim(t, s, Options{}).Glass(); !ok {
			t.Errorf("backpack %s: no glass", b.Name)
		}
	}
	for _, k := range simspec.LEDs {
		s := spec(t)
		s.LED = k
		infos, err := hidraw.Enumerate(openSim(t, s, Options{}).HIDRoot())
		if err != nil || len(infos) != 1 {
			t.Errorf("LED %s: %v %v", k, infos, err)
		}
	}
}

// The emulated machine shows its boards where discovery looks, its chips
// on the buses the Spec names, its LED among its HID devices, and what is
// on the LCD's glass.
func TestEmulatedMachine(t *testing.T) {
	s := spec(t)
	m := openSim(t, s, Options{})
	if !m.Emulated() || m.Faults() == nil {
		t.Fatal("not emulated")
	}
	hat, err := detect.ReadHAT(m.HATDir())
	if err != nil || hat.Product != "ZC4:ClusterHAT" || hat.ProductVer != 0x25 {
		t.Errorf("HAT EEPROM %+v, %v", hat, err)
	}
	if buses, err := detect.ClusterCTRLBuses(m.DevDir()); err != nil || !slices.Equal(buses, []int{11}) {
		t.Errorf("ClusterCTRL buses %v, %v", buses, err)
	}

	bus, err := m.I2C(1)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := m.I2C(1); again != bus {
		t.Error("bus 1 opened twice")
	}
	r := make([]byte, 1)
	if err := bus.Tx(0x20, []byte{expander.RegConfig}, r); err != nil || r[0] != 0xff {
		t.Errorf("expander at 0x20: %02x, %v (want its power-on configuration ff)", r, err)
	}
	if err := bus.Tx(0x27, []byte{0x00}, nil); err != nil {
		t.Errorf("LCD backpack at 0x27: %v", err)
	}
	if err := bus.Tx(0x50, []byte{0x00}, nil); !errors.Is(err, emu.ErrNACK) {
		t.Errorf("nothing at 0x50 answered %v, want a NACK", err)
	}
	ctrl, _ := m.I2C(11)
	if err := ctrl.Tx(clusterctrl.Address, []byte{0x00}, r); err != nil {
		t.Errorf("ClusterCTRL on bus 11: %v", err)
	}
	if open := m.OpenI2C(); len(open) != 2 || open[0].N != 1 || open[1].N != 11 || open[0].Transactions() != 3 || open[0].Errors() != 1 {
		t.Errorf("open buses %+v", open)
	}

	if rows, ok := m.Glass(); !ok || !slices.Equal(rows, []string{strings.Repeat(" ", 16), strings.Repeat(" ", 16)}) {
		t.Errorf("glass %q, %v; want two blank rows", rows, ok)
	}

	infos, err := hidraw.Enumerate(m.HIDRoot())
	if err != nil || len(infos) != 1 || infos[0].Serial != "BS000001-3.0" || infos[0].BCDDevice != 0x0201 || !infos[0].HasBCD {
		t.Fatalf("HID devices %+v, %v; want one BlinkStick Strip", infos, err)
	}
	dev, err := m.OpenHID(infos[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	if err := dev.SetFeature([]byte{1, 0xff, 0, 0}); err != nil {
		t.Errorf("set colour: %v", err)
	}
	if _, err := m.OpenHID(filepath.Join(m.HIDRoot(), "dev/hidraw9")); err == nil {
		t.Error("opened a device that is not there")
	}
}

// Faults break the hardware the way it breaks: NACKs and bus errors, an
// LCD without power, a BlinkStick unplugged and plugged back in under a
// new name.
func TestFaults(t *testing.T) {
	m := openSim(t, spec(t), Options{})
	f := m.Faults()
	bus, _ := m.I2C(1)

	f.SetI2C(1, 1, 0)
	if err := bus.Tx(0x20, []byte{0}, make([]byte, 1)); !errors.Is(err, emu.ErrNACK) {
		t.Errorf("nack_rate 1: %v", err)
	}
	f.SetI2C(1, 0, 1)
	if err := bus.Tx(0x20, []byte{0}, make([]byte, 1)); !errors.Is(err, emu.ErrBus) {
		t.Errorf("error_rate 1: %v", err)
	}
	if st := f.I2C(1); st.Transactions != 2 || st.Injected != 2 {
		t.Errorf("stats %+v, want 2 transactions, both injected", st)
	}
	f.SetI2C(1, 0, 0)
	if err := bus.Tx(0x20, []byte{0}, make([]byte, 1)); err != nil {
		t.Errorf("faults off: %v", err)
	}

	if err := f.SetLCDPower(false); err != nil {
		t.Fatal(err)
	}
	if err := bus.Tx(0x27, []byte{0}, nil); !errors.Is(err, emu.ErrNACK) {
		t.Errorf("LCD without power answered: %v", err)
	}
	f.SetLCDPower(true)
	if err := bus.Tx(0x27, []byte{0}, nil); err != nil {
		t.Errorf("LCD with power back: %v", err)
	}

	before, _ := hidraw.Enumerate(m.HIDRoot())
	dev, _ := m.OpenHID(before[0].Path)
	if err := f.SetLEDPlugged(false); err != nil {
		t.Fatal(err)
	}
	if infos, _ := hidraw.Enumerate(m.HIDRoot()); len(infos) != 0 {
		t.Errorf("unplugged, still listed: %+v", infos)
	}
	if err := dev.SetFeature([]byte{1, 0, 0, 0}); !errors.Is(err, hidraw.ErrUnplugged) {
		t.Errorf("report to an unplugged stick: %v", err)
	}
	f.SetLEDPlugged(false) // twice is once
	if err := f.SetLEDPlugged(true); err != nil {
		t.Fatal(err)
	}
	f.SetLEDPlugged(true)
	after, _ := hidraw.Enumerate(m.HIDRoot())
	if len(after) != 1 || after[0].Serial != before[0].Serial || after[0].Name == before[0].Name {
		t.Errorf("replugged: %+v, before %+v; want the same stick under a new name", after, before)
	}
}

// The chips keep their state across a new Machine on the same directory,
// as real boards keep power across a restart of the daemon.
func TestEmulatedBoardsOutliveTheMachine(t *testing.T) {
	s := spec(t)
	bus, _ := openSim(t, s, Options{}).I2C(1)
	if err := bus.Tx(0x20, []byte{expander.RegOutput, 0x0a}, nil); err != nil {
		t.Fatal(err)
	}
	bus, _ = openSim(t, s, Options{}).I2C(1)
	r := make([]byte, 1)
	if err := bus.Tx(0x20, []byte{expander.RegOutput}, r); err != nil || r[0] != 0x0a {
		t.Errorf("output register after reopening %02x, %v; want 0a", r, err)
	}

	s.Board, s.HATVersion = "clusterhat", "1.5"
	line, err := openSim(t, s, Options{}).GPIO(6)
	if err != nil {
		t.Fatal(err)
	}
	line.Drive(true)
	line, _ = openSim(t, s, Options{}).GPIO(6)
	if out, high, err := line.State(); !out || !high || err != nil {
		t.Errorf("GPIO6 after reopening: output %v high %v %v", out, high, err)
	}
	if _, err := openSim(t, s, Options{}).GPIO(28); err == nil {
		t.Error("GPIO28 is not on the header")
	}
}

// Boards that cannot be built are reported and the rest of the machine
// goes on.
func TestEmulatedBoardsUnavailable(t *testing.T) {
	s := spec(t)
	s.Dir = filepath.Join(s.Dir, "file")
	os.WriteFile(s.Dir, nil, 0o644)
	m, errs := Open(Options{Backend: "sim", Sim: s})
	if m.BoardsErr() == nil || !strings.HasPrefix(m.BoardsErr().Error(), "emulated boards: ") {
		t.Errorf("boards: %v", m.BoardsErr())
	}
	if len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), "emulated LED: ") {
		t.Errorf("errors %v, want the LED's", errs)
	}
	if _, err := m.GPIO(6); err == nil {
		t.Error("GPIO without boards")
	}
	bus, err := m.I2C(1)
	if err != nil || bus.Tx(0x27, []byte{0}, nil) != nil {
		t.Errorf("the LCD went with the boards: %v", err)
	}
}

// Both traces see what crosses the seam, one JSON line each.
func TestTraces(t *testing.T) {
	dir := t.TempDir()
	i2cLog, _ := trace.Open(filepath.Join(dir, "i2c.jsonl"))
	hidLog, _ := trace.Open(filepath.Join(dir, "hid.jsonl"))
	m := openSim(t, spec(t), Options{I2CTrace: i2cLog, HIDTrace: hidLog})
	bus, _ := m.I2C(1)
	bus.Tx(0x27, []byte{0x0c}, nil)
	infos, _ := hidraw.Enumerate(m.HIDRoot())
	dev, _ := m.OpenHID(infos[0].Path)
	m.TraceHID(dev, infos[0].Serial).SetFeature([]byte{1, 0xff, 0, 0})
	i2cLog.Close()
	hidLog.Close()

	lines := func(name string) []map[string]any {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var out []map[string]any
		for sc := bufio.NewScanner(f); sc.Scan(); {
			var e map[string]any
			json.Unmarshal(sc.Bytes(), &e)
			out = append(out, e)
		}
		return out
	}
	if l := lines("i2c.jsonl"); len(l) != 1 || l[0]["addr"] != 39.0 || l[0]["w"] != "0c" {
		t.Errorf("I2C trace %v", l)
	}
	if l := lines("hid.jsonl"); len(l) != 1 || l[0]["dev"] != "BS000001-3.0" || l[0]["set"] != "01ff0000" {
		t.Errorf("HID trace %v", l)
	}
	if m2, _ := Open(Options{}); m2.TraceHID(dev, "x") != dev {
		t.Error("without a trace TraceHID wrapped the device")
	}
}

// The real machine is this system's: its roots, its hidraw devices, and
// I2C buses that are opened (here: found missing) on demand.
func TestRealMachine(t *testing.T) {
	m, errs := Open(Options{Backend: "auto", Sim: spec(t)})
	if len(errs) > 0 || m.BoardsErr() != nil || m.Emulated() || m.Faults() != nil {
		t.Fatalf("real machine: %v %v emulated %v faults %v", errs, m.BoardsErr(), m.Emulated(), m.Faults())
	}
	if m.HATDir() != detect.HATDir || m.DevDir() != detect.DevDir || m.HIDRoot() != "" {
		t.Errorf("roots %q %q %q", m.HATDir(), m.DevDir(), m.HIDRoot())
	}
	if _, ok := m.Glass(); ok {
		t.Error("a real LCD's glass cannot be read")
	}
	if _, err := os.Stat("/dev/i2c-250"); err == nil {
		t.Skip("this machine has an I2C bus 250")
	}
	if _, err := m.I2C(250); err == nil || !strings.Contains(err.Error(), "/dev/i2c-250 does not exist") {
		t.Errorf("bus 250: %v", err)
	}
	if len(m.OpenI2C()) != 0 {
		t.Error("a bus that failed to open is kept")
	}
}
