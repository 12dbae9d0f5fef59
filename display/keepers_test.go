package display

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/headnode/headnode/display/lcd"
	"github.com/headnode/headnode/display/led"
	"github.com/headnode/headnode/hw/emu"
	"github.com/headnode/headnode/hw/emu/blinkstick"
	"github.com/headnode/headnode/hw/emu/hd44780"
	"github.com/headnode/headnode/hw/lcdrom"
)

// waitFor polls (in real time) until cond holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func (r *lightRig) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return fmt.Sprintf("%+v", r.reports)
}

// busClock is the bus-time clock the driver's sleeps and the emulator's
// timing share; the keeper's scheduling runs on a separate fake clock.
type busClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *busClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *busClock) Sleep(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type screenRig struct {
	clock   *clockwork.FakeClock
	bus     *emu.Bus
	mod     *hd44780.Module
	screen  *Screen
	cancel  context.CancelFunc
	done    chan struct{}
	mu      sync.Mutex
	reports []ScreenReport
	final   *Status
}

func newScreenRig(t *testing.T, cols, rows int, attached bool) *screenRig {
	bc := &busClock{t: t0}
	r := &screenRig{clock: clockwork.NewFakeClockAt(t0), bus: emu.NewBus("emu-i2c-1"), done: make(chan struct{})}
	r.mod = hd44780.New(hd44780.Boards[0], &hd44780.Opts{Cols: cols, Rows: rows, ROM: lcdrom.A00, Now: bc.Now, Wait: bc.Sleep})
	if attached {
		r.bus.Attach(0x27, r.mod)
	}
	r.screen = NewScreen(ScreenOpts{
		Open: func() (LCD, error) {
			return lcd.New(r.bus, &lcd.Opts{Cols: cols, Rows: rows, ROM: lcdrom.A00, Backlight: true, Sleep: bc.Sleep})
		},
		Cols: cols, Rows: rows, Clock: r.clock,
		Report: func(rep ScreenReport) { r.mu.Lock(); r.reports = append(r.reports, rep); r.mu.Unlock() },
	})
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		r.screen.Run(ctx, func() (Status, bool) {
			if r.final == nil {
				return Status{}, false
			}
			return *r.final, true
		})
		close(r.done)
	}()
	t.Cleanup(func() { cancel(); <-r.done })
	return r
}

func (r *screenRig) glass() string { return strings.Join(trimAll(r.mod.Screen()), "|") }

func (r *screenRig) last() ScreenReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.reports) == 0 {
		return ScreenReport{}
	}
	return r.reports[len(r.reports)-1]
}

func trimAll(rows []string) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = strings.TrimRight(r, " ")
	}
	return out
}

// advance moves the keeper's clock once its goroutine is waiting.
func (r *screenRig) advance(d time.Duration) {
	r.clock.BlockUntilContext(context.Background(), 1)
	r.clock.Advance(d)
}

func TestScreenShowsEveryStatusAtOnce(t *testing.T) {
	r := newScreenRig(t, 16, 2, true)
	s := ok4()
	r.screen.Show(s)
	waitFor(t, "the address on the glass", func() bool { return r.glass() == "192.168.1.194|4/4 up  NAT ok" })
	s.Uplink.IPv4 = "10.0.0.7/8"
	r.screen.Show(s) // no clock advance: a status change is written when it arrives
	waitFor(t, "the new address", func() bool { return r.glass() == "10.0.0.7|4/4 up  NAT ok" })
	if rep := r.last(); !rep.Found || rep.Info.Addr != 0x27 || rep.Info.PinMap != "standard" || rep.Rows[0] != "10.0.0.7" {
		t.Errorf("report %+v", rep)
	}
}

