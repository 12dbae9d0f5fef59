package display

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/headnode/headnode/display/led"
	"github.com/headnode/headnode/hw/wake"
)

// LED modes: what `headnode led identify|stopped|auto` selects.
const (
	ModeAuto     = "auto"     // follow health
	ModeIdentify = "identify" // white blinking for 30 s, then auto
	ModeStopped  = "stopped"  // the stopped pattern until auto
)

// LightOpts configures a Light.
type LightOpts struct {
	// Find finds and opens the light; it returns an error when there is
	// none.
	Find func() (led.Device, error)
	// Brightness 0-1.
	Brightness float64
	// Rescan is how often a missing light is looked for (default 2 s).
	Rescan time.Duration
	// Report is told whenever the light's state changes: found or lost,
	// mode, pattern (at most every ReportEvery), and the colours shown
	// when they alone changed at most every ColorsEvery (default 5 s, the
	// status page's refresh): every report is a new status for the
	// daemon to publish, which costs in proportion to the cluster, and a
	// breathing pattern changes colour many times a second.
	Report      func(LightReport)
	ReportEvery time.Duration
	ColorsEvery time.Duration
}

// LightReport is the light's state.
type LightReport struct {
	Found   bool
	Err     string
	Kind    string
	Serial  string
	LEDs    int
	Mode    string
	Pattern string    // LED 0's pattern
	Colors  []led.RGB // what the LEDs show
}

// Light keeps a status light showing the latest Status.
type Light struct {
	o      LightOpts
	legend Legend
	player *led.Player
	wake   chan struct{}

	mu          sync.Mutex
	status      Status
	mode        string
	identifyEnd time.Time
	reloadEnd   time.Time
	dev         led.Device
	lost        error
	err         string // why there is no light
	frame       []led.RGB
	rep         LightReport // the last report sent
	repAt       time.Time   // when
	// colorsAt is the beat on which colours that alone changed are
	// reported, if they still differ then (zero: none pending).
	colorsAt time.Time
}

// NewLight returns a Light; Run drives it.
func NewLight(o LightOpts) *Light {
	if o.Rescan == 0 {
		o.Rescan = 2 * time.Second
	}
	if o.Report == nil {
		o.Report = func(LightReport) {}
	}
	if o.ReportEvery == 0 {
		o.ReportEvery = 250 * time.Millisecond
	}
	if o.ColorsEvery == 0 {
		o.ColorsEvery = 5 * time.Second
	}
	l := &Light{o: o, legend: Legend{Brightness: o.Brightness}, player: led.NewPlayer(), wake: make(chan struct{}, 1), mode: ModeAuto}
	l.status.Health.State = StateStarting
	l.player.OnFrame = func(f []led.RGB) {
		l.mu.Lock()
		l.frame = f
		l.mu.Unlock()
		l.poke()
	}
	l.player.OnError = func(err error) {
		l.mu.Lock()
		l.lost = err
		l.mu.Unlock()
		l.poke()
	}
	return l
}

func (l *Light) poke() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Show hands the Light a new Status.
func (l *Light) Show(st Status) {
	l.mu.Lock()
	l.status = st.clone()
	l.mu.Unlock()
	l.apply()
}

// SetMode selects auto, identify (30 s) or stopped.
func (l *Light) SetMode(mode string) error {
	l.mu.Lock()
	switch mode {
	case ModeAuto, ModeStopped:
	case ModeIdentify:
		l.identifyEnd = time.Now().Add(IdentifyFor)
	default:
		l.mu.Unlock()
		return fmt.Errorf("unknown LED mode %q: use identify, stopped or auto", mode)
	}
	l.mode = mode
	l.mu.Unlock()
	l.apply()
	l.poke()
	return nil
}

// Reloading shows the starting pattern (blue, breathing) for one breath.
// A reload takes milliseconds; the breath tells the user who ran
// `systemctl reload` that it arrived. The health after it shows next.
func (l *Light) Reloading() {
	l.mu.Lock()
	l.reloadEnd = time.Now().Add(BreathePeriod)
	l.mu.Unlock()
	l.apply()
	l.poke()
}

// patternsLocked is what every LED should play now.
func (l *Light) patternsLocked(n int) []led.Pattern {
	st := l.status
	if l.mode == ModeIdentify && !time.Now().Before(l.identifyEnd) {
		l.mode = ModeAuto
	}
	switch {
	case l.mode == ModeIdentify:
		return l.legend.Patterns(l.legend.Identify(), nil, n)
	case l.mode == ModeStopped || st.Health.State == StateStopped:
		return l.legend.Patterns(l.legend.Stopped(), nil, n)
	case time.Now().Before(l.reloadEnd):
		return l.legend.Patterns(l.legend.Starting(), st.Nodes, n)
	}
	return l.legend.Patterns(l.legend.Cluster(st.Health), st.Nodes, n)
}

func (l *Light) apply() {
	l.mu.Lock()
	n := 1
	if l.dev != nil {
		n = l.dev.LEDs()
	}
	p := l.patternsLocked(n)
	l.mu.Unlock()
	l.player.Play(p)
}

