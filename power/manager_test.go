package power

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/headnode/headnode/hw/emu"
	"github.com/headnode/headnode/hw/emu/expander"
	"github.com/headnode/headnode/hw/wake"
	"github.com/headnode/headnode/power/clusterhat"
)

// rig is a ClusterHAT v2.5 on an emulated expander, run by a Manager.
// Tests that use it run in a synctest bubble: the manager's timers run on
// the bubble's clock, and advance returns once the manager has done all
// that came due, so what a test sees after it is exact, not polled for.
type rig struct {
	t     *testing.T
	chip  *expander.Dev
	bus   *emu.Bus
	m     *Manager
	state string
	mu    sync.Mutex
	last  Report
	stop  func()
}

func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{t: t, chip: expander.New(expander.XRA1200P), bus: emu.NewBus("emu-i2c-1"),
		state: filepath.Join(t.TempDir(), "power.json")}
	for pin := range 4 {
		r.chip.SetExternal(pin, expander.Low) // power-on-state link: nodes off
	}
	r.bus.Attach(0x20, r.chip)
	return r
}

// newMachineRig runs a manager for any cluster.
func newMachineRig(t *testing.T, c *Cluster) *rig {
	r := &rig{t: t}
	r.run(c, BootOff)
	return r
}

// start runs a manager (a daemon start) with the given boot policy.
func (r *rig) start(boot string) {
	r.t.Helper()
	hat, err := clusterhat.NewI2C(r.bus, 1, clusterhat.DefaultOpts)
	if err != nil {
		r.t.Fatal(err)
	}
	r.run(NewCluster(hat, nil), boot)
}

func (r *rig) run(c *Cluster, boot string) {
	r.m = NewManager(c, Options{Stagger: time.Second, Boot: boot, StateFile: r.state, ReadInterval: 5 * time.Second,
		Report: func(rep Report) { r.mu.Lock(); r.last = rep; r.mu.Unlock() }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.m.Run(ctx); close(done) }()
	r.stop = func() { cancel(); <-done }
	r.t.Cleanup(r.stop)
	synctest.Wait() // started: boards read, waiting on its timers
}

// advance lets d pass on the bubble's clock and returns once the manager
// has done everything that came due and waits again. A driver that
// sleeps between polls (ClusterCTRL) is durably blocked to synctest
// mid-command, so a request (which the manager takes only between its
// tasks) marks the end.
func (r *rig) advance(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
	r.m.Do(context.Background(), Request{Op: "init"})
	synctest.Wait()
}

// pins is what a meter shows on P1-P4.
func (r *rig) pins() string {
	b := []byte("0000")
	for i := range 4 {
		if r.chip.Level(i) {
			b[i] = '1'
		}
	}
	return string(b)
}

func (r *rig) wantPins(want string) {
	r.t.Helper()
	if got := r.pins(); got != want {
		r.t.Fatalf("node power %s, want %s", got, want)
	}
}

// do makes a request and returns once the manager waits again.
func (r *rig) do(req Request) []string {
	r.t.Helper()
	res, err := r.m.Do(context.Background(), req)
	if err != nil {
		r.t.Fatalf("%+v: %v", req, err)
	}
	synctest.Wait()
	return res.Changes
}

// wantReport checks the last report.
func (r *rig) wantReport(what string, cond func(Report) bool) {
	r.t.Helper()
	r.mu.Lock()
	rep := r.last
	r.mu.Unlock()
	if len(rep.Boards) == 0 || !cond(rep) {
		r.t.Fatalf("report not %s: %+v", what, rep)
	}
}

func TestOnIsStaggeredOnTheClockAndDoesNotBlock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		r.start(BootRestore)
		r.wantPins("0000")
		changes := r.do(Request{Op: "on", Nodes: []int{1, 2, 3, 4}})
		want := "p1: on|p2: queued, powers on in 1s|p3: queued, powers on in 2s|p4: queued, powers on in 3s"
		if got := strings.Join(changes, "|"); got != want {
			t.Errorf("answer %q, want %q", got, want)
		}
		r.wantPins("1000")
		for i, want := range []string{"1100", "1110", "1111"} {
			r.advance(999 * time.Millisecond)
			if r.pins() != []string{"1000", "1100", "1110"}[i] {
				t.Fatalf("node %d came on before its second: %s", i+2, r.pins())
			}
			r.advance(time.Millisecond)
			r.wantPins(want)
		}
		// Off is immediate and cancels what is queued.
		r.do(Request{Op: "off", Nodes: []int{1, 2, 3, 4}})
		r.wantPins("0000")
		r.advance(10 * time.Second)
		// The stagger holds across separate requests too.
		r.do(Request{Op: "on", Nodes: []int{1}})
		if got := r.do(Request{Op: "on", Nodes: []int{3}}); got[0] != "p3: queued, powers on in 1s" || r.pins() != "1000" {
			t.Errorf("a second request right after the first: %q, pins %s", got, r.pins())
		}
		r.do(Request{Op: "off", Nodes: []int{1, 3}})
		r.advance(10 * time.Second)
		r.do(Request{Op: "on", Nodes: []int{2, 4}})
		r.wantPins("0100")
		got := r.do(Request{Op: "off", Nodes: []int{4}})
		if strings.Join(got, "|") != "p4: queued power-on cancelled|p4: already off" {
			t.Errorf("off of a queued node: %q", got)
		}
		r.advance(5 * time.Second)
		if r.pins() != "0100" {
			t.Errorf("a cancelled power-on happened: %s", r.pins())
		}
		if got := r.do(Request{Op: "on", Nodes: []int{2}}); got[0] != "p2: already on" {
			t.Errorf("on of a node that is on: %q", got)
		}
	})
}