// Noise shifts the nibble stream; the periodic refresh (60 s) repairs the
// glass without any new status.
func TestScreenPeriodicRefreshRepairsNoise(t *testing.T) {
	r := newScreenRig(t, 16, 2, true)
	s := ok4()
	r.screen.Show(s)
	waitFor(t, "the screen", func() bool { return r.glass() == "192.168.1.194|4/4 up  NAT ok" })
	r.mod.Glitch()
	s.Nodes[0].State = NodeOff
	r.screen.Show(s)
	waitFor(t, "a write after the glitch", func() bool { return len(r.last().Rows) == 2 && r.last().Rows[1] == "3/4 up  NAT ok" })
	if r.glass() == "192.168.1.194|3/4 up  NAT ok" {
		t.Fatal("the glitch did not garble anything; the test proves nothing")
	}
	for range 30 {
		r.advance(2 * time.Second) // checks every 2 s; the refresh at 60 s
	}
	waitFor(t, "the repaired screen", func() bool { return r.glass() == "192.168.1.194|3/4 up  NAT ok" })
}

// The backpack loses power between writes: the next check notices (the
// expander is back in its reset state) and the screen is restored within
// one check period.
func TestScreenRecoversAfterBackpackPowerLoss(t *testing.T) {
	r := newScreenRig(t, 20, 4, true)
	r.screen.Show(ok4())
	want := "192.168.1.194|4/4 up  NAT ok|cluster-head|NAT ok  48°C"
	want = strings.ReplaceAll(want, "°", "ﾟ") // A00 draws ° as its semi-voiced mark
	waitFor(t, "the screen", func() bool { return r.glass() == want })
	r.mod.PowerOff()
	r.advance(2 * time.Second)
	waitFor(t, "the LCD reported missing", func() bool { return !r.last().Found && r.last().Err != "" })
	r.mod.PowerOn()
	if r.glass() != "|||" {
		t.Fatalf("a re-powered LCD is not blank: %q", r.glass())
	}
	r.advance(2 * time.Second)
	waitFor(t, "the restored screen", func() bool { return r.glass() == want && r.last().Found })
}

func TestScreenFindsALateLCD(t *testing.T) {
	r := newScreenRig(t, 16, 2, false)
	r.screen.Show(ok4())
	waitFor(t, "the LCD reported missing", func() bool { return strings.Contains(r.last().Err, "no backpack found") })
	r.bus.Attach(0x27, r.mod)
	r.advance(5 * time.Second)
	waitFor(t, "the late LCD", func() bool { return r.glass() == "192.168.1.194|4/4 up  NAT ok" && r.last().Found })
}

func TestScreenTurnsPages(t *testing.T) {
	r := newScreenRig(t, 16, 2, true)
	s := ok4()
	s.Uplink.IPv4, s.Uplink.IPv6 = "", []string{"2a02:810d:4b40:1a00:ba27:ebff:fe12:3456/64"}
	r.screen.Show(s)
	waitFor(t, "page 1", func() bool { return r.glass() == "2a02:810d:4b40:|1a00:ba27:ebff:" })
	r.advance(2 * time.Second)
	r.advance(2 * time.Second)
	waitFor(t, "page 2", func() bool { return r.glass() == "fe12:3456|4/4 up  NAT ok" })
}

func TestScreenShowsStoppedLast(t *testing.T) {
	r := newScreenRig(t, 16, 2, true)
	s := ok4()
	r.screen.Show(s)
	waitFor(t, "the screen", func() bool { return r.glass() == "192.168.1.194|4/4 up  NAT ok" })
	s.Health = Health{State: StateStopped}
	r.final = &s
	r.cancel()
	<-r.done
	if r.glass() != "192.168.1.194|headnode stopped" {
		t.Errorf("after stop: %q", r.glass())
	}
}

type lightRig struct {
	clock   *clockwork.FakeClock
	fs      *blinkstick.Sysfs
	light   *Light
	mu      sync.Mutex
	reports []LightReport
	cancel  context.CancelFunc
	done    chan struct{}
}

