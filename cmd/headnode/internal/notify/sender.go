package notify

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Poster delivers one event to one receiver.
type Poster interface {
	Post(ctx context.Context, ev Event) error
}

// PermanentError is a receiver's refusal that a retry cannot change (a
// wrong URL or token): the event is dropped.
type PermanentError struct{ Msg string }

func (e *PermanentError) Error() string { return e.Msg }

// retryAfterError is a receiver asking to come back later (429, 503 with
// Retry-After).
type retryAfterError struct {
	err   error
	after time.Duration
}

func (e *retryAfterError) Error() string { return e.err.Error() }

// QueueLimit is how many events wait for one receiver at most; beyond it
// the oldest are dropped and the next delivered event says how many.
const QueueLimit = 100

// firstRetry is the wait after the first failed attempt; it doubles up to
// the sender's retryMax.
const firstRetry = time.Second

// Sender delivers events to one receiver in order, one at a time: each
// event is retried until it is delivered or refused for good, so a
// receiver that is down for a while gets everything once it is back. A
// token bucket (burst events at once, then one per interval) limits what
// a flapping cluster can send; retries of an event take no new token.
type Sender struct {
	name     string
	post     Poster
	lim      *rate.Limiter
	retryMax time.Duration
	log      *slog.Logger

	mu       sync.Mutex
	queue    []Event
	inFlight *Event
	dropped  int
	stats    Stats
	wake     chan struct{}
}

// Stats counts a sender's events.
type Stats struct {
	Sent, Refused, Dropped, Retries int64
	// Queued is how many wait now.
	Queued int
}

// NewSender returns a sender to p; name identifies the receiver in logs
// (its host: the rest of the URL can be a secret, as ntfy topics are).
func NewSender(name string, p Poster, burst int, interval, retryMax time.Duration, log *slog.Logger) *Sender {
	return &Sender{
		name: name, post: p, lim: rate.NewLimiter(rate.Every(interval), burst), retryMax: retryMax,
		log: log, wake: make(chan struct{}, 1),
	}
}

// Enqueue adds an event without ever blocking.
func (s *Sender) Enqueue(ev Event) {
	s.mu.Lock()
	if len(s.queue) >= QueueLimit {
		s.queue = s.queue[1:]
		s.dropped++
		s.stats.Dropped++
	}
	s.queue = append(s.queue, ev)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Stats returns the sender's counts.
func (s *Sender) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Queued = len(s.queue)
	return st
}

// next waits for an event and takes it off the queue.
func (s *Sender) next(ctx context.Context) (Event, bool) {
	for {
		s.mu.Lock()
		if len(s.queue) > 0 {
			ev := s.queue[0]
			s.queue = s.queue[1:]
			ev.Dropped, s.dropped = s.dropped, 0
			s.inFlight = &ev
			s.mu.Unlock()
			return ev, true
		}
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return Event{}, false
		case <-s.wake:
		}
	}
}

// Run delivers events until ctx ends.
func (s *Sender) Run(ctx context.Context) {
	for {
		ev, ok := s.next(ctx)
		if !ok {
			return
		}
		if err := s.lim.Wait(ctx); err != nil {
			return
		}
		if !s.deliver(ctx, ev) {
			return
		}
		s.mu.Lock()
		s.inFlight = nil
		s.mu.Unlock()
	}
}

// Pending returns the events not delivered yet, the one being tried
// first: after Run has returned, what a restart must send.
func (s *Sender) Pending() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Event
	if s.inFlight != nil {
		out = append(out, *s.inFlight)
	}
	return append(out, s.queue...)
}

// deliver tries ev until it is delivered or refused; false when ctx ended.
func (s *Sender) deliver(ctx context.Context, ev Event) bool {
	wait := firstRetry
	for attempt := 1; ; attempt++ {
		err := s.post.Post(ctx, ev)
		if ctx.Err() != nil {
			return false
		}
		var perm *PermanentError
		switch {
		case err == nil:
			s.count(func(st *Stats) { st.Sent++ })
			if attempt > 1 {
				s.log.Info("notification delivered after retries", "webhook", s.name, "event", ev.Summary, "attempts", attempt)
			}
			return true
		case errors.As(err, &perm):
			s.count(func(st *Stats) { st.Refused++ })
			s.log.Error("notification refused by the receiver; dropped", "webhook", s.name, "event", ev.Summary, "err", err)
			return true
		}
		// Said once, not on every retry: a receiver can be down for hours.
		if attempt == 1 {
			s.log.Warn("notification not delivered; retrying until it is", "webhook", s.name, "event", ev.Summary, "err", err)
		}
		s.count(func(st *Stats) { st.Retries++ })
		d := wait
		var ra *retryAfterError
		if errors.As(err, &ra) && ra.after > d {
			d = min(ra.after, s.retryMax)
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(d):
		}
		wait = min(2*wait, s.retryMax)
	}
}

func (s *Sender) count(f func(*Stats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}
