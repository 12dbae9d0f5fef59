package dhcpwatch

import (
	"fmt"
	"net/netip"
	"time"
)

// Gate decides from a watcher's reports whether our DHCP server may
// answer. It is a plain value owned by one goroutine (the daemon's loop);
// time comes in with every call.
//
// Our server may answer once the interface has had carrier and the watcher
// has been listening without a fault for First (the initial check; 0
// skips it), and, after another server was seen, once that one has been
// silent for Quiet. A fault or lost carrier restarts the First window
// only before our server first answered: afterwards it does not silence
// ours (our own socket may be what failed), but it also does not end a
// silence: the other server must be heard to be silent, for Quiet, while
// listening.
type Gate struct {
	First, Quiet time.Duration

	carrier   bool
	listening bool
	okSince   time.Time // listening with carrier since
	fault     string
	cleared   bool // the first window passed
	seen      time.Time
	server    netip.Addr
	sightings int64
}

// Carrier reports the interface's carrier.
func (g *Gate) Carrier(now time.Time, up bool) {
	if up == g.carrier {
		return
	}
	g.carrier = up
	if up && g.listening {
		g.okSince = now
	}
}

// Report folds a watcher report in.
func (g *Gate) Report(r Report) {
	switch {
	case r.Err != nil:
		g.listening, g.fault = false, r.Err.Error()
	case r.Listening && !g.listening:
		g.listening, g.fault, g.okSince = true, "", r.At
	}
	if s := r.Sighting; s != nil {
		g.seen, g.server = s.At, s.Server
		g.sightings++
	}
}

// Open reports whether our server may answer at now, and if not, why and
// how long until it might (0: not by waiting alone).
func (g *Gate) Open(now time.Time) (ok bool, why string, wait time.Duration) {
	good := g.carrier && g.listening
	if !g.cleared {
		switch {
		case g.First == 0:
			g.cleared = true
		case !g.carrier:
			return false, "waiting for carrier before checking for another DHCP server", 0
		case !g.listening:
			return false, "cannot check for another DHCP server yet: " + orUnknown(g.fault), 0
		case now.Sub(g.okSince) < g.First:
			return false, "checking for another DHCP server", g.First - now.Sub(g.okSince)
		default:
			g.cleared = true
		}
	}
	if g.seen.IsZero() {
		return true, "", 0
	}
	from := g.seen
	if g.okSince.After(from) {
		from = g.okSince
	}
	quietFor := now.Sub(from)
	if good && quietFor >= g.Quiet {
		return true, "", 0
	}
	if good {
		wait = g.Quiet - quietFor
	}
	return false, fmt.Sprintf("another DHCP server (%v) answers; ours is silent until it has been quiet for %v", g.server, g.Quiet), wait
}

// Skip passes the first window without listening: for an interface on
// which nothing can answer yet (a bridge without ports).
func (g *Gate) Skip() { g.cleared = true }

// Other is the last other server seen, with when; zero when none.
func (g *Gate) Other() (netip.Addr, time.Time) { return g.server, g.seen }

// Sightings counts other servers' replies seen.
func (g *Gate) Sightings() int64 { return g.sightings }

// Checked reports whether the first window has passed.
func (g *Gate) Checked() bool { return g.cleared }

func orUnknown(s string) string {
	if s == "" {
		return "not started"
	}
	return s
}

// Changes wraps report so that it sees only what can change a Gate: every
// fault and sighting, and the first "listening" after a start or a fault.
// Watch reports every probe it sends (once a second); the daemon's state
// loop has no use for the repeats.
func Changes(report func(Report)) func(Report) {
	listening := false
	return func(r Report) {
		if r.Err == nil && r.Sighting == nil && r.Listening && listening {
			return
		}
		listening = r.Err == nil && r.Listening
		report(r)
	}
}