func newLightRig(t *testing.T, final bool) *lightRig {
	fs, err := blinkstick.NewSysfs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r := &lightRig{clock: clockwork.NewFakeClockAt(t0), fs: fs, done: make(chan struct{})}
	finder := &led.Finder{Root: fs.Root, Open: func(p string) (led.FeatureDevice, error) { return fs.Open(p) }}
	r.light = NewLight(LightOpts{
		Find: finder.Find, Brightness: 1, Clock: r.clock,
		Report: func(rep LightReport) { r.mu.Lock(); r.reports = append(r.reports, rep); r.mu.Unlock() },
	})
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.light.Run(ctx, func() bool { return final }); close(r.done) }()
	t.Cleanup(func() { cancel(); <-r.done })
	return r
}

func (r *lightRig) last() LightReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.reports) == 0 {
		return LightReport{}
	}
	return r.reports[len(r.reports)-1]
}

// tick advances the clock in small steps, giving the goroutines time to
// react in between.
func (r *lightRig) tick(d time.Duration) {
	for step := 50 * time.Millisecond; d > 0; d -= step {
		r.clock.BlockUntilContext(context.Background(), 2)
		r.clock.Advance(step)
		time.Sleep(time.Millisecond)
	}
}

// until advances the clock in 50 ms steps until cond holds (reports are
// sent at most every 250 ms, on the fake clock).
func (r *lightRig) until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 100 {
		if cond() {
			return
		}
		r.tick(50 * time.Millisecond)
	}
	t.Fatalf("not %s after 5 s: %v", what, r)
}

func rgb(c led.RGB) blinkstick.RGB { return blinkstick.RGB{R: c.R, G: c.G, B: c.B} }

// Hot-plug on a fake sysfs tree: the stick is unplugged (the LED part
// reports it missing, nothing crashes), a different stick appears first,
// then the original comes back under a new hidraw number and is chosen
// again by its serial.
func TestLightHotPlug(t *testing.T) {
	r := newLightRig(t, false)
	strip := blinkstick.New(blinkstick.Strip, &blinkstick.Opts{Serial: "BS000042-3.0"})
	if _, err := r.fs.Plug(strip); err != nil {
		t.Fatal(err)
	}
	r.light.Show(ok4())
	r.tick(2 * time.Second) // the next scan
	defer func() {
		if t.Failed() {
			t.Log(r)
		}
	}()
	waitFor(t, "the strip in use", func() bool {
		rep := r.last()
		return rep.Found && rep.Serial == "BS000042-3.0" && rep.Kind == "BlinkStick Strip" && strip.LEDs()[0] == rgb(Green)
	})
	if got := strip.LEDs(); got[1] != rgb(Green) || got[4] != rgb(Green) || got[5] != (blinkstick.RGB{}) {
		t.Errorf("node LEDs %v", got)
	}
	r.fs.Unplug(strip)
	r.tick(5 * time.Second) // the heartbeat's next edge tries to write
	waitFor(t, "the strip reported missing", func() bool { return !r.last().Found && r.last().Err != "" })
	nano := blinkstick.New(blinkstick.Nano, &blinkstick.Opts{Serial: "BS000007-3.0"})
	r.fs.Plug(nano)
	node, _ := r.fs.Plug(strip)
	if !strings.HasSuffix(node, "hidraw2") {
		t.Fatalf("replugged as %s", node)
	}
	r.tick(2 * time.Second)
	waitFor(t, "the strip found again", func() bool { return r.last().Found && r.last().Serial == "BS000042-3.0" })
	waitFor(t, "the pattern back on the strip", func() bool { return strip.LEDs()[0] == rgb(Green) })
	if nano.Reports() != 0 {
		t.Errorf("the other stick was written to")
	}
}

