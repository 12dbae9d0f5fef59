// Package wake puts the daemon's periodic work on one shared beat.
//
// Every wake-up of an idle Go process costs far more than the work it
// does: the thread leaves epoll, the scheduler spins up a second thread
// to look for more work, and the runtime's monitor thread polls at 20 µs
// until things are quiet again. Measured on the 2-core test machine (a
// program doing nothing but tick), eight 1-second tickers started at
// different moments cost 0.205 % of a core, the same eight firing on the
// same instant 0.028 %, one alone 0.024 %. So the daemon's tickers do not
// start from whenever their loop began: they fire on multiples of their
// period on the wall clock (a 5 s ticker on every fifth 1 s tick), and an
// idle head wakes about once a second, not once per timer.
package wake

import (
	"sync"
	"time"
)

// Next returns the first multiple of d (counted from Go's zero time, so
// on whole seconds for d = 1 s) that is more than a little after now
// (slop): a timer that fires just before its boundary, because the wall
// clock is being slewed, does not tick twice.
func Next(now time.Time, d time.Duration) time.Time {
	next := now.Truncate(d).Add(d)
	if next.Sub(now) < min(d/2, slop) {
		next = next.Add(d)
	}
	return next
}

// slop is far more than NTP's slew moves the wall clock against the
// monotonic one between two ticks (500 ppm at most: 0.5 ms a second).
const slop = 50 * time.Millisecond

// Until is how long from now to Next(now, d).
func Until(d time.Duration) time.Duration {
	now := time.Now()
	return Next(now, d).Sub(now)
}

// Ticker is time.Ticker with its ticks on multiples of its period. Like
// time.Ticker it drops ticks a slow reader misses.
type Ticker struct {
	C <-chan time.Time
	c chan time.Time

	mu      sync.Mutex
	d       time.Duration
	t       *time.Timer
	stopped bool
}

// NewTicker starts a ticker of period d (d > 0; NewTicker panics
// otherwise, as time.NewTicker does). The first tick comes at the next
// multiple of d, within d.
func NewTicker(d time.Duration) *Ticker {
	if d <= 0 {
		panic("wake.NewTicker: non-positive interval")
	}
	c := make(chan time.Time, 1)
	k := &Ticker{C: c, c: c, d: d}
	k.mu.Lock()
	k.t = time.AfterFunc(Until(d), k.fire)
	k.mu.Unlock()
	return k
}

func (k *Ticker) fire() {
	now := time.Now()
	select {
	case k.c <- now:
	default:
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.stopped {
		k.t.Reset(Next(now, k.d).Sub(now))
	}
}

// Reset changes the period (d > 0) and starts again from the next
// multiple of it.
func (k *Ticker) Reset(d time.Duration) {
	if d <= 0 {
		panic("wake.Ticker.Reset: non-positive interval")
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.d, k.stopped = d, false
	k.t.Reset(Until(d))
}

// Stop turns the ticker off; no tick is sent after Stop returns.
func (k *Ticker) Stop() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.stopped = true
	k.t.Stop()
}
