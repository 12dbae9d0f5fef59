package display

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/headnode/headnode/display/lcd"
	"github.com/headnode/headnode/display/led"
	"github.com/headnode/headnode/hw/emu"
	"github.com/headnode/headnode/hw/emu/blinkstick"
	"github.com/headnode/headnode/hw/emu/hd44780"
	"github.com/headnode/headnode/hw/lcdrom"
)

// The keepers' tests run in synctest bubbles: the Screen's and the
// Light's timers run on the bubble's clock, which moves only when every
// goroutine waits, so a check after advance or settled sees exactly what
// happened by then.

// settled checks cond once the keepers have done what they were told (no
// time passes).
func settled(t *testing.T, what string, cond func() bool) {
	t.Helper()
	synctest.Wait()
	if !cond() {
		t.Fatalf("not %s", what)
	}
}

// advance lets d pass and returns once the keepers wait again.
func advance(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

func (r *lightRig) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return fmt.Sprintf("%+v", r.reports)
}

// busClock is the bus-time clock the driver's sleeps and the emulator's
// timing share, apart from the bubble's: an LCD transfer takes no bubble
// time. (On the bubble's clock a transfer would sleep while holding the
// emulated bus's mutex, and a test touching the bus meanwhile would block
// on it, which synctest does not count as waiting: the bubble would hang
// instead of failing.)
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
	r := &screenRig{bus: emu.NewBus("emu-i2c-1"), done: make(chan struct{})}
	r.mod = hd44780.New(hd44780.Boards[0], &hd44780.Opts{Cols: cols, Rows: rows, ROM: lcdrom.A00, Now: bc.Now, Wait: bc.Sleep})
	if attached {
		r.bus.Attach(0x27, r.mod)
	}
	r.screen = NewScreen(ScreenOpts{
		Open: func() (LCD, error) {
			return lcd.New(r.bus, &lcd.Opts{Cols: cols, Rows: rows, ROM: lcdrom.A00, Backlight: true, Sleep: bc.Sleep})
		},
		Cols: cols, Rows: rows,
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
	synctest.Wait() // the first look for the LCD is done
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

type lightRig struct {
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
	r := &lightRig{fs: fs, done: make(chan struct{})}
	finder := &led.Finder{Root: fs.Root, Open: func(p string) (led.FeatureDevice, error) { return fs.Open(p) }}
	r.light = NewLight(LightOpts{
		Find: finder.Find, Brightness: 1,
		Report: func(rep LightReport) { r.mu.Lock(); r.reports = append(r.reports, rep); r.mu.Unlock() },
	})
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.light.Run(ctx, func() bool { return final }); close(r.done) }()
	t.Cleanup(func() { cancel(); <-r.done })
	synctest.Wait() // the first scan is done
	return r
}

// plugSquare plugs a BlinkStick Square in and lets the next scan (2 s)
// find it.
func (r *lightRig) plugSquare() *blinkstick.Stick {
	s := blinkstick.New(blinkstick.Square, nil)
	r.fs.Plug(s)
	advance(2 * time.Second)
	return s
}

func (r *lightRig) last() LightReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.reports) == 0 {
		return LightReport{}
	}
	return r.reports[len(r.reports)-1]
}

// until advances the clock in 50 ms steps until cond holds, at most for
// limit (reports are sent at most every 250 ms).
func (r *lightRig) until(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	synctest.Wait()
	for start := time.Now(); !cond(); advance(50 * time.Millisecond) {
		if time.Since(start) >= limit {
			t.Fatalf("not %s after %v: %v", what, limit, r)
		}
	}
}

func rgb(c led.RGB) blinkstick.RGB { return blinkstick.RGB{R: c.R, G: c.G, B: c.B} }

func TestScreenShowsEveryStatusAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newScreenRig(t, 16, 2, true)
		s := ok4()
		r.screen.Show(s)
		settled(t, "the address on the glass", func() bool { return r.glass() == "192.168.1.194|4/4 up  NAT ok" })
		s.Uplink.IPv4 = "10.0.0.7/8"
		r.screen.Show(s) // no time passes: a status change is written when it arrives
		settled(t, "the new address", func() bool { return r.glass() == "10.0.0.7|4/4 up  NAT ok" })
		if rep := r.last(); !rep.Found || rep.Info.Addr != 0x27 || rep.Info.PinMap != "standard" || rep.Rows[0] != "10.0.0.7" {
			t.Errorf("report %+v", rep)
		}
	})
}

