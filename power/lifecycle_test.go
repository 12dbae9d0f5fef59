package power

import (
	"testing"
	"time"
)

func TestLifecycle(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	on, off := true, false
	l := Lifecycle{Grace: 60 * time.Second, DownAfter: 3 * time.Second, Probing: true}
	step := func(s float64, want string) {
		t.Helper()
		l.Update(at(s))
		if got := l.View("p1", at(s)).State; got != want {
			t.Fatalf("at %gs: %s, want %s", s, got, want)
		}
	}
	l.SetPowered("p1", nil, at(0))
	step(0, StateUnknown)
	l.SetPowered("p1", &off, at(1))
	step(1, StateOff)
	l.SetPowered("p1", &on, at(2))
	step(2, StateBooting)
	step(40, StateBooting)
	l.Seen("p1", true, at(41))
	step(41, StateUp)
	if v := l.View("p1", at(41)); !v.Reachable || !v.Since.Equal(at(41)) {
		t.Errorf("view %+v", v)
	}
	l.Seen("p1", false, at(42))
	step(43, StateUp) // within down_after
	step(44.5, StateUnreachable)
	l.Seen("p1", true, at(45))
	step(45, StateUp)
	// Powered off by request: off, not a fault; on again: booting again.
	l.SetPowered("p1", &off, at(50))
	step(50, StateOff)
	l.SetPowered("p1", &on, at(60))
	step(60, StateBooting)
	// Never answers: unreachable once the grace period is over.
	step(119, StateBooting)
	step(120, StateUnreachable)
	// A gadget link with carrier counts as an answer.
	l.SetLink("p1", true, true, at(121))
	step(121, StateUp)
	l.SetLink("p1", true, false, at(122))
	step(122, StateUnreachable)

	// Without a probe, a powered node counts as up unless its gadget link
	// says otherwise.
	n := Lifecycle{Grace: time.Minute, DownAfter: time.Second}
	n.SetPowered("p2", &on, at(0))
	n.Update(at(0))
	if s := n.View("p2", at(0)).State; s != StateUp {
		t.Errorf("no probe: %s", s)
	}
	n.SetLink("p2", true, false, at(1))
	n.Update(at(1))
	if s := n.View("p2", at(1)).State; s != StateUnreachable {
		t.Errorf("no probe, gadget link down: %s", s)
	}
}

// A node without power control (a network-booted node on a switch) is
// followed by the probe alone: unknown until it answers, up while it
// does, unreachable once it stops for down_after, up again on an answer.
func TestLifecycleWithoutPowerControl(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	l := Lifecycle{Grace: time.Minute, DownAfter: 3 * time.Second, Probing: true}
	step := func(s float64, want string) {
		t.Helper()
		l.Update(at(s))
		if got := l.View("p9", at(s)).State; got != want {
			t.Fatalf("at %gs: %s, want %s", s, got, want)
		}
	}
	l.SetPowered("p9", nil, at(0))
	step(0, StateUnknown)
	step(100, StateUnknown) // never heard from: no grace period to run out
	l.Seen("p9", true, at(101))
	step(101, StateUp)
	step(104, StateUp)
	step(104.5, StateUnreachable)
	l.Seen("p9", true, at(105))
	step(105, StateUp)

	// Without a probe there is no evidence at all.
	n := Lifecycle{DownAfter: time.Second}
	n.SetPowered("p9", nil, at(0))
	n.Seen("p9", true, at(0))
	n.Update(at(0))
	if s := n.View("p9", at(0)).State; s != StateUnknown {
		t.Errorf("no probe: %s", s)
	}
}
