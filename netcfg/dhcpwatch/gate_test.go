package dhcpwatch

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestGate(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	other := &Sighting{Server: netip.MustParseAddr("192.168.50.2"), Type: "OFFER"}
	type step struct {
		at      time.Duration
		carrier *bool
		report  *Report
		open    bool
		wait    time.Duration
	}
	yes, no := true, false
	listen := func(d time.Duration) *Report { return &Report{At: at(d), Listening: true} }
	fault := func(d time.Duration) *Report { return &Report{At: at(d), Err: errors.New("socket: permission denied")} }
	seen := func(d time.Duration) *Report {
		s := *other
		s.At = at(d)
		return &Report{At: at(d), Listening: true, Sighting: &s}
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"no carrier: never open", []step{
			{at: 0, report: listen(0)},
			{at: 10 * time.Second, open: false},
		}},
		{"errors never count as no other server", []step{
			{at: 0, carrier: &yes, report: fault(0)},
			{at: 10 * time.Second, report: fault(10 * time.Second), open: false},
		}},
		{"open after the first window with carrier", []step{
			{at: 0, carrier: &yes, report: listen(0), open: false, wait: 3 * time.Second},
			{at: 2 * time.Second, open: false, wait: time.Second},
			{at: 3 * time.Second, open: true},
		}},
		{"carrier lost during the window restarts it", []step{
			{at: 0, carrier: &yes, report: listen(0)},
			{at: 2 * time.Second, carrier: &no, open: false},
			{at: 3 * time.Second, carrier: &yes, open: false, wait: 3 * time.Second},
			{at: 6 * time.Second, open: true},
		}},
		{"a fault during the window restarts it", []step{
			{at: 0, carrier: &yes, report: listen(0)},
			{at: 2 * time.Second, report: fault(2 * time.Second), open: false},
			{at: 3 * time.Second, report: listen(3 * time.Second), open: false},
			{at: 6 * time.Second, open: true},
		}},
		{"another server in the window: closed until quiet", []step{
			{at: 0, carrier: &yes, report: listen(0)},
			{at: time.Second, report: seen(time.Second), open: false},
			{at: 4 * time.Second, open: false, wait: 7 * time.Second},
			{at: 11 * time.Second, open: true},
		}},
		{"another server while serving: closed at once, open after quiet", []step{
			{at: 0, carrier: &yes, report: listen(0)},
			{at: 3 * time.Second, open: true},
			{at: 5 * time.Second, report: seen(5 * time.Second), open: false, wait: 10 * time.Second},
			{at: 8 * time.Second, report: seen(8 * time.Second), open: false, wait: 10 * time.Second},
			{at: 17 * time.Second, open: false, wait: time.Second},
			{at: 18 * time.Second, open: true},
		}},
		{"silenced, and the watcher fails: stays closed", []step{
			{at: 0, carrier: &yes, report: listen(0)},
			{at: 3 * time.Second, report: seen(3 * time.Second), open: false},
			{at: 4 * time.Second, report: fault(4 * time.Second), open: false, wait: 0},
			{at: 30 * time.Second, open: false},
			{at: 31 * time.Second, report: listen(31 * time.Second), open: false, wait: 10 * time.Second},
			{at: 41 * time.Second, open: true},
		}},
		{"first window skipped (probe 0s)", []step{
			{at: 0, open: true},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := &Gate{First: 3 * time.Second, Quiet: 10 * time.Second}
			if tc.name == "first window skipped (probe 0s)" {
				g.First = 0
			}
			for i, s := range tc.steps {
				if s.carrier != nil {
					g.Carrier(at(s.at), *s.carrier)
				}
				if s.report != nil {
					g.Report(*s.report)
				}
				ok, why, wait := g.Open(at(s.at))
				if ok != s.open || (s.wait != 0 && wait != s.wait) {
					t.Fatalf("step %d at %v: open %v (%s) wait %v; want open %v wait %v", i, s.at, ok, why, wait, s.open, s.wait)
				}
				if !ok && why == "" {
					t.Fatalf("step %d: closed without a reason", i)
				}
			}
		})
	}
}

// Changes passes faults, sightings and the first "listening" after each
// start or fault; the probes in between are dropped.
func TestChanges(t *testing.T) {
	var got []string
	f := Changes(func(r Report) {
		switch {
		case r.Err != nil:
			got = append(got, "err")
		case r.Sighting != nil:
			got = append(got, "seen")
		default:
			got = append(got, "listening")
		}
	})
	seen := &Sighting{Type: "OFFER"}
	for _, r := range []Report{
		{Listening: true}, {Listening: true}, {Listening: true, Sighting: seen}, {Listening: true},
		{Err: errors.New("down")}, {Err: errors.New("down")}, {Listening: true}, {Listening: true},
	} {
		f(r)
	}
	want := "listening seen err err listening"
	if s := strings.Join(got, " "); s != want {
		t.Errorf("passed %q, want %q", s, want)
	}
}
