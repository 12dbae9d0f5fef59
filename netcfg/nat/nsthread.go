package nat

import (
	"runtime"

	"github.com/vishvananda/netns"
)

// nsThread runs functions on one OS thread that has joined a network
// namespace. Everything the Manager does depends on the calling thread's
// namespace: the iptables processes it starts inherit it, and /proc/sys/net
// resolves through it. A Manager for another namespace (tests, the
// simulator) therefore funnels its work through such a thread.
type nsThread struct {
	work chan func()
	quit chan struct{}
}

func newNSThread(ns netns.NsHandle) (*nsThread, error) {
	t := &nsThread{work: make(chan func()), quit: make(chan struct{})}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// Never unlocked: when this goroutine returns, the runtime
		// discards the thread rather than reuse one left in ns.
		if err := netns.Set(ns); err != nil {
			errc <- err
			return
		}
		errc <- nil
		for {
			select {
			case f := <-t.work:
				f()
			case <-t.quit:
				return
			}
		}
	}()
	if err := <-errc; err != nil {
		return nil, err
	}
	return t, nil
}

func (t *nsThread) do(f func()) {
	done := make(chan struct{})
	t.work <- func() { f(); close(done) }
	<-done
}

func (t *nsThread) close() { close(t.quit) }