func TestLightModes(t *testing.T) {
	r := newLightRig(t, true)
	s := blinkstick.New(blinkstick.Square, nil)
	r.fs.Plug(s)
	r.tick(2 * time.Second)
	st := ok4()
	st.Health = Health{State: StateFailed, Class: 2, Reasons: []string{"NAT failed"}}
	r.light.Show(st)
	r.until(t, "failed", func() bool { return r.last().Pattern == "failed-2" && s.LEDs()[0] == rgb(Red) })
	if err := r.light.SetMode("blink"); err == nil || err.Error() != `unknown LED mode "blink": use identify, stopped or auto` {
		t.Errorf("bad mode: %v", err)
	}
	r.light.SetMode(ModeIdentify)
	r.until(t, "identify", func() bool { return r.last().Mode == ModeIdentify && s.LEDs()[0] == rgb(White) })
	if got := s.LEDs(); got[1] != (blinkstick.RGB{}) {
		t.Errorf("node LEDs during identify: %v", got)
	}
	r.tick(31 * time.Second)
	r.until(t, "back to auto after 30 s", func() bool { return r.last().Mode == ModeAuto && r.last().Pattern == "failed-2" })
	r.light.SetMode(ModeStopped)
	r.until(t, "stopped", func() bool { return r.last().Pattern == "stopped" && s.LEDs()[0] == rgb(Red.Scale(1.0/3)) })
	r.light.SetMode(ModeAuto)
	r.light.Show(ok4())
	r.until(t, "auto", func() bool { return r.last().Pattern == "ok" && s.LEDs()[0] == rgb(Green) })
	// The daemon stops: the stopped pattern is the last thing written.
	r.cancel()
	<-r.done
	if got := s.LEDs(); got[0] != rgb(Red.Scale(1.0/3)) || got[1] != (blinkstick.RGB{}) {
		t.Errorf("after stop: %v", got)
	}
}

// A reload shows one blue breath on LED 0 (node LEDs keep their state),
// then the health after the reload: here a broken file, failed class 1.
func TestLightShowsAReloadForOneBreath(t *testing.T) {
	r := newLightRig(t, false)
	s := blinkstick.New(blinkstick.Square, nil)
	r.fs.Plug(s)
	r.tick(2 * time.Second)
	r.light.Show(ok4())
	r.until(t, "ok", func() bool { return r.last().Pattern == "ok" && s.LEDs()[0] == rgb(Green) })

	r.light.Reloading()
	st := ok4()
	st.Health = Health{State: StateFailed, Class: 1, Reasons: []string{"config invalid: c.toml:2: ..."}}
	r.light.Show(st)
	r.until(t, "the reload's breath", func() bool {
		c := s.LEDs()[0]
		return r.last().Pattern == "starting" && c.B > 0 && c.R == 0 && c.G == 0
	})
	if got := s.LEDs()[1]; got != rgb(Green) {
		t.Errorf("node LED during the reload: %v, want green", got)
	}
	r.tick(BreathePeriod)
	r.until(t, "failed after the breath", func() bool { return r.last().Pattern == "failed-1" })
}

func TestLightAbsentIsReportedNotFatal(t *testing.T) {
	r := newLightRig(t, true)
	r.light.Show(ok4())
	waitFor(t, "missing", func() bool { return r.last().Err == "no status LED (BlinkStick or blink(1)) is plugged in" })
	r.fs.Plug(blinkstick.New(blinkstick.Original, nil))
	r.tick(2 * time.Second)
	waitFor(t, "found", func() bool { return r.last().Found && r.last().Kind == "BlinkStick" })
}

// One NACK on the write that carries a new address must not leave the old
// address on the glass until the next status or check: the keeper writes
// again after a short delay (20 ms), far inside the 2 s check period.
func TestScreenRetriesAFailedWriteSoon(t *testing.T) {
	r := newScreenRig(t, 16, 2, true)
	s := ok4()
	r.screen.Show(s)
	waitFor(t, "the screen", func() bool { return r.glass() == "192.168.1.194|4/4 up  NAT ok" })
	var once sync.Once
	r.bus.SetInject(func(uint16, []byte) error {
		var err error
		once.Do(func() { err = emu.ErrNACK })
		return err
	})
	s.Uplink.IPv4 = "10.0.0.7/8"
	r.screen.Show(s)
	waitFor(t, "the failed write reported", func() bool { return !r.last().Found })
	if r.glass() == "10.0.0.7|4/4 up  NAT ok" {
		t.Fatal("the injected NACK did not stop the write; the test proves nothing")
	}
	r.advance(retryFirst)
	waitFor(t, "the new address after the retry", func() bool { return r.glass() == "10.0.0.7|4/4 up  NAT ok" && r.last().Found })
}