// Noise shifts the nibble stream; the periodic refresh (60 s) repairs the
// glass without any new status.
func TestScreenPeriodicRefreshRepairsNoise(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newScreenRig(t, 16, 2, true)
		s := ok4()
		r.screen.Show(s)
		settled(t, "the screen", func() bool { return r.glass() == "192.168.1.194|4/4 up  NAT ok" })
		r.mod.Glitch()
		s.Nodes[0].State = NodeOff
		r.screen.Show(s)
		settled(t, "a write after the glitch", func() bool { return len(r.last().Rows) == 2 && r.last().Rows[1] == "3/4 up  NAT ok" })
		if r.glass() == "192.168.1.194|3/4 up  NAT ok" {
			t.Fatal("the glitch did not garble anything; the test proves nothing")
		}
		advance(time.Minute - time.Millisecond) // 29 checks (every 2 s) do not repair it
		if r.glass() == "192.168.1.194|3/4 up  NAT ok" {
			t.Fatal("repaired before the refresh; the test proves nothing about it")
		}
		advance(time.Millisecond)
		settled(t, "the repaired screen at 60 s", func() bool { return r.glass() == "192.168.1.194|3/4 up  NAT ok" })
	})
}

// The backpack loses power between writes: the next check notices (the
// expander is back in its reset state) and the screen is restored within
// one check period.
func TestScreenRecoversAfterBackpackPowerLoss(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newScreenRig(t, 20, 4, true)
		r.screen.Show(ok4())
		want := "192.168.1.194|4/4 up  NAT ok|cluster-head|NAT ok  48°C"
		want = strings.ReplaceAll(want, "°", "ﾟ") // A00 draws ° as its semi-voiced mark
		settled(t, "the screen", func() bool { return r.glass() == want })
		r.mod.PowerOff()
		advance(2 * time.Second) // the check
		settled(t, "the LCD reported missing", func() bool { return !r.last().Found && r.last().Err != "" })
		r.mod.PowerOn()
		if r.glass() != "|||" {
			t.Fatalf("a re-powered LCD is not blank: %q", r.glass())
		}
		advance(2 * time.Second)
		settled(t, "the restored screen", func() bool { return r.glass() == want && r.last().Found })
	})
}

func TestScreenFindsALateLCD(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newScreenRig(t, 16, 2, false)
		r.screen.Show(ok4())
		settled(t, "the LCD reported missing", func() bool { return strings.Contains(r.last().Err, "no backpack found") })
		r.bus.Attach(0x27, r.mod)
		advance(5 * time.Second) // the next look
		settled(t, "the late LCD", func() bool { return r.glass() == "192.168.1.194|4/4 up  NAT ok" && r.last().Found })
	})
}

func TestScreenTurnsPages(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newScreenRig(t, 16, 2, true)
		s := ok4()
		s.Uplink.IPv4, s.Uplink.IPv6 = "", []string{"2a02:810d:4b40:1a00:ba27:ebff:fe12:3456/64"}
		r.screen.Show(s)
		settled(t, "page 1", func() bool { return r.glass() == "2a02:810d:4b40:|1a00:ba27:ebff:" })
		advance(4*time.Second - time.Millisecond)
		settled(t, "page 1 until 4 s", func() bool { return r.glass() == "2a02:810d:4b40:|1a00:ba27:ebff:" })
		advance(time.Millisecond)
		settled(t, "page 2 at 4 s", func() bool { return r.glass() == "fe12:3456|4/4 up  NAT ok" })
	})
}

