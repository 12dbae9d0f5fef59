package display

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/headnode/headnode/display/led"
	"github.com/headnode/headnode/hw/emu/blinkstick"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// timeline plays patterns on an emulated stick for d and returns what the
// stick showed and when: "+0s #00ff00 #000000 ...". It runs in a synctest
// bubble whose clock starts at t0, so every write is stamped at its edge.
func timeline(t *testing.T, kind blinkstick.Kind, patterns []led.Pattern, d time.Duration) []blinkstick.Change {
	t.Helper()
	var h []blinkstick.Change
	synctest.Test(t, func(t *testing.T) {
		s := blinkstick.New(kind, nil)
		dev, err := led.NewBlinkStick(s, s.Serial(), s.BCDDevice(), true)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		p := led.NewPlayer()
		p.SetDevice(dev)
		p.Play(patterns)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { p.Run(ctx); close(done) }()
		time.Sleep(d)
		synctest.Wait() // an edge at d is written too
		cancel()
		<-done
		for _, c := range s.History() {
			c.At = t0.Add(c.At.Sub(start))
			h = append(h, c)
		}
	})
	return h
}

// describe renders LED 0's history as "+offset colour" lines.
func describe(h []blinkstick.Change, led int) string {
	var b strings.Builder
	for _, c := range h {
		fmt.Fprintf(&b, "+%v %s\n", c.At.Sub(t0), c.LEDs[led])
	}
	return b.String()
}

// The legend over time, as the stick shows it: pattern first, colour
// second.
func TestLegendOverTime(t *testing.T) {
	l := Legend{Brightness: 1}
	for _, tc := range []struct {
		name string
		p    led.Pattern
		d    time.Duration
		want string
	}{
		{"ok: green with a 100 ms dip every 5 s", l.OK(), 11 * time.Second,
			"+0s #00ff00\n+4.9s #000000\n+5s #00ff00\n+9.9s #000000\n+10s #00ff00\n"},
		{"degraded: amber 1 s on, 1 s off", l.Degraded(), 4 * time.Second,
			"+0s #ff6e00\n+1s #000000\n+2s #ff6e00\n+3s #000000\n+4s #ff6e00\n"},
		{"failed class 3: three short red blinks, 2 s dark", l.Failed(3), 5 * time.Second,
			"+0s #ff0000\n+250ms #000000\n+500ms #ff0000\n+750ms #000000\n+1s #ff0000\n+1.25s #000000\n+3.25s #ff0000\n+3.5s #000000\n+3.75s #ff0000\n+4s #000000\n+4.25s #ff0000\n+4.5s #000000\n"},
		{"identify: white 250 ms on, 250 ms off", l.Identify(), time.Second,
			"+0s #ffffff\n+250ms #000000\n+500ms #ffffff\n+750ms #000000\n+1s #ffffff\n"},
		{"stopped: steady dim red, no heartbeat", Legend{Brightness: 0.3}.Stopped(), 12 * time.Second,
			"+0s #190000\n"},
	} {
		got := describe(timeline(t, blinkstick.Original, []led.Pattern{tc.p}, tc.d), 0)
		if got != tc.want {
			t.Errorf("%s:\n%s\nwant:\n%s", tc.name, got, tc.want)
		}
	}
}

// Starting breathes: blue rises and falls over 2 s, never dark for long,
// and the same colour never goes out twice in a row.
func TestStartingBreathes(t *testing.T) {
	h := timeline(t, blinkstick.Original, []led.Pattern{Legend{Brightness: 1}.Starting()}, 4*time.Second)
	var peak, peakAt = uint8(0), time.Duration(0)
	for i, c := range h {
		if c.LEDs[0].R != 0 || c.LEDs[0].G != 0 {
			t.Errorf("not blue: %v", c.LEDs[0])
		}
		if c.LEDs[0].B > peak {
			peak, peakAt = c.LEDs[0].B, c.At.Sub(t0)
		}
		if i > 0 && c.LEDs[0] == h[i-1].LEDs[0] {
			t.Errorf("a write that changed nothing at %v", c.At.Sub(t0))
		}
	}
	if peak != 255 || peakAt != time.Second {
		t.Errorf("peak %d at %v, want 255 at 1s", peak, peakAt)
	}
	if len(h) < 30 || len(h) > 41 {
		t.Errorf("%d writes in 4 s", len(h))
	}
}

