package gpiopin

import (
	"fmt"
	"sync"
)

// Pin is one emulated line.
type Pin struct {
	name string

	mu       sync.Mutex
	output   bool
	level    bool // driven level when output
	pull     bool // level read as input: the pull the caller gives (see the package documentation)
	drives   int
	fail     error
	onChange func()
}

// ResetPull is BCM GPIO n's pull after the SoC resets (BCM2835 ARM
// Peripherals, Table 6-31): high for GPIO0-8, low for GPIO9-27.
func ResetPull(n int) bool { return n >= 0 && n <= 8 }

// New returns line name as after reset: an input pulled to pull.
func New(name string, pull bool) *Pin { return &Pin{name: name, pull: pull} }

// Name returns the line's name.
func (p *Pin) Name() string { return p.name }

// State returns whether the line is an output and its level.
func (p *Pin) State() (output, high bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail != nil {
		return false, false, p.fail
	}
	if p.output {
		return true, p.level, nil
	}
	return false, p.pull, nil
}

// Drive makes the line an output at level high.
func (p *Pin) Drive(high bool) error {
	p.mu.Lock()
	if p.fail != nil {
		p.mu.Unlock()
		return p.fail
	}
	changed := !p.output || p.level != high
	p.output, p.level = true, high
	p.drives++
	f := p.onChange
	p.mu.Unlock()
	if changed && f != nil {
		f()
	}
	return nil
}

// OnChange registers f to be called after the line changes.
func (p *Pin) OnChange(f func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.onChange = f
}

// Save returns the line's direction and driven level.
func (p *Pin) Save() (output, level bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.output, p.level
}

// Restore sets direction and level as saved.
func (p *Pin) Restore(output, level bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.output, p.level = output, level
}

// Level is what a meter on the pin shows.
func (p *Pin) Level() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.output {
		return p.level
	}
	return p.pull
}

// Drives counts Drive calls.
func (p *Pin) Drives() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.drives
}

// Reset puts the line back as after a SoC reset: an input.
func (p *Pin) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.output, p.level = false, false
}

// Fail makes every access fail (nil restores), as a line claimed by
// another driver.
func (p *Pin) Fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fail = err
}

// String implements fmt.Stringer.
func (p *Pin) String() string { return fmt.Sprintf("%s(emulated)", p.name) }