func TestScreenShowsStoppedLast(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newScreenRig(t, 16, 2, true)
		s := ok4()
		r.screen.Show(s)
		settled(t, "the screen", func() bool { return r.glass() == "192.168.1.194|4/4 up  NAT ok" })
		s.Health = Health{State: StateStopped}
		r.final = &s
		r.cancel()
		<-r.done
		if r.glass() != "192.168.1.194|headnode stopped" {
			t.Errorf("after stop: %q", r.glass())
		}
	})
}

// One NACK on the write that carries a new address must not leave the old
// address on the glass until the next status or check: the keeper writes
// again after a short delay (20 ms), far inside the 2 s check period.
func TestScreenRetriesAFailedWriteSoon(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newScreenRig(t, 16, 2, true)
		s := ok4()
		r.screen.Show(s)
		settled(t, "the screen", func() bool { return r.glass() == "192.168.1.194|4/4 up  NAT ok" })
		var once sync.Once
		r.bus.SetInject(func(uint16, []byte) error {
			var err error
			once.Do(func() { err = emu.ErrNACK })
			return err
		})
		s.Uplink.IPv4 = "10.0.0.7/8"
		r.screen.Show(s)
		settled(t, "the failed write reported", func() bool { return !r.last().Found })
		if r.glass() == "10.0.0.7|4/4 up  NAT ok" {
			t.Fatal("the injected NACK did not stop the write; the test proves nothing")
		}
		advance(retryFirst)
		settled(t, "the new address 20 ms later", func() bool { return r.glass() == "10.0.0.7|4/4 up  NAT ok" && r.last().Found })
	})
}

// Hot-plug on a fake sysfs tree: the stick is unplugged (the LED part
// reports it missing, nothing crashes), a different stick appears first,
// then the original comes back under a new hidraw number and is chosen
// again by its serial.
func TestLightHotPlug(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newLightRig(t, false)
		strip := blinkstick.New(blinkstick.Strip, &blinkstick.Opts{Serial: "BS000042-3.0"})
		if _, err := r.fs.Plug(strip); err != nil {
			t.Fatal(err)
		}
		r.light.Show(ok4())
		advance(2 * time.Second) // the next scan
		defer func() {
			if t.Failed() {
				t.Log(r)
			}
		}()
		settled(t, "the strip in use", func() bool {
			rep := r.last()
			return rep.Found && rep.Serial == "BS000042-3.0" && rep.Kind == "BlinkStick Strip" && strip.LEDs()[0] == rgb(Green)
		})
		if got := strip.LEDs(); got[1] != rgb(Green) || got[4] != rgb(Green) || got[5] != (blinkstick.RGB{}) {
			t.Errorf("node LEDs %v", got)
		}
		r.fs.Unplug(strip)
		advance(5 * time.Second) // the heartbeat's next edge tries to write
		settled(t, "the strip reported missing", func() bool { return !r.last().Found && r.last().Err != "" })
		nano := blinkstick.New(blinkstick.Nano, &blinkstick.Opts{Serial: "BS000007-3.0"})
		r.fs.Plug(nano)
		node, _ := r.fs.Plug(strip)
		if !strings.HasSuffix(node, "hidraw2") {
			t.Fatalf("replugged as %s", node)
		}
		advance(2 * time.Second) // the next scan
		settled(t, "the strip found again", func() bool { return r.last().Found && r.last().Serial == "BS000042-3.0" })
		settled(t, "the pattern back on the strip", func() bool { return strip.LEDs()[0] == rgb(Green) })
		if nano.Reports() != 0 {
			t.Errorf("the other stick was written to")
		}
	})
}

