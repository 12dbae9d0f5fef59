package notify

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func status(health string, nodes ...api.Node) *api.Status {
	s := &api.Status{Health: api.Health{State: health}}
	if health == api.HealthDegraded {
		s.Health.Reasons = []string{"LCD missing: no answer at 0x27"}
	}
	s.Power.Nodes = nodes
	return s
}

func node(name, state, requested string) api.Node {
	return api.Node{Name: name, State: state, Requested: requested}
}

// step is a status seen at an offset from t0; the events it (or a tick
// in between) produces are summarised as "kind subject previous->state".
type step struct {
	at time.Duration
	s  *api.Status
}

func run(tr *Tracker, steps []step) []string {
	var out []string
	add := func(evs []Event) {
		for _, e := range evs {
			out = append(out, fmt.Sprintf("%s %s %s->%s", e.Kind, e.Subject, e.Previous, e.State))
		}
	}
	var last *api.Status
	for _, st := range steps {
		now := t0.Add(st.at)
		// The caller ticks at Due, before the next status arrives.
		if due := tr.Due(); !due.IsZero() && !due.After(now) && last != nil {
			add(tr.Tick(last.Health.Reasons, due))
		}
		add(tr.Observe(st.s, now))
		last = st.s
	}
	return out
}

func TestTrackerHealth(t *testing.T) {
	tr := NewTracker("pi", 5*time.Second, Memory{}, t0)
	got := run(tr, []step{
		{0, status(api.HealthStarting)},
		{time.Second, status(api.HealthOK)}, // the start: nothing
		{10 * time.Second, status(api.HealthDegraded)},
		{12 * time.Second, status(api.HealthOK)}, // a 2 s blip: nothing
		{20 * time.Second, status(api.HealthDegraded)},
		{22 * time.Second, status(api.HealthDegraded)}, // the same again: nothing
		{26 * time.Second, status(api.HealthFailed)},
		{40 * time.Second, status(api.HealthOK)},
		{50 * time.Second, status(api.HealthOK)},
		{60 * time.Second, status(api.HealthStopped)},
	})
	want := []string{"health health ok->degraded", "health health degraded->failed", "health health failed->ok"}
	if !slices.Equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
}

func TestTrackerSummaries(t *testing.T) {
	tr := NewTracker("pi", 0, Memory{}, t0)
	evs := tr.Observe(status(api.HealthDegraded), t0)
	if len(evs) != 1 || evs[0].Summary != "pi: health degraded: LCD missing: no answer at 0x27" || evs[0].Severity != "warning" || len(evs[0].Reasons) != 1 {
		t.Errorf("degraded: %+v", evs)
	}
	evs = tr.Observe(status(api.HealthOK), t0.Add(time.Second))
	if len(evs) != 1 || evs[0].Summary != "pi: health ok again (was degraded)" || evs[0].Severity != "ok" || evs[0].Reasons != nil {
		t.Errorf("ok: %+v", evs)
	}
	evs = tr.Observe(status(api.HealthOK, node("p2", api.NodeUnreachable, "")), t0.Add(2*time.Second))
	if len(evs) != 1 || evs[0].Summary != "pi: node p2 is powered on but does not answer" || evs[0].ID == "" {
		t.Errorf("unreachable: %+v", evs)
	}
}

func TestTrackerNodes(t *testing.T) {
	tr := NewTracker("pi", 0, Memory{}, t0)
	ok := api.HealthOK
	got := run(tr, []step{
		{0, status(ok, node("p1", api.NodeBooting, "on"), node("p2", api.NodeUp, ""))},
		{1 * time.Second, status(ok, node("p1", api.NodeUnreachable, "on"), node("p2", api.NodeUp, ""))},
		{2 * time.Second, status(ok, node("p1", api.NodeUnreachable, "on"), node("p2", api.NodeUp, ""))},
		// p1 reboots: booting keeps the alarm, up ends it.
		{3 * time.Second, status(ok, node("p1", api.NodeBooting, "on"), node("p2", api.NodeUp, ""))},
		{4 * time.Second, status(ok, node("p1", api.NodeUp, "on"), node("p2", api.NodeUp, ""))},
		// p2 powered off on request: nothing, ever.
		{5 * time.Second, status(ok, node("p1", api.NodeUp, "on"), node("p2", api.NodeOff, "off"))},
		{6 * time.Second, status(ok, node("p1", api.NodeUp, "on"), node("p2", api.NodeUnreachable, "off"))},
		// p1 unreachable, then powered off by the user: the alarm ends.
		{7 * time.Second, status(ok, node("p1", api.NodeUnreachable, "on"), node("p2", api.NodeOff, "off"))},
		{8 * time.Second, status(ok, node("p1", api.NodeOff, "off"), node("p2", api.NodeOff, "off"))},
	})
	want := []string{
		"node p1 booting->unreachable", "node p1 unreachable->up",
		"node p1 up->unreachable", "node p1 unreachable->off",
	}
	if !slices.Equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
}

// What was told survives a restart: the same situation after it tells
// nothing, a changed one tells the change.
func TestTrackerMemoryAcrossRestarts(t *testing.T) {
	tr := NewTracker("pi", 0, Memory{}, t0)
	tr.Observe(status(api.HealthDegraded, node("p1", api.NodeUnreachable, "")), t0)
	mem := tr.Memory()
	if mem.Health != api.HealthDegraded || !slices.Equal(mem.Unreachable, []string{"p1"}) {
		t.Fatalf("memory %+v", mem)
	}
	again := NewTracker("pi", 0, mem, t0.Add(time.Minute))
	got := run(again, []step{
		{time.Minute, status(api.HealthStarting)},
		{time.Minute + time.Second, status(api.HealthDegraded, node("p1", api.NodeBooting, ""))},
		{time.Minute + 5*time.Second, status(api.HealthDegraded, node("p1", api.NodeUnreachable, ""))},
	})
	if len(got) != 0 {
		t.Errorf("a restart in the same state told %q", got)
	}
	got = run(again, []step{{2 * time.Minute, status(api.HealthOK, node("p1", api.NodeUp, ""))}})
	if !slices.Equal(got, []string{"health health degraded->ok", "node p1 unreachable->up"}) {
		t.Errorf("after the restart: %q", got)
	}
	// IDs differ between the two runs of the tracker.
	a := NewTracker("pi", 0, Memory{}, t0).Observe(status(api.HealthFailed), t0)
	b := NewTracker("pi", 0, Memory{}, t0.Add(time.Second)).Observe(status(api.HealthFailed), t0)
	if a[0].ID == b[0].ID || !strings.HasSuffix(a[0].ID, "-1") {
		t.Errorf("IDs %q and %q", a[0].ID, b[0].ID)
	}
}
