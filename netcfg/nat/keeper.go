package nat

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/headnode/headnode/hw/wake"
	"github.com/headnode/headnode/netcfg/change"
	"github.com/headnode/headnode/netcfg/firewall"
	"golang.org/x/time/rate"
)

// Keeper keeps the network setup applied: it applies at start, re-checks
// whenever the firewall changes (nftables events) or the cluster interface
// changes (Kick), and at a fixed interval for what events cannot see
// (iptables-legacy). All Manager calls happen on the Keeper's goroutine, so
// apply, repair, clear and a change of the desired cluster side
// (SetDesired) never interleave.
type Keeper struct {
	m    *Manager
	o    KeeperOptions
	kick chan struct{}
	reqs chan keeperRequest
	lim  *rate.Limiter

	installed    bool // a full apply succeeded at least once
	repairs      int64
	lastRepaired bool
}

// KeeperOptions configures a Keeper.
type KeeperOptions struct {
	// Poll is the periodic check interval. 0 picks, after every check,
	// 1 s for the legacy backend, which sends no change events, so that a
	// flush is repaired within 2 s; and 30 s for nf_tables, where events
	// do the work.
	Poll time.Duration
	// Debounce is how long firewall events must be quiet before a check,
	// so that a burst (a script's `iptables -F; iptables -t nat -F`, each
	// process a few milliseconds apart) costs one check; at most five
	// times that passes from the first event. 0 means 15 ms: one check is
	// a few milliseconds, so waiting much longer would only stretch the
	// time in which the tampered rules stand.
	Debounce time.Duration
	Log      *slog.Logger
	// Report is called on the Keeper's goroutine after every check.
	Report func(KeeperReport)
}

// KeeperReport is the outcome of one check.
type KeeperReport struct {
	At     time.Time
	Result Result
	Err    error
	// Repaired: something we had installed was gone and is back.
	Repaired bool
	Repairs  int64
	// Cleared: NAT is off by request (`nat clear`); nothing is applied.
	Cleared bool
	// Backend is the firewall backend in use after the check (the
	// automatic choice moves when the iptables program appears).
	Backend firewall.Backend
}

type requestKind int

const (
	reqApply requestKind = iota
	reqClear
	reqStatus
	reqDesired
)

type keeperRequest struct {
	kind    requestKind
	desired Desired
	reply   chan keeperReply
}

type keeperReply struct {
	changes []change.Change
	result  Result
	status  Status
	err     error
}

