package display

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/headnode/headnode/display/lcd"
	"github.com/headnode/headnode/hw/wake"
)

// LCD is what Screen needs of a display: *lcd.Dev.
type LCD interface {
	Write(rows []string) error
	Refresh() error
	Check() error
	Info() lcd.Info
}

// ScreenOpts configures a Screen.
type ScreenOpts struct {
	// Open finds and initialises the LCD.
	Open func() (LCD, error)
	// Cols and Rows of the panel.
	Cols, Rows int
	// Refresh is the period of full re-initialisation and redraw
	// (default 60 s): noise can desynchronise a 4-bit stream without any
	// error being seen.
	Refresh time.Duration
	// Check is how often the backpack is read to see whether it lost
	// power (default 2 s).
	Check time.Duration
	// Retry is how often a missing LCD is looked for (default 5 s).
	Retry time.Duration
	// Page is how long each page shows when the text needs more than one
	// (default 4 s).
	Page time.Duration
	// Report is told whenever what the Screen knows about the LCD
	// changes. It runs on the Screen's goroutine.
	Report func(ScreenReport)
}

// ScreenReport is the LCD's state.
type ScreenReport struct {
	Found bool
	Err   string // why it is missing, or the last write error
	Info  lcd.Info
	Rows  []string // the text written
}

// Screen keeps an LCD showing the latest Status.
type Screen struct {
	o    ScreenOpts
	wake chan struct{}

	mu     sync.Mutex
	status *Status
}

// NewScreen returns a Screen; Run drives it.
func NewScreen(o ScreenOpts) *Screen {
	if o.Refresh == 0 {
		o.Refresh = time.Minute
	}
	if o.Check == 0 {
		o.Check = 2 * time.Second
	}
	if o.Retry == 0 {
		o.Retry = 5 * time.Second
	}
	if o.Page == 0 {
		o.Page = 4 * time.Second
	}
	if o.Report == nil {
		o.Report = func(ScreenReport) {}
	}
	return &Screen{o: o, wake: make(chan struct{}, 1)}
}

// Show hands the Screen a new Status; it reaches the glass at once.
func (s *Screen) Show(st Status) {
	s.mu.Lock()
	st = st.clone()
	s.status = &st
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// screenRun is the state of one Run.
type screenRun struct {
	*Screen
	dev         LCD
	last        ScreenReport
	pages       [][]string
	page        int
	nextRefresh time.Time
	nextCheck   time.Time
	nextPage    time.Time
	nextOpen    time.Time
	// nextRetry is when to write again after a failed write (zero when
	// the last write worked): soon, so that one NACK does not leave a new
	// address off the glass until the next status change, then backing
	// off while the backpack stays silent.
	nextRetry time.Time
	failures  int
}

// retryFirst and retryMax bound the delay before rewriting after a
// failed write.
const (
	retryFirst = 20 * time.Millisecond
	retryMax   = 5 * time.Second
)

// Run keeps the LCD going until ctx ends; final, if not nil, is shown
// last (the daemon's "stopped").
func (s *Screen) Run(ctx context.Context, final func() (Status, bool)) {
	r := &screenRun{Screen: s}
	now := time.Now()
	r.nextOpen = now
	for {
		now = time.Now()
		if r.dev == nil && !now.Before(r.nextOpen) {
			r.open(now)
		}
		s.mu.Lock()
		st := s.status
		s.mu.Unlock()
		if st != nil {
			pages := Layout(*st, s.o.Cols, s.o.Rows)
			if !slices.EqualFunc(pages, r.pages, slices.Equal) {
				r.pages, r.page, r.nextPage = pages, 0, wake.Next(now, s.o.Page)
			}
		}
		if r.dev != nil {
			r.tick(now)
		}
		wait := r.nextOpen
		if r.dev != nil {
			wait = earliest(r.nextRefresh, r.nextCheck)
			if len(r.pages) > 1 {
				wait = earliest(wait, r.nextPage)
			}
			if !r.nextRetry.IsZero() {
				wait = earliest(wait, r.nextRetry)
			}
		}
		t := time.NewTimer(max(wait.Sub(now), 0))
		select {
		case <-ctx.Done():
			t.Stop()
			if st, ok := final(); ok && r.dev != nil {
				r.pages, r.page = Layout(st, s.o.Cols, s.o.Rows), 0
				r.write(now, r.dev.Write(r.pages[0]))
			}
			return
		case <-s.wake:
			t.Stop()
		case <-t.C:
		}
	}
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func (r *screenRun) open(now time.Time) {
	dev, err := r.o.Open()
	if err != nil {
		r.nextOpen = now.Add(r.o.Retry)
		r.report(ScreenReport{Err: err.Error()})
		return
	}
	r.dev = dev
	r.nextRefresh, r.nextCheck = wake.Next(now, r.o.Refresh), wake.Next(now, r.o.Check)
	r.report(ScreenReport{Found: true, Info: dev.Info(), Rows: r.last.Rows})
}

// tick does what is due: page turns, the power check, the periodic
// refresh, and writing the current page (only changed rows go out).
func (r *screenRun) tick(now time.Time) {
	if len(r.pages) > 1 && !now.Before(r.nextPage) {
		r.page = (r.page + 1) % len(r.pages)
		r.nextPage = wake.Next(now, r.o.Page)
	}
	if !now.Before(r.nextCheck) {
		r.nextCheck = wake.Next(now, r.o.Check)
		if err := r.dev.Check(); err != nil && !errors.Is(err, lcd.ErrReset) {
			r.write(now, err)
			return
		}
	}
	if !now.Before(r.nextRefresh) {
		r.nextRefresh = wake.Next(now, r.o.Refresh)
		if err := r.dev.Refresh(); err != nil {
			r.write(now, err)
			return
		}
	}
	if len(r.pages) > 0 {
		r.write(now, r.dev.Write(r.pages[r.page%len(r.pages)]))
	}
}

// write records the outcome of a write. The driver re-initialises on its
// next write after an error; while writes keep failing (unplugged), the
// LCD is reported missing.
func (r *screenRun) write(now time.Time, err error) {
	rep := ScreenReport{Found: true, Info: r.dev.Info()}
	if err != nil {
		r.failures++
		r.nextRetry = now.Add(min(retryFirst<<min(r.failures-1, 16), retryMax))
	} else {
		r.failures, r.nextRetry = 0, time.Time{}
	}
	if err != nil {
		rep.Found, rep.Err = false, err.Error()
		rep.Rows = r.last.Rows
		// Keep the device: a backpack that comes back answers at the
		// same address with the same wiring, and the next write
		// re-initialises it.
	} else if len(r.pages) > 0 {
		rep.Rows = r.pages[r.page%len(r.pages)]
	}
	r.report(rep)
}

func (r *screenRun) report(rep ScreenReport) {
	if rep.Found == r.last.Found && rep.Err == r.last.Err && rep.Info == r.last.Info && slices.Equal(rep.Rows, r.last.Rows) {
		return
	}
	r.last = rep
	r.o.Report(rep)
}
