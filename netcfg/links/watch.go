package links

import (
	"context"
	"log/slog"
	"maps"
	"sync/atomic"
	"time"

	"github.com/headnode/headnode/hw/wake"
	"github.com/headnode/headnode/netcfg/netlinksafe"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Watcher follows links and addresses through netlink subscriptions and
// publishes the state of every interface whenever it changes.
//
// Netlink subscriptions die on any receive error (ENOBUFS after a burst
// included) and cannot replay what was lost, so the pattern is: subscribe,
// then list everything, then consume; on a closed channel resubscribe and
// list again; and list periodically as a safety net. An event is only a
// trigger to list: the list is the truth, which also makes the odd shapes of
// address events (secondaries deleted with their primary, renewals re-adding
// the same address) harmless.
type Watcher struct {
	h      *netlink.Handle
	ns     *netns.NsHandle
	log    *slog.Logger
	relist time.Duration
	rcvbuf int

	resubscribes atomic.Int64
	lastErr      atomic.Value // string
}

// WatchOptions configures a Watcher.
type WatchOptions struct {
	// Namespace to watch; nil means the calling thread's.
	Namespace *netns.NsHandle
	// Relist is the safety-net interval; 0 means 60 s.
	Relist time.Duration
	// ReceiveBuffer is the subscription socket buffer; 0 means 4 MiB.
	// Tests make it tiny to provoke ENOBUFS.
	ReceiveBuffer int
	Log           *slog.Logger
}

// NewWatcher returns a watcher for the given namespace.
func NewWatcher(o WatchOptions) (*Watcher, error) {
	h, err := netlinksafe.Open(o.Namespace)
	if err != nil {
		return nil, err
	}
	if o.Relist == 0 {
		o.Relist = time.Minute
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.ReceiveBuffer == 0 {
		o.ReceiveBuffer = watchRcvBuf
	}
	return &Watcher{h: h, ns: o.Namespace, log: o.Log, relist: o.Relist, rcvbuf: o.ReceiveBuffer}, nil
}

// Close releases the netlink handle. Call it after Run returned.
func (w *Watcher) Close() { w.h.Close() }

// Resubscribes counts how often a subscription died and was renewed.
func (w *Watcher) Resubscribes() int64 { return w.resubscribes.Load() }

// subscription receive buffer: large, so that a burst of address events
// (hundreds of addresses on a bridge) does not overflow it.
const watchRcvBuf = 4 << 20

// Run watches until ctx is done, calling publish (from Run's goroutine)
// with the full set of interfaces every time any of them changes.
func (w *Watcher) Run(ctx context.Context, publish func(map[string]State)) {
	var last map[string]State
	relist := func() {
		links, err := ReadAll(w.h)
		if err != nil {
			w.log.Warn("listing interfaces failed", "err", err)
			return
		}
		if !sameLinks(last, links) {
			last = links
			publish(maps.Clone(links))
		}
	}
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		sub, err := w.subscribe()
		if err != nil {
			w.log.Warn("netlink subscribe failed; retrying", "err", err, "in", backoff)
			relist()
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		relist()
		w.consume(ctx, sub, relist)
		sub.close()
		if ctx.Err() == nil {
			w.resubscribes.Add(1)
			w.log.Warn("netlink subscription lost; resubscribed and relisted", "err", w.lastErr.Load())
		}
	}
}

type subscription struct {
	links chan netlink.LinkUpdate
	addrs chan netlink.AddrUpdate
	done  chan struct{}
}

func (s *subscription) close() {
	close(s.done)
	// The subscription goroutines block on sends; drain until they close
	// the channels so they can exit.
	go func() {
		for range s.links {
		}
	}()
	go func() {
		for range s.addrs {
		}
	}()
}

func (w *Watcher) subscribe() (*subscription, error) {
	s := &subscription{
		links: make(chan netlink.LinkUpdate, 256),
		addrs: make(chan netlink.AddrUpdate, 256),
		done:  make(chan struct{}),
	}
	onErr := func(err error) { w.lastErr.Store(err.Error()) }
	ns := w.ns
	if ns == nil {
		none := netns.None()
		ns = &none
	}
	if err := netlink.LinkSubscribeWithOptions(s.links, s.done, netlink.LinkSubscribeOptions{
		Namespace: ns, ErrorCallback: onErr, ReceiveBufferSize: w.rcvbuf, ReceiveBufferForceSize: true,
	}); err != nil {
		close(s.done)
		return nil, err
	}
	if err := netlink.AddrSubscribeWithOptions(s.addrs, s.done, netlink.AddrSubscribeOptions{
		Namespace: ns, ErrorCallback: onErr, ReceiveBufferSize: w.rcvbuf, ReceiveBufferForceSize: true,
	}); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// consume turns events into relists until the subscription dies or ctx
// ends. Events that queued up while listing are coalesced into one relist.
func (w *Watcher) consume(ctx context.Context, s *subscription, relist func()) {
	tick := wake.NewTicker(w.relist)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			relist()
			continue
		case _, ok := <-s.links:
			if !ok {
				return
			}
		case _, ok := <-s.addrs:
			if !ok {
				return
			}
		}
		if !drain(s) {
			return
		}
		relist()
	}
}

// drain empties both channels without blocking; false if one closed.
func drain(s *subscription) bool {
	for {
		select {
		case _, ok := <-s.links:
			if !ok {
				return false
			}
		case _, ok := <-s.addrs:
			if !ok {
				return false
			}
		default:
			return true
		}
	}
}

func sameLinks(a, b map[string]State) bool {
	if a == nil || len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !v.Equal(w) {
			return false
		}
	}
	return true
}