func TestBootPolicyOnlyAfterTheControllerBooted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		os.WriteFile(r.state, []byte(`{"requested":{"p2":"on","p3":"on","p4":"off"}}`), 0o644)
		r.start(BootRestore)
		r.wantPins("0100")
		r.advance(time.Second)
		r.wantPins("0110")
		r.wantReport("the boot note", func(rep Report) bool {
			return strings.Contains(rep.BootNote, `boot policy "restore", powering on p2 p3`)
		})
		// A daemon restart with policy "on": the board is initialised, so
		// nothing at all is written.
		r.stop()
		r.start(BootOn)
		r.advance(10 * time.Second) // two reads
		if r.pins() != "0110" {
			t.Errorf("restart changed node power: %s", r.pins())
		}
		// The controller reboots (the expander loses its supply) while the
		// daemon runs: seen at the next read, boot policy "on" applied.
		r.chip.Reset()
		if r.pins() != "0000" {
			t.Fatalf("after an expander reset the nodes are %s", r.pins())
		}
		// Reads come on the daemon's beat: every multiple of 5 s.
		r.advance(wake.Until(5 * time.Second))
		r.wantPins("1000")
		for _, want := range []string{"1100", "1110", "1111"} {
			r.advance(time.Second)
			r.wantPins(want)
		}
	})
}

func TestRestartWritesNothingToOutputs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		r.start(BootOn)
		for _, want := range []string{"1000", "1100", "1110", "1111"} {
			r.wantPins(want)
			r.advance(time.Second)
		}
		r.do(Request{Op: "off", Nodes: []int{3}})
		r.stop()
		before := [3]int{r.chip.Writes(expander.RegOutput), r.chip.Writes(expander.RegConfig), r.chip.Writes(expander.RegPullUp)}
		r.start(BootOn)
		r.advance(20 * time.Second)
		after := [3]int{r.chip.Writes(expander.RegOutput), r.chip.Writes(expander.RegConfig), r.chip.Writes(expander.RegPullUp)}
		if after != before {
			t.Errorf("a daemon restart wrote the expander: writes to OCR/GCR/PUR %v -> %v", before, after)
		}
		if r.pins() != "1101" {
			t.Errorf("node power after restart %s, want 1101", r.pins())
		}
	})
}

func TestBootOffAndRequestsPersisted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		for pin := range 4 {
			r.chip.SetExternal(pin, expander.Float) // POS link cut: board powers nodes on
		}
		r.start(BootOff)
		r.wantPins("1111") // "off" leaves the board's own power-on setting alone
		r.do(Request{Op: "off", Nodes: []int{1}})
		r.do(Request{Op: "on", Nodes: []int{1}})
		b, err := os.ReadFile(r.state)
		if err != nil || !strings.Contains(string(b), `"p1": "on"`) {
			t.Errorf("state file %s %v", b, err)
		}
	})
}

func TestBadRequestsChangeNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		r.start(BootOff)
		var ie *InputError
		for _, req := range []Request{{Op: "on", Nodes: []int{5}}, {Op: "hub", Hub: "sideways"}, {Op: "reboot"}} {
			if _, err := r.m.Do(context.Background(), req); !errors.As(err, &ie) {
				t.Errorf("%+v: %v, want an InputError", req, err)
			}
		}
		if _, err := r.m.Do(context.Background(), Request{Op: "on", Nodes: []int{5}}); err == nil || err.Error() != `unknown node "p5": this board has p1-p4` {
			t.Errorf("p5: %v", err)
		}
		if r.pins() != "0000" || r.chip.Reg(expander.RegOutput) != 0x90 {
			t.Errorf("a refused request changed the board: %s %#x", r.pins(), r.chip.Reg(expander.RegOutput))
		}
	})
}

func TestVanishingBoardIsReportedAndReturns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		r.start(BootRestore)
		r.do(Request{Op: "on", Nodes: []int{1}})
		r.bus.Detach(0x20)
		r.advance(5 * time.Second) // the next read
		r.wantReport("missing", func(rep Report) bool { return rep.Boards[0].State == BoardMissing && rep.Powered[0] == nil })
		if _, err := r.m.Do(context.Background(), Request{Op: "on", Nodes: []int{2}}); err == nil {
			t.Error("on with the board gone succeeded")
		}
		// It comes back, reset (it lost power): boot policy restores p1
		// (p2's request was recorded too).
		r.chip.Reset()
		r.bus.Attach(0x20, r.chip)
		r.advance(5 * time.Second)
		r.wantPins("1000")
		r.advance(time.Second)
		r.wantPins("1100")
		r.wantReport("ok", func(rep Report) bool { return rep.Boards[0].State == BoardOK })
	})
}

func TestBusErrorIsAFailedBoard(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		r.start(BootOff)
		r.do(Request{Op: "on", Nodes: []int{1}})
		r.bus.SetInject(func(uint16, []byte) error { return emu.ErrBus })
		r.advance(5 * time.Second)
		r.wantReport("failed", func(rep Report) bool {
			return rep.Boards[0].State == BoardFailed && strings.Contains(rep.Boards[0].Error, "input/output error")
		})
		r.bus.SetInject(nil)
		r.advance(5 * time.Second)
		r.wantReport("ok and p1 on", func(rep Report) bool { return rep.Boards[0].State == BoardOK && *rep.Powered[0] })
		if r.pins() != "1000" {
			t.Errorf("a bus error changed node power: %s", r.pins())
		}
	})
}
