package power

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"periph.io/x/conn/v3/i2c"

	"github.com/headnode/headnode/hw/emu"
	"github.com/headnode/headnode/hw/emu/boards"
	"github.com/headnode/headnode/power/board"
	"github.com/headnode/headnode/power/clusterctrl"
	"github.com/headnode/headnode/power/clusterhat"
)

// emulated is a whole emulated machine (hw/emu/boards) and the manager
// that runs its boards.
type emulated struct {
	*rig
	em    *boards.Machine
	buses map[int]*emu.Bus
	dir   string
}

func newEmulated(t *testing.T, s boards.Spec) *emulated {
	t.Helper()
	e := &emulated{rig: &rig{t: t}, buses: map[int]*emu.Bus{}, dir: t.TempDir()}
	if s.HAT != "" {
		s.HATBus, s.HATAddress = 1, 0x20
	}
	s.Dir = filepath.Join(e.dir, "sim")
	em, err := boards.New(s, e.bus)
	if err != nil {
		t.Fatal(err)
	}
	e.em, e.chip = em, em.Expander
	e.state = filepath.Join(e.dir, "power.json")
	return e
}

func (e *emulated) bus(n int) *emu.Bus {
	if e.buses[n] == nil {
		e.buses[n] = emu.NewBus(fmt.Sprintf("emu-i2c-%d", n))
	}
	return e.buses[n]
}

// start detects the boards and runs a manager for them (a daemon start).
func (e *emulated) start(o Options) {
	e.t.Helper()
	hw := Hardware{HATDir: e.em.HATDir, DevDir: e.em.DevDir,
		I2C:  func(n int) (i2c.Bus, error) { return e.bus(n), nil },
		GPIO: func(n int) (clusterhat.Line, error) { return e.em.GPIO(n) }}
	c, problems := Detect(hw, DetectOptions{Board: "auto", HATBus: 1, HATAddress: 0x20, HAT: clusterhat.DefaultOpts, CTRL: clusterctrl.DefaultOpts})
	if len(problems) > 0 {
		e.t.Fatal(problems)
	}
	o.Stagger, o.Boot, o.StateFile, o.ReadInterval = time.Second, BootOff, e.state, 5*time.Second
	o.SysRoot = e.em.SysDir
	o.Report = func(rep Report) { e.mu.Lock(); e.last = rep; e.mu.Unlock() }
	e.m = NewManager(c, o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.m.Run(ctx); close(done) }()
	e.stop = func() { cancel(); <-done }
	e.t.Cleanup(e.stop)
	synctest.Wait()
}

func (e *emulated) result(req Request) Result {
	e.t.Helper()
	res, err := e.m.Do(context.Background(), req)
	if err != nil {
		e.t.Fatalf("%+v: %v", req, err)
	}
	synctest.Wait()
	return res
}

// Bulk on lights the board's ALERT for the whole staggered sequence and
// puts it back after, as the official tool does; an ALERT already on
// stays on; bulk off lights it while the nodes go off.
func TestBulkPowerLightsAlertMeanwhile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEmulated(t, boards.Spec{HAT: "2.5"})
		e.start(Options{})
		alert := func() bool { return e.em.Expander.Level(6) }
		e.result(Request{Op: "on", Nodes: []int{1, 2, 3, 4}, All: true})
		if !alert() {
			t.Fatal("ALERT off while the nodes are queued")
		}
		e.advance(2 * time.Second)
		if got := e.pins(); !alert() || got != "1110" {
			t.Errorf("2 s in: ALERT %v, nodes %s; want ALERT on, 1110", alert(), got)
		}
		e.advance(time.Second)
		if alert() || e.pins() != "1111" {
			t.Errorf("after the last node: ALERT %v, nodes %s", alert(), e.pins())
		}
		// Named nodes are not a bulk sequence.
		e.result(Request{Op: "off", Nodes: []int{3}})
		e.result(Request{Op: "on", Nodes: []int{3}})
		if alert() {
			t.Error("ALERT lit for one named node")
		}
		// An ALERT already on is left on.
		e.result(Request{Op: "alert", On: true})
		e.result(Request{Op: "off", Nodes: []int{1, 2, 3, 4}, All: true})
		if !alert() || e.pins() != "0000" {
			t.Errorf("after bulk off with ALERT on: ALERT %v, nodes %s", alert(), e.pins())
		}
		e.result(Request{Op: "alert", On: false})
		e.result(Request{Op: "off", Nodes: []int{1, 2, 3, 4}, All: true})
		if alert() {
			t.Error("bulk off left ALERT on")
		}
	})
}

