package led

import (
	"math"
	"time"
)

// Step is one colour held for a while.
type Step struct {
	Color RGB
	For   time.Duration
}

// Pattern is a loop of steps; a single step is a steady colour. Name
// identifies it: playing a pattern of the same name again keeps its phase.
type Pattern struct {
	Name  string
	Steps []Step
}

// Steady is one colour, unchanging.
func Steady(name string, c RGB) Pattern {
	return Pattern{Name: name, Steps: []Step{{c, time.Hour}}}
}

// Off is dark.
var Off = Steady("off", RGB{})

// Blink is on for on, off for off, repeating.
func Blink(name string, c RGB, on, off time.Duration) Pattern {
	return Pattern{Name: name, Steps: []Step{{c, on}, {RGB{}, off}}}
}

// Breathe fades c in and out over period, in steps of step (a raised
// cosine, so it looks even to the eye).
func Breathe(name string, c RGB, period, step time.Duration) Pattern {
	n := int(period / step)
	p := Pattern{Name: name}
	for i := range n {
		f := (1 - math.Cos(2*math.Pi*float64(i)/float64(n))) / 2
		s := c.Scale(f)
		if k := len(p.Steps); k > 0 && p.Steps[k-1].Color == s {
			p.Steps[k-1].For += step // equal neighbours are one step: no write
			continue
		}
		p.Steps = append(p.Steps, Step{s, step})
	}
	return p
}

// Period is the length of one loop.
func (p Pattern) Period() time.Duration {
	var d time.Duration
	for _, s := range p.Steps {
		d += s.For
	}
	return d
}

// At returns the colour at t into the pattern and how long it lasts from
// there (until the next edge).
func (p Pattern) At(t time.Duration) (RGB, time.Duration) {
	period := p.Period()
	if period <= 0 {
		return RGB{}, time.Hour
	}
	if len(p.Steps) == 1 {
		return p.Steps[0].Color, time.Hour
	}
	t %= period
	for _, s := range p.Steps {
		if t < s.For {
			return s.Color, s.For - t
		}
		t -= s.For
	}
	return p.Steps[0].Color, p.Steps[0].For // not reached
}

// MinEdgeGap is the shortest time between two edges of the pattern, as
// it loops: what "never faster than 2 Hz" is checked against.
func (p Pattern) MinEdgeGap() time.Duration {
	if len(p.Steps) < 2 {
		return time.Hour
	}
	gap := time.Duration(math.MaxInt64)
	for _, s := range p.Steps {
		gap = min(gap, s.For)
	}
	return gap
}
