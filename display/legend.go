package display

import (
	"fmt"
	"time"

	"github.com/headnode/headnode/display/led"
)

// Colours at full brightness; Legend scales them.
var (
	Green = led.RGB{G: 255}
	Blue  = led.RGB{B: 255}
	Amber = led.RGB{R: 255, G: 110}
	Red   = led.RGB{R: 255}
	White = led.RGB{R: 255, G: 255, B: 255}
)

// Timings of the legend (the README's LED table). Nothing flashes faster
// than 2 Hz: the fastest on/off cycle is 250 ms + 250 ms.
const (
	HeartbeatPeriod = 5 * time.Second
	HeartbeatDip    = 100 * time.Millisecond
	BreathePeriod   = 2 * time.Second
	breatheStep     = 100 * time.Millisecond
	SlowBlink       = time.Second
	ShortBlink      = 250 * time.Millisecond
	FailPause       = 2 * time.Second
	IdentifyFor     = 30 * time.Second
)

// Legend maps health to patterns. Brightness (0-1) scales every colour.
type Legend struct{ Brightness float64 }

func (l Legend) c(c led.RGB) led.RGB { return c.Scale(l.Brightness) }

// Starting (and reloading): blue, breathing over 2 s.
func (l Legend) Starting() led.Pattern {
	return led.Breathe("starting", l.c(Blue), BreathePeriod, breatheStep)
}

// OK: green, with a 100 ms dark dip every 5 s, so that a hung daemon (a
// steady green) can be told from a live one.
func (l Legend) OK() led.Pattern {
	return led.Pattern{Name: "ok", Steps: []led.Step{{Color: l.c(Green), For: HeartbeatPeriod - HeartbeatDip}, {For: HeartbeatDip}}}
}

// Degraded: amber, 1 s on, 1 s off.
func (l Legend) Degraded() led.Pattern {
	return led.Blink("degraded", l.c(Amber), SlowBlink, SlowBlink)
}

// Failed: n short red blinks, then 2 s dark; n is the failure class.
func (l Legend) Failed(class int) led.Pattern {
	n := max(1, class)
	p := led.Pattern{Name: fmt.Sprintf("failed-%d", n)}
	for i := range n {
		off := ShortBlink
		if i == n-1 {
			off = FailPause
		}
		p.Steps = append(p.Steps, led.Step{Color: l.c(Red), For: ShortBlink}, led.Step{For: off})
	}
	return p
}

// Identify: white, 250 ms on, 250 ms off (for 30 s; the Light ends it).
func (l Legend) Identify() led.Pattern {
	return led.Blink("identify", l.c(White), ShortBlink, ShortBlink)
}

// Stopped: a steady dim red (a third of the brightness, 10 % at the
// default 0.3), no heartbeat: headnode is not running.
func (l Legend) Stopped() led.Pattern {
	return led.Steady("stopped", Red.Scale(l.Brightness/3))
}

// Cluster is LED 0's pattern for a health state.
func (l Legend) Cluster(h Health) led.Pattern {
	switch h.State {
	case StateOK:
		return l.OK()
	case StateDegraded:
		return l.Degraded()
	case StateFailed:
		return l.Failed(h.Class)
	case StateStopped:
		return l.Stopped()
	}
	return l.Starting()
}

// Node is a node LED's pattern, in the same vocabulary: green up, blue
// (breathing) booting, amber (blinking) unreachable or unknown, off when
// powered off.
func (l Legend) Node(s NodeState) led.Pattern {
	switch s {
	case NodeUp:
		return led.Steady("node-up", l.c(Green))
	case NodeBooting:
		return led.Breathe("node-booting", l.c(Blue), BreathePeriod, breatheStep)
	case NodeUnreachable, NodeUnknown:
		return led.Blink("node-"+string(s), l.c(Amber), SlowBlink, SlowBlink)
	}
	return led.Off
}

// Patterns gives every LED of an n-LED light its pattern: LED 0 the
// cluster, LEDs 1..n-1 nodes p1..p(n-1), dark where there is no node.
// With more nodes than node LEDs (a thousand nodes on an 8-LED strip),
// each LED stands for an equal share of the nodes in order (LED 1 the
// first share) and shows the most urgent state among them: unreachable or
// unknown, then booting, then up, off only when all of them are off.
func (l Legend) Patterns(cluster led.Pattern, nodes []Node, n int) []led.Pattern {
	out := make([]led.Pattern, max(n, 1))
	out[0] = cluster
	slots := len(out) - 1
	for i := 1; i < len(out); i++ {
		out[i] = led.Off
		switch {
		case len(nodes) <= slots:
			if i-1 < len(nodes) {
				out[i] = l.Node(nodes[i-1].State)
			}
		default:
			from, to := (i-1)*len(nodes)/slots, i*len(nodes)/slots
			out[i] = l.Node(worst(nodes[from:to]))
		}
	}
	return out
}

// worst is the most urgent state of a group of nodes for one LED.
func worst(nodes []Node) NodeState {
	rank := func(s NodeState) int {
		switch s {
		case NodeUnreachable, NodeUnknown:
			return 3
		case NodeBooting:
			return 2
		case NodeUp:
			return 1
		}
		return 0
	}
	w := NodeOff
	for _, n := range nodes {
		if rank(n.State) > rank(w) {
			w = n.State
		}
	}
	return w
}