// Run keeps the light going until ctx ends; final, if it says so, sets the
// stopped pattern last (the daemon's SIGTERM).
func (l *Light) Run(ctx context.Context, final func() bool) {
	pctx, stopPlayer := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.player.Run(pctx); close(done) }()
	defer func() {
		stopPlayer()
		<-done
		if final() {
			l.mu.Lock()
			l.mode = ModeStopped
			l.mu.Unlock()
			l.apply()
			l.player.Step()
		}
		l.mu.Lock()
		if l.dev != nil {
			l.dev.Close()
		}
		l.mu.Unlock()
	}()
	var nextScan, nextReport time.Time
	for {
		now := time.Now()
		l.mu.Lock()
		lost := l.lost
		l.lost = nil
		l.mu.Unlock()
		if lost != nil {
			l.drop(lost)
		}
		if l.device() == nil && !now.Before(nextScan) {
			l.scan()
			nextScan = wake.Next(now, l.o.Rescan)
		}
		l.apply() // identify or the reload's breath may have ended
		wait := time.Hour
		if l.device() == nil {
			wait = nextScan.Sub(now)
		}
		l.mu.Lock()
		if l.mode == ModeIdentify {
			wait = min(wait, l.identifyEnd.Sub(now))
		}
		if now.Before(l.reloadEnd) {
			wait = min(wait, l.reloadEnd.Sub(now))
		}
		l.mu.Unlock()
		if !now.Before(nextReport) {
			if l.report() {
				nextReport = wake.Next(now, l.o.ReportEvery)
			}
		} else {
			wait = min(wait, nextReport.Sub(now))
		}
		l.mu.Lock()
		if !l.colorsAt.IsZero() {
			wait = min(wait, time.Until(l.colorsAt))
		}
		l.mu.Unlock()
		t := time.NewTimer(max(wait, 0))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-l.wake:
			t.Stop()
		case <-t.C:
		}
	}
}

func (l *Light) device() led.Device {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dev
}

func (l *Light) scan() {
	dev, err := l.o.Find()
	l.mu.Lock()
	if err != nil {
		l.err = err.Error()
		l.mu.Unlock()
		return
	}
	l.dev, l.err = dev, ""
	l.mu.Unlock()
	l.apply()
	l.player.SetDevice(dev)
}

// drop forgets a light that failed (unplugged): it is looked for again,
// by serial first, on the next scan.
func (l *Light) drop(err error) {
	l.player.SetDevice(nil)
	l.mu.Lock()
	if l.dev != nil {
		l.dev.Close()
	}
	l.dev, l.frame = nil, nil
	l.err = err.Error()
	if errors.Is(err, led.ErrUnplugged) {
		l.err = "unplugged (" + err.Error() + ")"
	}
	l.mu.Unlock()
}

// colorsDue says whether r, which differs from the last report at most in
// its colours, is to be sent now (l.mu held). Colours alone are reported at
// most every ColorsEvery, on the next beat (hw/wake) with the rest of the
// daemon's periodic work, and only if they still differ then: the
// heartbeat's 100 ms dip, which starts just before a whole second, never
// is. On the beat r takes what the patterns give at that instant, since an
// edge due then (the dip's end) may not have been written yet.
func (l *Light) colorsDue(r *LightReport, now time.Time) bool {
	if slices.Equal(r.Colors, l.rep.Colors) {
		l.colorsAt = time.Time{}
		return false
	}
	if now.Sub(l.repAt) < l.o.ColorsEvery {
		return false
	}
	if l.colorsAt.IsZero() {
		l.colorsAt = wake.Next(now, time.Second)
	}
	if now.Before(l.colorsAt) {
		return false
	}
	if f := l.player.Frame(now); len(f) == len(r.Colors) {
		r.Colors = f
	}
	if slices.Equal(r.Colors, l.rep.Colors) {
		l.colorsAt = time.Time{}
		return false
	}
	return true
}

// report sends the state if it changed; it says whether it sent.
func (l *Light) report() bool {
	l.mu.Lock()
	r := LightReport{Err: l.err, Mode: l.mode}
	if l.dev != nil {
		r.Found, r.Kind, r.Serial, r.LEDs = true, l.dev.Kind(), l.dev.Serial(), l.dev.LEDs()
		r.Colors = slices.Clone(l.frame)
	}
	if ps := l.player.Patterns(); len(ps) > 0 {
		r.Pattern = ps[0].Name
	}
	same := r.Found == l.rep.Found && r.Err == l.rep.Err && r.Kind == l.rep.Kind && r.Serial == l.rep.Serial &&
		r.LEDs == l.rep.LEDs && r.Mode == l.rep.Mode && r.Pattern == l.rep.Pattern
	now := time.Now()
	if same && !l.colorsDue(&r, now) {
		l.mu.Unlock()
		return false
	}
	l.colorsAt = time.Time{}
	l.rep, l.repAt = r, now
	l.mu.Unlock()
	l.o.Report(r)
	return true
}