// NewKeeper returns a Keeper for m.
func NewKeeper(m *Manager, o KeeperOptions) *Keeper {
	if o.Debounce == 0 {
		o.Debounce = 15 * time.Millisecond
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Report == nil {
		o.Report = func(KeeperReport) {}
	}
	return &Keeper{
		m: m, o: o,
		kick: make(chan struct{}, 1),
		reqs: make(chan keeperRequest),
		// If another program keeps removing our rules, repair at most
		// once a second after a burst of ten, instead of fighting it at
		// full speed; once a second still keeps the 2 s repair promise.
		// (Tailscale's ip rule repair waits up to 5 s, which would not.)
		lim: rate.NewLimiter(rate.Every(time.Second), 10),
	}
}

// Kick asks for a check soon. It never blocks.
func (k *Keeper) Kick() {
	select {
	case k.kick <- struct{}{}:
	default:
	}
}

// Apply applies now, re-enabling NAT if it was cleared.
func (k *Keeper) Apply(ctx context.Context) (Result, error) {
	r, err := k.request(ctx, keeperRequest{kind: reqApply})
	return r.result, err
}

// SetDesired changes the cluster side (interface and address) and applies
// it at once, unless NAT is cleared (then it is applied by the next
// Apply). The rules move in one transaction; see Manager.SetDesired.
func (k *Keeper) SetDesired(ctx context.Context, d Desired) (Result, error) {
	r, err := k.request(ctx, keeperRequest{kind: reqDesired, desired: d})
	return r.result, err
}

// Clear removes everything and keeps it removed until Apply.
func (k *Keeper) Clear(ctx context.Context) ([]change.Change, error) {
	r, err := k.request(ctx, keeperRequest{kind: reqClear})
	return r.changes, err
}

// Status reads the current state of the setup (see Manager.Status),
// serialized with apply and repair.
func (k *Keeper) Status(ctx context.Context) (Status, error) {
	r, err := k.request(ctx, keeperRequest{kind: reqStatus})
	return r.status, err
}

func (k *Keeper) request(ctx context.Context, req keeperRequest) (keeperReply, error) {
	req.reply = make(chan keeperReply, 1)
	select {
	case k.reqs <- req:
	case <-ctx.Done():
		return keeperReply{}, ctx.Err()
	}
	select {
	case r := <-req.reply:
		return r, r.err
	case <-ctx.Done():
		return keeperReply{}, ctx.Err()
	}
}

// Run keeps the setup applied until ctx is done.
func (k *Keeper) Run(ctx context.Context) {
	// Watched whatever the backend: the automatic choice can move from
	// one to another, and on legacy the events cost nothing (there are
	// none but other programs' nf_tables changes).
	go firewall.WatchNFTables(ctx, k.m.opts.Namespace, k.o.Log, k.Kick)
	led, _ := LoadLedger(k.m.opts.StateDir)
	cleared := led.Cleared
	if cleared {
		k.o.Log.Warn("NAT is off: it was removed with `headnode nat clear`; `headnode nat apply` turns it back on")
		k.o.Report(KeeperReport{At: time.Now(), Cleared: true})
	} else {
		k.check()
	}
	poll := wake.NewTicker(k.poll())
	defer poll.Stop()
	var notBefore time.Time
	for {
		// Whatever the last round wrote is read back here, after its
		// report and its request's reply: READY (which waits for the
		// roles part's SetDesired) and a repair's report do not wait for
		// the iptables runner's read-back.
		k.m.Settle()
		select {
		case <-ctx.Done():
			return
		case req := <-k.reqs:
			k.serve(req, &cleared)
			continue
		case <-poll.C:
		case <-k.kick:
			if req, ok := k.debounce(ctx); ok {
				// A request ended the wait. Apply and SetDesired check
				// everything, which is what the events asked for; after
				// the others, the check follows now.
				if k.serve(req, &cleared) {
					poll.Reset(k.poll())
					continue
				}
			}
		}
		if cleared {
			continue
		}
		if now := time.Now(); now.Before(notBefore) {
			// Rate limited: check again when allowed.
			time.AfterFunc(notBefore.Sub(now), k.Kick)
			continue
		}
		k.check()
		if k.lastRepaired {
			notBefore = time.Now().Add(k.lim.Reserve().Delay())
		}
		poll.Reset(k.poll())
	}
}

// serve answers one request on the Keeper's goroutine and reports whether
// it ran a full check.
func (k *Keeper) serve(req keeperRequest, cleared *bool) (checked bool) {
	var rep keeperReply
	switch req.kind {
	case reqClear:
		rep.changes, rep.err = k.m.Clear()
		for _, c := range rep.changes {
			k.o.Log.Info("nat clear", "change", c.Text)
		}
		*cleared, k.installed = true, false
		k.o.Report(KeeperReport{At: time.Now(), Cleared: true, Err: rep.err, Repairs: k.repairs})
	case reqApply:
		*cleared = false
		rep.result, rep.err = k.check()
		checked = true
	case reqStatus:
		rep.status, rep.err = k.m.Status()
	case reqDesired:
		k.m.SetDesired(req.desired)
		if !*cleared {
			rep.result, rep.err = k.check()
			checked = true
		}
	}
	req.reply <- rep
	return checked
}

// poll is the periodic check interval for the backend in use now.
func (k *Keeper) poll() time.Duration {
	switch {
	case k.o.Poll != 0:
		return k.o.Poll
	case k.m.Backend().Events():
		return 30 * time.Second
	default:
		return time.Second
	}
}

// debounce waits until firewall events have been quiet for Debounce (at
// most five times that), so a burst of events costs one check. A request
// (Apply, SetDesired, Status, Clear) ends the wait and is returned: it is
// not kept waiting behind the events. At start the cluster interface's
// first snapshot kicks the keeper just before the roles part claims the
// cluster side, and READY waited out the whole debounce (15 ms).
func (k *Keeper) debounce(ctx context.Context) (keeperRequest, bool) {
	deadline := time.After(5 * k.o.Debounce)
	quiet := time.NewTimer(k.o.Debounce)
	defer quiet.Stop()
	for {
		select {
		case <-ctx.Done():
			return keeperRequest{}, false
		case <-deadline:
			return keeperRequest{}, false
		case <-quiet.C:
			return keeperRequest{}, false
		case req := <-k.reqs:
			return req, true
		case <-k.kick:
			quiet.Reset(k.o.Debounce)
		}
	}
}

func (k *Keeper) check() (Result, error) {
	res, err := k.m.Apply()
	k.lastRepaired = false
	rep := KeeperReport{At: time.Now(), Result: res, Err: err, Backend: k.m.Backend()}
	var fixed []string
	for _, c := range res.Changes {
		if c.Kind == change.Rules || c.Kind == change.Forwarding {
			fixed = append(fixed, c.Text)
		}
	}
	switch {
	case err != nil:
		if firewall.IsLockBusy(err) {
			err = errors.New("the xtables lock is held by another program; will retry")
			rep.Err = err
		}
		k.o.Log.Error("applying NAT failed", "err", err)
	case len(fixed) > 0 && k.installed:
		k.repairs++
		k.lastRepaired = true
		rep.Repaired = true
		k.o.Log.Warn("firewall rules were changed by another program; restored", "restored", strings.Join(fixed, "; "), "repairs", k.repairs)
	default:
		for _, c := range res.Changes {
			k.o.Log.Info("network setup", "change", c.Text)
		}
	}
	if err == nil && res.Subnet.IsValid() {
		k.installed = true
	}
	rep.Repairs = k.repairs
	k.o.Report(rep)
	return res, err
}
