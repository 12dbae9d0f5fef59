package notify

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
)

// statuses stands in for the daemon's published status.
type statuses struct {
	mu      sync.Mutex
	s       *api.Status
	changed chan struct{}
}

func (p *statuses) current() (*api.Status, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.s, p.changed
}

func (p *statuses) publish(s *api.Status) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.s = s
	close(p.changed)
	p.changed = make(chan struct{})
}

// run runs Follow and the senders until stop is called, then saves what
// was not delivered, as the daemon's notify part does.
func start(o Options, p *statuses) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, s := range o.Senders {
		wg.Go(func() { s.Run(ctx) })
	}
	wg.Go(func() { Follow(ctx, p.current, o) })
	return func() {
		cancel()
		wg.Wait()
		if err := SaveUndelivered(o); err != nil {
			panic(err)
		}
	}
}

// Events not delivered when the notifier stops (the receiver was down)
// are delivered once after the next start; what was told is not told
// again.
func TestUndeliveredSurviveARestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "notify.json")
		r := &receiver{start: time.Now(), down: true}
		p := &statuses{s: status(api.HealthStarting), changed: make(chan struct{})}
		options := func() Options {
			s := NewSender("test", r, 5, time.Second, time.Second, quiet)
			return Options{Head: "pi", Settle: time.Second, MemoryFile: file, Senders: []*Sender{s}, URLs: []string{"http://x/hook"}, Log: quiet}
		}
		stop := start(options(), p)
		p.publish(status(api.HealthOK))
		time.Sleep(5 * time.Second)
		p.publish(status(api.HealthDegraded, node("p1", api.NodeUnreachable, "")))
		time.Sleep(5 * time.Second)
		synctest.Wait()
		stop()
		if len(r.ids()) != 0 || len(r.attempts) == 0 {
			t.Fatalf("while down: delivered %q after %d attempts", r.ids(), len(r.attempts))
		}

		// The receiver is back; the daemon starts again in the same state.
		r.set(func(r *receiver) { r.down = false })
		p.publish(status(api.HealthStarting))
		stop = start(options(), p)
		p.publish(status(api.HealthDegraded, node("p1", api.NodeBooting, "")))
		time.Sleep(time.Second)
		p.publish(status(api.HealthDegraded, node("p1", api.NodeUnreachable, "")))
		time.Sleep(10 * time.Second)
		synctest.Wait()
		stop()
		r.mu.Lock()
		var got []string
		for _, e := range r.got {
			got = append(got, e.Kind+" "+e.Subject+" "+e.State)
		}
		r.mu.Unlock()
		if want := []string{"node p1 unreachable", "health health degraded"}; !slices.Equal(got, want) {
			t.Errorf("delivered %q, want %q once each", got, want)
		}
		if mem, _ := loadMemory(file); mem.Pending != nil || mem.Health != api.HealthDegraded {
			t.Errorf("memory after delivery: %+v", mem)
		}
	})
}