// Nothing flashes faster than 2 Hz: between two moments an LED lights up
// from dark there is at least 500 ms, for every pattern of the legend.
func TestNeverFasterThan2Hz(t *testing.T) {
	l := Legend{Brightness: 0.3}
	for _, p := range []led.Pattern{l.Starting(), l.OK(), l.Degraded(), l.Failed(1), l.Failed(4), l.Identify(), l.Stopped(),
		l.Node(NodeUp), l.Node(NodeBooting), l.Node(NodeUnreachable), l.Node(NodeUnknown), l.Node(NodeOff)} {
		var last time.Duration = -time.Hour
		var t1 time.Duration
		dark := true
		for range 3 { // three loops, so the wrap-around counts too
			for _, s := range p.Steps {
				lit := s.Color != (led.RGB{})
				if lit && dark {
					if t1-last < 500*time.Millisecond {
						t.Errorf("%s lights up %v after the previous time", p.Name, t1-last)
					}
					last = t1
				}
				dark = !lit
				t1 += s.For
			}
		}
	}
}

// On a Strip, LED 0 is the cluster and LEDs 1..7 are p1..p7: green up,
// blue booting, amber unreachable, dark when off or absent.
func TestNodeLEDs(t *testing.T) {
	l := Legend{Brightness: 1}
	nodes := []Node{{"p1", NodeUp}, {"p2", NodeBooting}, {"p3", NodeUnreachable}, {"p4", NodeOff}}
	h := timeline(t, blinkstick.Strip, l.Patterns(l.Cluster(Health{State: StateDegraded}), nodes, 8), 1500*time.Millisecond)
	first := h[0].LEDs
	if first[0] != (blinkstick.RGB{R: 255, G: 110}) || first[1] != (blinkstick.RGB{G: 255}) || first[3] != (blinkstick.RGB{R: 255, G: 110}) || first[4] != (blinkstick.RGB{}) || first[7] != (blinkstick.RGB{}) {
		t.Errorf("first frame %v", first)
	}
	var p2max uint8
	for _, c := range h {
		p2max = max(p2max, c.LEDs[2].B)
		if c.LEDs[1] != (blinkstick.RGB{G: 255}) {
			t.Errorf("p1 (up) changed: %v", c.LEDs[1])
		}
	}
	if p2max != 255 {
		t.Errorf("p2 (booting) never breathed up: max %d", p2max)
	}
	if last := h[len(h)-1].LEDs; last[0] != (blinkstick.RGB{}) || last[3] != (blinkstick.RGB{}) {
		t.Errorf("at 1.5 s cluster and p3 should be in their dark second: %v", last)
	}
}

// With more nodes than node LEDs, each of LEDs 1..7 of a Strip stands for
// a seventh of the nodes and shows the most urgent state among them.
func TestNodeLEDsSummariseManyNodes(t *testing.T) {
	l := Legend{Brightness: 1}
	nodes := make([]Node, 1024)
	for i := range nodes {
		nodes[i] = Node{fmt.Sprintf("p%d", i+1), NodeUp}
	}
	// LED 1 is p1..p146: all off but one booting; LED 3 (p293..p438) has
	// one unreachable among booting ones; LED 7 (p878..p1024) is off.
	for i := range 146 {
		nodes[i].State = NodeOff
	}
	nodes[100].State = NodeBooting
	for i := 292; i < 438; i++ {
		nodes[i].State = NodeBooting
	}
	nodes[437].State = NodeUnreachable
	for i := 877; i < 1024; i++ {
		nodes[i].State = NodeOff
	}
	got := l.Patterns(l.OK(), nodes, 8)
	want := []string{"node-booting", "node-up", "node-unreachable", "node-up", "node-up", "node-up", "off"}
	for i, w := range want {
		if got[i+1].Name != w {
			t.Errorf("LED %d plays %q, want %q", i+1, got[i+1].Name, w)
		}
	}
}