func TestLightModes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newLightRig(t, true)
		s := r.plugSquare()
		st := ok4()
		st.Health = Health{State: StateFailed, Class: 2, Reasons: []string{"NAT failed"}}
		r.light.Show(st)
		r.until(t, time.Second, "failed", func() bool { return r.last().Pattern == "failed-2" && s.LEDs()[0] == rgb(Red) })
		if err := r.light.SetMode("blink"); err == nil || err.Error() != `unknown LED mode "blink": use identify, stopped or auto` {
			t.Errorf("bad mode: %v", err)
		}
		r.light.SetMode(ModeIdentify)
		r.until(t, time.Second, "identify", func() bool { return r.last().Mode == ModeIdentify && s.LEDs()[0] == rgb(White) })
		if got := s.LEDs(); got[1] != (blinkstick.RGB{}) {
			t.Errorf("node LEDs during identify: %v", got)
		}
		start := time.Now()
		r.until(t, IdentifyFor+time.Second, "back to auto after 30 s", func() bool { return r.last().Mode == ModeAuto && r.last().Pattern == "failed-2" })
		if d := time.Since(start); d < IdentifyFor-time.Second {
			t.Errorf("identify ended after %v, want %v", d, IdentifyFor)
		}
		r.light.SetMode(ModeStopped)
		r.until(t, time.Second, "stopped", func() bool { return r.last().Pattern == "stopped" && s.LEDs()[0] == rgb(Red.Scale(1.0/3)) })
		r.light.SetMode(ModeAuto)
		r.light.Show(ok4())
		r.until(t, time.Second, "auto", func() bool { return r.last().Pattern == "ok" && s.LEDs()[0] == rgb(Green) })
		// The daemon stops: the stopped pattern is the last thing written.
		r.cancel()
		<-r.done
		if got := s.LEDs(); got[0] != rgb(Red.Scale(1.0/3)) || got[1] != (blinkstick.RGB{}) {
			t.Errorf("after stop: %v", got)
		}
	})
}

// A reload shows one blue breath on LED 0 (node LEDs keep their state),
// then the health after the reload: here a broken file, failed class 1.
func TestLightShowsAReloadForOneBreath(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newLightRig(t, false)
		s := r.plugSquare()
		r.light.Show(ok4())
		r.until(t, time.Second, "ok", func() bool { return r.last().Pattern == "ok" && s.LEDs()[0] == rgb(Green) })

		r.light.Reloading()
		st := ok4()
		st.Health = Health{State: StateFailed, Class: 1, Reasons: []string{"config invalid: c.toml:2: ..."}}
		r.light.Show(st)
		r.until(t, time.Second, "the reload's breath", func() bool {
			c := s.LEDs()[0]
			return r.last().Pattern == "starting" && c.B > 0 && c.R == 0 && c.G == 0
		})
		if got := s.LEDs()[1]; got != rgb(Green) {
			t.Errorf("node LED during the reload: %v, want green", got)
		}
		r.until(t, BreathePeriod+time.Second, "failed after the breath", func() bool { return r.last().Pattern == "failed-1" })
	})
}

func TestLightAbsentIsReportedNotFatal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newLightRig(t, true)
		r.light.Show(ok4())
		settled(t, "missing", func() bool { return r.last().Err == "no status LED (BlinkStick or blink(1)) is plugged in" })
		r.fs.Plug(blinkstick.New(blinkstick.Original, nil))
		advance(2 * time.Second) // the next scan
		settled(t, "found", func() bool { return r.last().Found && r.last().Kind == "BlinkStick" })
	})
}

// Colours that alone change are reported on the beat and only if they
// still differ then: over 30 s of the OK heartbeat, played from 0.3 s
// past a whole second, the stick dips six times (each dip ending on a
// whole second) and no report shows a dip.
func TestLightReportsColoursOnTheBeat(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newLightRig(t, false)
		s := r.plugSquare()
		time.Sleep(300 * time.Millisecond) // off the whole second
		r.light.Show(ok4())
		r.until(t, time.Second, "ok", func() bool { return r.last().Pattern == "ok" && s.LEDs()[0] == rgb(Green) })
		r.mu.Lock()
		before := len(r.reports)
		r.mu.Unlock()
		dips := 0
		for range 300 {
			advance(100 * time.Millisecond)
			if s.LEDs()[0] == (blinkstick.RGB{}) {
				dips++
			}
		}
		if dips != 6 {
			t.Errorf("the stick dipped %d times in 30 s, want 6", dips)
		}
		r.mu.Lock()
		for _, rep := range r.reports[before:] {
			if len(rep.Colors) > 0 && rep.Colors[0] != Green {
				t.Errorf("a report shows LED 0 %v", rep.Colors[0])
			}
		}
		r.mu.Unlock()
	})
}
