package led

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Player shows one pattern per LED on a device, writing only on edges:
// when the frame the patterns give for now differs from the last one
// written.
type Player struct {
	// OnFrame, when set, is told every frame written (for status
	// reports); OnError every failed write. Both run on the player's
	// goroutine.
	OnFrame func([]RGB)
	OnError func(error)

	mu       sync.Mutex
	dev      Device
	patterns []Pattern
	starts   []time.Time
	written  []RGB // nil: nothing written to dev yet
	wake     chan struct{}
}

// NewPlayer returns a player; Run drives it.
func NewPlayer() *Player {
	return &Player{wake: make(chan struct{}, 1)}
}

// SetDevice changes the device (nil: none). A new device gets the whole
// frame at once.
func (p *Player) SetDevice(d Device) {
	p.mu.Lock()
	p.dev, p.written = d, nil
	p.mu.Unlock()
	p.poke()
}

// Play sets the patterns, LED 0 first. An LED whose pattern keeps its name
// keeps its phase (a heartbeat is not restarted by an unrelated change);
// one with a new pattern starts it now.
func (p *Player) Play(patterns []Pattern) {
	now := time.Now()
	p.mu.Lock()
	starts := make([]time.Time, len(patterns))
	for i, pat := range patterns {
		if i < len(p.patterns) && p.patterns[i].Name == pat.Name {
			starts[i] = p.starts[i]
		} else {
			starts[i] = beatStart(pat, now)
		}
	}
	p.patterns, p.starts = slices.Clone(patterns), starts
	p.mu.Unlock()
	p.poke()
}

// Patterns returns what is playing.
func (p *Player) Patterns() []Pattern {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.patterns)
}

func (p *Player) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Run plays until ctx ends.
func (p *Player) Run(ctx context.Context) {
	for {
		wait := p.Step()
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-p.wake:
			t.Stop()
		case <-t.C:
		}
	}
}

// beatStart is when a pattern that begins now is counted from: the last
// whole second, if its first step is still showing then, so that its
// edges fall on the daemon's once-a-second beat (hw/wake) with the rest
// of its periodic work instead of waking an idle head on their own. The
// heartbeat's 100 ms dip then ends on the beat; with eight LEDs started
// at random moments there were up to sixteen wake-ups of their own every
// 5 s. A pattern whose first step is shorter than the time since the
// second (a 250 ms blink started late in it) starts now, as asked.
func beatStart(pat Pattern, now time.Time) time.Time {
	start := now.Truncate(time.Second)
	if len(pat.Steps) == 0 || now.Sub(start) >= pat.Steps[0].For {
		return now
	}
	return start
}

// Step writes the frame for now if it changed and returns the time to the
// next edge. Run calls it; tests and one-shot callers may too.
func (p *Player) Step() time.Duration {
	now := time.Now()
	p.mu.Lock()
	dev := p.dev
	frame, next := p.frameLocked(now)
	changed := p.written == nil || !slices.Equal(frame, p.written)
	p.mu.Unlock()
	if dev == nil || !changed {
		return next
	}
	if err := dev.Show(frame); err != nil {
		if p.OnError != nil {
			p.OnError(err)
		}
		return next
	}
	p.mu.Lock()
	if p.dev == dev {
		p.written = frame
	}
	p.mu.Unlock()
	if p.OnFrame != nil {
		p.OnFrame(frame)
	}
	return next
}

// Frame is every LED's colour at t as the patterns give it: what the
// LEDs show at t once the player has written its edges.
func (p *Player) Frame(t time.Time) []RGB {
	p.mu.Lock()
	defer p.mu.Unlock()
	f, _ := p.frameLocked(t)
	return f
}

// frameLocked computes every LED's colour at now and the time until the
// first of them changes.
func (p *Player) frameLocked(now time.Time) ([]RGB, time.Duration) {
	n := len(p.patterns)
	if p.dev != nil {
		n = p.dev.LEDs()
	}
	frame := make([]RGB, n)
	next := time.Hour
	for i := 0; i < n && i < len(p.patterns); i++ {
		c, d := p.patterns[i].At(now.Sub(p.starts[i]))
		frame[i] = c
		next = min(next, d)
	}
	return frame, next
}
