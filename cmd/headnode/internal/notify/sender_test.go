package notify

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// receiver is a fake receiver with a real one's behaviour: while down,
// every attempt fails (as a refused connection does); refuse makes it
// answer 4xx to everything.
type receiver struct {
	mu       sync.Mutex
	start    time.Time
	down     bool
	refuse   bool
	attempts []time.Duration
	got      []Event
	gotAt    []time.Duration
}

func (r *receiver) Post(ctx context.Context, ev Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts = append(r.attempts, time.Since(r.start))
	switch {
	case r.refuse:
		return &PermanentError{Msg: "401 Unauthorized"}
	case r.down:
		return errors.New("connection refused")
	}
	r.got = append(r.got, ev)
	r.gotAt = append(r.gotAt, time.Since(r.start))
	return nil
}

func (r *receiver) set(f func(*receiver)) {
	r.mu.Lock()
	f(r)
	r.mu.Unlock()
}

func (r *receiver) ids() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.got {
		out = append(out, e.ID)
	}
	return out
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// runSender runs s until the test function returns.
func runSender(t *testing.T, s *Sender) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// A receiver down for a while gets the event exactly once when it is
// back, after attempts whose waits double up to retry_max.
func TestSenderRetriesUntilDelivered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &receiver{start: time.Now(), down: true}
		s := NewSender("test", r, 5, time.Minute, 4*time.Second, quiet)
		runSender(t, s)
		s.Enqueue(Event{ID: "a"})
		time.Sleep(10 * time.Second)
		r.set(func(r *receiver) { r.down = false })
		time.Sleep(10 * time.Second)
		synctest.Wait()
		want := []time.Duration{0, 1 * time.Second, 3 * time.Second, 7 * time.Second, 11 * time.Second}
		if !slices.Equal(r.attempts, want) || !slices.Equal(r.ids(), []string{"a"}) {
			t.Errorf("attempts at %v, delivered %q; want attempts at %v and a once", r.attempts, r.ids(), want)
		}
		if st := s.Stats(); st.Sent != 1 || st.Retries != 4 || st.Queued != 0 {
			t.Errorf("stats %+v", st)
		}
	})
}

// burst events at once, then one per interval; none lost.
func TestSenderRateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &receiver{start: time.Now()}
		s := NewSender("test", r, 2, 10*time.Second, time.Minute, quiet)
		runSender(t, s)
		for _, id := range []string{"a", "b", "c", "d", "e"} {
			s.Enqueue(Event{ID: id})
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		want := []time.Duration{0, 0, 10 * time.Second, 20 * time.Second, 30 * time.Second}
		if !slices.Equal(r.gotAt, want) || !slices.Equal(r.ids(), []string{"a", "b", "c", "d", "e"}) {
			t.Errorf("delivered %q at %v, want a-e at %v", r.ids(), r.gotAt, want)
		}
	})
}

// Beyond QueueLimit waiting events the oldest are dropped, and the next
// delivered event says how many.
func TestSenderQueueLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &receiver{start: time.Now(), down: true}
		s := NewSender("test", r, 1000, time.Millisecond, time.Second, quiet)
		runSender(t, s)
		s.Enqueue(Event{ID: "first"})
		synctest.Wait() // in flight
		for i := range QueueLimit + 5 {
			s.Enqueue(Event{ID: string(rune('A' + i%26))})
		}
		if st := s.Stats(); st.Queued != QueueLimit || st.Dropped != 5 {
			t.Errorf("stats while the receiver is down: %+v", st)
		}
		r.set(func(r *receiver) { r.down = false })
		time.Sleep(time.Minute)
		synctest.Wait()
		r.mu.Lock()
		defer r.mu.Unlock()
		if len(r.got) != QueueLimit+1 || r.got[0].ID != "first" || r.got[0].Dropped != 0 || r.got[1].Dropped != 5 || r.got[2].Dropped != 0 {
			t.Errorf("delivered %d; first %+v, second %+v", len(r.got), r.got[0], r.got[1])
		}
	})
}

// A refusal (a wrong token) drops the event at once; the next one goes.
func TestSenderRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &receiver{start: time.Now(), refuse: true}
		s := NewSender("test", r, 5, time.Second, time.Minute, quiet)
		runSender(t, s)
		s.Enqueue(Event{ID: "a"})
		synctest.Wait()
		r.set(func(r *receiver) { r.refuse = false })
		s.Enqueue(Event{ID: "b"})
		time.Sleep(time.Second)
		synctest.Wait()
		if len(r.attempts) != 2 || !slices.Equal(r.ids(), []string{"b"}) || s.Stats().Refused != 1 {
			t.Errorf("attempts %v, delivered %q, stats %+v", r.attempts, r.ids(), s.Stats())
		}
	})
}