// A ClusterCTRL's ALERT cannot be read back: it is lit for the sequence
// and switched off after, as the official tool sends ALERT_ON and
// ALERT_OFF.
func TestBulkPowerAlertOnClusterCTRL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEmulated(t, boards.Spec{CTRL: []string{"triple"}})
		e.start(Options{})
		fw := e.em.CTRL[boards.FirstCTRLBus]
		e.result(Request{Op: "on", Nodes: []int{1, 2, 3}, All: true})
		if !fw.Alert() || !fw.Powered(1) || fw.Powered(2) {
			t.Fatalf("bulk on started: ALERT %v, p1 %v p2 %v", fw.Alert(), fw.Powered(1), fw.Powered(2))
		}
		e.advance(2 * time.Second)
		if fw.Alert() || !fw.Powered(3) {
			t.Errorf("bulk on done: ALERT %v, p3 %v", fw.Alert(), fw.Powered(3))
		}
	})
}

// setorder renumbers the nodes as the official tool would on its next
// run; what was asked of each node moves with it, on disk too.
func TestSetOrderRenumbers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEmulated(t, boards.Spec{CTRL: []string{"triple", "phat"}}) // orders 20 (bus 11), 21 (bus 12)
		e.start(Options{})
		triple, phat := e.em.CTRL[11], e.em.CTRL[12]
		e.result(Request{Op: "on", Nodes: []int{1}}) // the Triple's P1
		e.result(Request{Op: "on", Nodes: []int{5}}) // the pHAT's P2
		e.advance(time.Second)                       // its staggered turn
		e.result(Request{Op: "setorder", Order: 20, NewOrder: 30})
		if triple.Order() != 30 || triple.EEPROMContent().Order != 20 {
			t.Errorf("Triple order %d, EEPROM %d", triple.Order(), triple.EEPROMContent().Order)
		}
		e.wantReport("renumbered", func(r Report) bool {
			return r.Boards[0].Info.Model == "ClusterCTRL pHAT" && r.Boards[0].First == 1 && r.Boards[1].First == 3 &&
				fmt.Sprint(r.Requested) == "[ on on  ]"
		})
		// p3 is now the Triple's P1.
		e.result(Request{Op: "off", Nodes: []int{3}})
		if triple.Powered(1) || !phat.Powered(2) {
			t.Errorf("off p3 after renumbering: Triple P1 %v, pHAT P2 %v", triple.Powered(1), phat.Powered(2))
		}
		if _, err := e.m.Do(context.Background(), Request{Op: "setorder", Order: 20, NewOrder: 22}); !errors.As(err, new(*InputError)) || err.Error() != "no ClusterCTRL board with order 20: the boards have 21, 30" {
			t.Errorf("setorder of an order nobody has: %v", err)
		}
	})
}

// The node LED state asked for is kept across daemon restarts, so a pHAT
// node powered on after one gets its LED (the firmware forgets LED
// enables of nodes that were off).
func TestLEDsRememberedAcrossRestarts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEmulated(t, boards.Spec{CTRL: []string{"phat"}})
		e.start(Options{})
		fw := e.em.CTRL[11]
		e.result(Request{Op: "leds", On: false})
		e.result(Request{Op: "leds", On: true})
		e.stop()
		e.start(Options{})
		e.result(Request{Op: "on", Nodes: []int{1}})
		if !fw.Powered(1) || !fw.NodeLED(1) {
			t.Errorf("p1 after leds off, leds on, a restart and on p1: power %v, LED %v", fw.Powered(1), fw.NodeLED(1))
		}
		e.wantReport("leds on", func(r Report) bool { return r.LEDs == "on" && *r.Boards[0].LEDs })
	})
}

// A ClusterCTRL restarted by request comes up with its saved power-on
// state, which is then what is asked of its nodes (no boot policy).
func TestControllerRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEmulated(t, boards.Spec{CTRL: []string{"triple"}})
		e.start(Options{})
		fw := e.em.CTRL[11]
		e.result(Request{Op: "on", Nodes: []int{2}})
		e.result(Request{Op: "save", Order: 20, Save: board.SavePOS})
		e.result(Request{Op: "on", Nodes: []int{3}})
		e.result(Request{Op: "restart", Order: 20})
		if fw.Powered(3) || !fw.Powered(2) {
			t.Errorf("after restart: p2 %v p3 %v; want the saved p2 only", fw.Powered(2), fw.Powered(3))
		}
		e.wantReport("requests from the power-on state", func(r Report) bool { return fmt.Sprint(r.Requested) == "[off on off]" })
	})
}

