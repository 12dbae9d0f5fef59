package clusterhat

import (
	"fmt"

	"github.com/headnode/headnode/power/board"
)

// Line is one GPIO line as hw/gpio.Line (and the emulated
// hw/emu/gpiopin.Pin) provide it.
type Line interface {
	Name() string
	// State returns whether the line is an output and its level; it must
	// not change the line.
	State() (output, high bool, err error)
	// Drive makes the line an output at the level, level first.
	Drive(high bool) error
}

// V1Pins are the BCM GPIO numbers of a ClusterHAT v1.x: ALERT, P1-P4.
var V1Pins = [5]int{5, 6, 13, 19, 26}

// GPIODev is a ClusterHAT v1.x, driven by five GPIO lines, active high.
type GPIODev struct {
	alert Line
	nodes [4]Line
	opts  Opts
}

// NewGPIO returns a v1.x ClusterHAT on lines (ALERT, P1, P2, P3, P4, as
// V1Pins); of o, Minor, Size and the identity are used. Nothing is
// written.
func NewGPIO(lines [5]Line, o Opts) *GPIODev {
	o.Major = 1
	if o.Size < 1 || o.Size > 4 {
		o.Size = 4
	}
	return &GPIODev{alert: lines[0], nodes: [4]Line{lines[1], lines[2], lines[3], lines[4]}, opts: o}
}

func (d *GPIODev) all() []Line { return append([]Line{d.alert}, d.nodes[:]...) }

// Info implements board.Board.
func (d *GPIODev) Info() board.Info {
	rev := fmt.Sprintf("1.%d", d.opts.Minor)
	return board.Info{Kind: "clusterhat", Model: "ClusterHAT v" + rev, Revision: rev, Chip: "GPIO", Bus: -1,
		Major: 1, Minor: d.opts.Minor, UUID: d.opts.UUID, Vendor: d.opts.Vendor, ProductID: d.opts.ProductID, Forced: d.opts.Forced}
}

// Nodes implements board.Board: P1-P4, or as many as Opts.Size counts.
func (d *GPIODev) Nodes() int { return d.opts.Size }

// Init implements board.Board. After the Pi boots, the lines are inputs
// with the SoC's reset pulls (high on BCM 5 and 6, low on 13, 19 and 26;
// see hw/emu/gpiopin). The official tool makes them outputs without a
// level, which drives the reset latch value, low; this does the same
// explicitly for every line that is not an output yet, and leaves lines
// already driven (by an earlier run) alone, so a running node is never
// switched off.
func (d *GPIODev) Init() (bool, error) {
	fresh := false
	for _, l := range d.all() {
		out, _, err := l.State()
		if err != nil {
			return false, err
		}
		if out {
			continue
		}
		fresh = true
		if err := l.Drive(false); err != nil {
			return false, fmt.Errorf("%s: %w", l.Name(), err)
		}
	}
	return fresh, nil
}

// Read implements board.Board: the lines' levels.
func (d *GPIODev) Read() (board.State, error) {
	st := board.State{Powered: make([]bool, d.opts.Size)}
	for i, l := range d.all() {
		out, high, err := l.State()
		if err != nil {
			return board.State{}, err
		}
		if !out {
			st.Reset = true
		}
		if i == 0 {
			st.Alert = board.Flag(high)
		} else if i <= d.opts.Size {
			st.Powered[i-1] = high
		}
	}
	return st, nil
}

// SetPower implements board.Board.
func (d *GPIODev) SetPower(n int, on bool) error {
	if n < 1 || n > d.opts.Size {
		return fmt.Errorf("ClusterHAT has nodes 1-%d, not %d", d.opts.Size, n)
	}
	return d.nodes[n-1].Drive(on)
}

// SetAlert implements board.Board.
func (d *GPIODev) SetAlert(on bool) error { return d.alert.Drive(on) }

// SetHub implements board.Board.
func (d *GPIODev) SetHub(bool) error { return board.Unsupported("%v", errNoHub.Error()) }

// ResetHub implements board.Board.
func (d *GPIODev) ResetHub() error { return d.SetHub(true) }

// SetLEDs implements board.Board.
func (d *GPIODev) SetLEDs(bool) error {
	return board.Unsupported("ClusterHAT v1.x has no LED switch (only v2.x does)")
}

var _ board.Board = (*GPIODev)(nil)