// Fans, ACT and USBBOOT, each checked on the board.
func TestFanACTUSBBoot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEmulated(t, boards.Spec{HAT: "2.5", CTRL: []string{"triple", "a+6"}})
		fanLine, _ := e.em.GPIO(18)
		e.start(Options{Fan: fanLine})
		triple, aplus6 := e.em.CTRL[11], e.em.CTRL[12]
		e.result(Request{Op: "fan", On: true})
		if !fanLine.Level() || !triple.Fan() || !aplus6.Fan() {
			t.Errorf("fan on: head %v, Triple %v, A+6 %v", fanLine.Level(), triple.Fan(), aplus6.Fan())
		}
		e.result(Request{Op: "fan", On: false, Target: "21"})
		if !fanLine.Level() || !triple.Fan() || aplus6.Fan() {
			t.Errorf("fan off 21: head %v, Triple %v, A+6 %v", fanLine.Level(), triple.Fan(), aplus6.Fan())
		}
		e.result(Request{Op: "fan", On: false, Target: "c"})
		if fanLine.Level() || !triple.Fan() {
			t.Errorf("fan off c: head %v, Triple %v", fanLine.Level(), triple.Fan())
		}
		e.wantReport("the head node's fan off", func(r Report) bool { return r.Fan != nil && !*r.Fan })
		e.result(Request{Op: "act", On: false})
		if aplus6.ACT() {
			t.Error("act off: the A+6's ACT LED is enabled")
		}
		if _, err := e.m.Do(context.Background(), Request{Op: "act", On: true, Target: "20"}); !errors.As(err, new(*InputError)) {
			t.Errorf("act on a Triple: %v", err)
		}
		// p1-p4 are the HAT's (passed over), p5-p7 the Triple's.
		res := e.result(Request{Op: "usbboot", On: false, Nodes: []int{2, 6}})
		if triple.USBBoot(2) || !triple.USBBoot(1) || fmt.Sprint(res.Changes) != "[p2: no USBBOOT line (ClusterHAT v2.5) p6: usbboot off]" {
			t.Errorf("usbboot off p2 p6: Triple lines %v %v, %q", triple.USBBoot(1), triple.USBBoot(2), res.Changes)
		}
		e.wantReport("usbboot read back", func(r Report) bool { return fmt.Sprint(r.Boards[1].Read.USBBoot) == "[true false true]" })
	})
}

// USB paths as the official tool's getpath finds them: the ClusterHAT's
// hub (P1 on its port 4 ... P4 on port 1), each ClusterCTRL's interface
// path less its own ports, plus the node's. With one hub that has the
// ClusterHAT's IDs it is found without switching the hub; with two, the
// hub is switched off and on to tell which.
func TestPaths(t *testing.T) {
	for _, extra := range []bool{false, true} {
		t.Run(fmt.Sprintf("extra hub %v", extra), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEmulated(t, boards.Spec{HAT: "2.5", CTRL: []string{"a+6", "stack"}, ExtraHub: extra})
				e.start(Options{})
				writes := e.em.Expander.Writes(0x01)
				start := time.Now()
				res := e.result(Request{Op: "paths"})
				got := map[int]string{}
				maps.Copy(got, res.Paths)
				want := map[int]string{1: "1-1.3.4", 2: "1-1.3.3", 3: "1-1.3.2", 4: "1-1.3.1",
					5: "1-1.4.1", 6: "1-1.4.2", 7: "1-1.4.3", 8: "1-1.4.4.2", 9: "1-1.4.4.4",
					10: "", 11: "", 12: "", 13: "", 14: ""} // the Stack has no paths: empty, as the tool prints them
				if !maps.Equal(got, want) {
					keys := slices.Sorted(maps.Keys(got))
					t.Errorf("paths %v (nodes %v), want %v", got, keys, want)
				}
				switched := e.em.Expander.Writes(0x01) > writes
				if switched != extra {
					t.Errorf("hub switched %v, want %v", switched, extra)
				}
				if took := time.Since(start); extra != (took >= 2*time.Second) {
					t.Errorf("finding the paths took %v; telling the hubs apart waits 1 s twice", took)
				}
				if !e.em.Expander.Level(5) == false {
					// v2.5: the hub is on when bit 5 is low.
					t.Error("the hub was left off")
				}
			})
		})
	}
}
