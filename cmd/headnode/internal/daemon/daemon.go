// Package daemon wires headnode together. One goroutine (the loop in Run)
// owns the state: netcfg, and later power and display, send it events;
// everything users see (the control API, sd_notify STATUS, and later the
// LCD, LED and metrics) is derived from the state it publishes.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
	"github.com/headnode/headnode/cmd/headnode/internal/config"
	"github.com/headnode/headnode/netcfg"
	"github.com/headnode/headnode/systemd"
)

// Options configures Run.
type Options struct {
	ConfigPath string
	Version    string
	Log        *slog.Logger
	Notifier   systemd.Notifier
	// Signals delivers SIGHUP/SIGTERM/SIGINT; nil subscribes to the
	// process's signals.
	Signals <-chan os.Signal
}

// event changes the state. Events run on the loop goroutine only.
type event func(*state)

// state is owned by the loop goroutine.
type state struct {
	cfg    *config.Config
	status api.Status
	// network holds the parts derived from netcfg reports.
	natReport    *netcfg.KeeperReport
	natStarted   bool
	natOpenError error
}

// Daemon is a running headnode.
type Daemon struct {
	opts   Options
	log    *slog.Logger
	events chan event

	published atomic.Pointer[api.Status]
	watchMu   sync.Mutex
	changed   chan struct{} // closed and replaced on every publish

	keeper atomic.Pointer[netcfg.Keeper]
}

// Run runs the daemon until ctx is done or SIGTERM/SIGINT arrives. A
// configuration error at start is returned as a *config.Error; everything
// that can go wrong later (missing iptables, interfaces, hardware) is
// reported as state and never ends the daemon.
func Run(ctx context.Context, o Options) error {
	cfg, err := config.Load(o.ConfigPath)
	if err != nil {
		return err
	}
	if o.Log == nil {
		o.Log = systemd.NewLogger(os.Stderr, slog.LevelInfo)
	}
	d := &Daemon{opts: o, log: o.Log, events: make(chan event, 64), changed: make(chan struct{})}
	now := time.Now()
	st := &state{cfg: cfg}
	st.status = api.Status{
		Version: o.Version,
		Started: now,
		Config:  api.Config{Path: configPathShown(cfg), LoadedAt: now, ReloadOK: true},
		NAT:     api.NAT{State: api.NATApplying, Daemon: true},
		Uplink:  api.Link{Interface: cfg.Network.UplinkInterface},
		Cluster: api.Link{Interface: cfg.Network.ClusterInterface},
	}
	st.deriveHealth()
	d.publish(st)

	sigs := o.Signals
	if sigs == nil {
		ch := make(chan os.Signal, 4)
		signal.Notify(ch, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
		defer signal.Stop(ch)
		sigs = ch
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	srv, err := d.serveControl(cfg.Control.Socket)
	if err != nil {
		// The CLI cannot reach us, but NAT still matters more: report it
		// and carry on.
		d.log.Error("control socket unavailable; the CLI cannot reach this daemon", "socket", cfg.Control.Socket, "err", err)
		st.status.Health.Reasons = append(st.status.Health.Reasons, "control socket: "+err.Error())
	} else {
		defer srv.Close()
	}

	stopNet := d.startNetwork(ctx, cfg)
	d.log.Info("headnode started", "version", o.Version, "config", configPathShown(cfg))

	watchdog := systemd.WatchdogInterval()
	var wdTick <-chan time.Time
	if watchdog > 0 {
		t := time.NewTicker(watchdog)
		defer t.Stop()
		wdTick = t.C
	}
	lastLine := ""
	for {
		select {
		case <-ctx.Done():
			stopNet()
			return nil
		case ev := <-d.events:
			ev(st)
		case <-wdTick:
			o.Notifier.Watchdog()
			continue
		case sig := <-sigs:
			switch sig {
			case syscall.SIGHUP:
				if newStop, ok := d.reload(ctx, st, stopNet); ok {
					stopNet = newStop
				}
			default:
				d.log.Info("stopping; NAT rules stay in place so nodes keep their connectivity", "signal", sig.String())
				o.Notifier.Stopping()
				st.status.Health = api.Health{State: api.HealthStopped}
				d.publish(st)
				stopNet()
				return nil
			}
		}
		st.deriveHealth()
		d.publish(st)
		// READY as soon as NAT has been applied (or has definitely
		// failed): NetworkManager waits for us, hardware does not.
		if !st.status.Ready && (st.natReport != nil || st.natOpenError != nil) {
			st.status.Ready = true
			d.publish(st)
			line := st.statusLine()
			o.Notifier.Ready(line)
			lastLine = line
			d.log.Info("ready", "status", line)
		} else if line := st.statusLine(); st.status.Ready && line != lastLine {
			o.Notifier.Status(line)
			lastLine = line
		}
	}
}

func configPathShown(c *config.Config) string {
	if c.Path == "" {
		return "(built-in defaults)"
	}
	return c.Path
}

// send queues an event for the loop. It is called from other goroutines.
func (d *Daemon) send(ctx context.Context, ev event) {
	select {
	case d.events <- ev:
	case <-ctx.Done():
	}
}

// publish stores an immutable copy of the status for readers and wakes
// watchers.
func (d *Daemon) publish(st *state) {
	s := st.status
	s.Health.Reasons = slices.Clone(s.Health.Reasons)
	s.NAT.Missing = slices.Clone(s.NAT.Missing)
	s.NAT.Waiting = slices.Clone(s.NAT.Waiting)
	s.Uplink.IPv6 = slices.Clone(s.Uplink.IPv6)
	s.Cluster.IPv6 = slices.Clone(s.Cluster.IPv6)
	d.published.Store(&s)
	d.watchMu.Lock()
	close(d.changed)
	d.changed = make(chan struct{})
	d.watchMu.Unlock()
}

// current returns the latest status and a channel closed when it changes.
func (d *Daemon) current() (*api.Status, <-chan struct{}) {
	d.watchMu.Lock()
	defer d.watchMu.Unlock()
	return d.published.Load(), d.changed
}

// startNetwork starts the NAT keeper and the interface watcher for cfg and
// returns a function that stops both and waits for them.
func (d *Daemon) startNetwork(parent context.Context, cfg *config.Config) (stop func()) {
	ctx, cancel := context.WithCancel(parent)
	var wg sync.WaitGroup
	n := cfg.Network
	addr, _ := n.ClusterPrefix()
	m, err := netcfg.NewManager(netcfg.Options{
		ClusterInterface: n.ClusterInterface,
		UplinkInterface:  n.UplinkInterface,
		ClusterAddress:   addr,
		IPTables:         n.IPTables,
		StateDir:         cfg.Daemon.StateDir,
	})
	if err != nil {
		openErr := err
		d.log.Error("NAT unavailable", "err", openErr)
		d.send(ctx, func(st *state) { st.natOpenError = openErr; st.natReport = nil; st.applyNAT() })
	} else {
		k := netcfg.NewKeeper(m, netcfg.KeeperOptions{
			Log: d.log.With("part", "nat"),
			Report: func(r netcfg.KeeperReport) {
				d.send(ctx, func(st *state) { st.natOpenError = nil; st.natReport = &r; st.applyNAT() })
			},
		})
		d.keeper.Store(k)
		d.send(ctx, func(st *state) { st.status.NAT.Backend = string(m.Backend()) })
		wg.Go(func() { k.Run(ctx) })
	}
	w, err := netcfg.NewWatcher(netcfg.WatchOptions{Log: d.log.With("part", "links")})
	if err != nil {
		d.log.Error("cannot watch interfaces", "err", err)
	} else {
		wg.Go(func() {
			w.Run(ctx, func(links map[string]netcfg.LinkState) {
				d.send(ctx, func(st *state) { d.applyLinks(st, links) })
			})
		})
	}
	return func() {
		cancel()
		wg.Wait()
		d.keeper.Store(nil)
	}
}

// applyLinks folds a watcher snapshot into the state.
func (d *Daemon) applyLinks(st *state, links map[string]netcfg.LinkState) {
	n := st.cfg.Network
	up := linkView(links[n.UplinkInterface], n.UplinkInterface)
	cl := linkView(links[n.ClusterInterface], n.ClusterInterface)
	if up.Address != st.status.Uplink.Address {
		d.log.Info("uplink address changed", "interface", n.UplinkInterface, "from", orNone(st.status.Uplink.Address), "to", orNone(up.Address))
		up.Since = time.Now()
		up.Changes = st.status.Uplink.Changes + 1
	} else {
		up.Since, up.Changes = st.status.Uplink.Since, st.status.Uplink.Changes
	}
	clusterChanged := cl.Exists != st.status.Cluster.Exists || cl.Address != st.status.Cluster.Address || cl.Up != st.status.Cluster.Up
	if cl.Address != st.status.Cluster.Address {
		cl.Since, cl.Changes = time.Now(), st.status.Cluster.Changes+1
	} else {
		cl.Since, cl.Changes = st.status.Cluster.Since, st.status.Cluster.Changes
	}
	st.status.Uplink, st.status.Cluster = up, cl
	if clusterChanged {
		// The cluster interface appeared, or lost its address or state:
		// let the keeper put our address back without waiting for a poll.
		if k := d.keeper.Load(); k != nil {
			k.Kick()
		}
	}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func linkView(l netcfg.LinkState, name string) api.Link {
	v := api.Link{Interface: name, Exists: l.Exists, Up: l.Up, Carrier: l.Carrier}
	if a, ok := l.Address(); ok {
		v.Address = a.String()
	}
	for _, p := range l.IPv6 {
		v.IPv6 = append(v.IPv6, p.String())
	}
	return v
}

// applyNAT folds the latest keeper report into the NAT status.
func (st *state) applyNAT() {
	n := &st.status.NAT
	if st.natOpenError != nil {
		n.State, n.Error = api.NATFailed, st.natOpenError.Error()
		n.RulesPresent = false
		return
	}
	r := st.natReport
	n.LastCheck = r.At
	n.Repairs = r.Repairs
	if r.Repaired {
		n.LastRepair = r.At
	}
	n.Waiting = r.Result.Waiting
	n.Error = ""
	switch {
	case r.Cleared:
		n.State, n.RulesPresent, n.Subnet = api.NATCleared, false, ""
		if r.Err != nil {
			n.Error = r.Err.Error()
		}
	case r.Err != nil:
		n.State, n.Error, n.RulesPresent = api.NATFailed, r.Err.Error(), false
	case !r.Result.Subnet.IsValid():
		n.State, n.RulesPresent = api.NATWaiting, false
	default:
		n.State, n.RulesPresent, n.Forwarding = api.NATOK, true, true
		n.Subnet = r.Result.Subnet.String()
		n.Missing = nil
	}
}

// deriveHealth computes the overall health from the parts. Failures come
// first in Reasons, then degradations, each in order of importance.
func (st *state) deriveHealth() {
	if !st.status.Ready && st.natReport == nil && st.natOpenError == nil {
		st.status.Health = api.Health{State: api.HealthStarting, Reasons: []string{"starting"}}
		return
	}
	var failed, degraded []string
	class := 0
	fail := func(c int, reason string) {
		if class == 0 {
			class = c
		}
		failed = append(failed, reason)
	}
	if !st.status.Config.ReloadOK {
		fail(1, "config invalid: "+firstLine(st.status.Config.ReloadError))
	}
	nat := st.status.NAT
	switch nat.State {
	case api.NATFailed:
		fail(2, "NAT failed: "+nat.Error)
	case api.NATCleared:
		degraded = append(degraded, "NAT off (nat clear)")
	case api.NATWaiting:
		degraded = append(degraded, "NAT waiting: "+strings.Join(nat.Waiting, "; "))
	}
	up := st.status.Uplink
	switch {
	case !up.Exists:
		fail(4, "no uplink: "+up.Interface+" missing")
	case !up.Carrier:
		degraded = append(degraded, "uplink "+up.Interface+" down")
	case up.Address == "":
		degraded = append(degraded, "waiting for DHCP on "+up.Interface)
	}
	if !st.status.Cluster.Exists {
		degraded = append(degraded, "cluster "+st.status.Cluster.Interface+" missing")
	}
	h := api.Health{Reasons: append(failed, degraded...)}
	switch {
	case len(failed) > 0:
		h.State, h.Class = api.HealthFailed, class
	case len(degraded) > 0:
		h.State = api.HealthDegraded
	default:
		h.State = api.HealthOK
	}
	st.status.Health = h
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// statusLine is the one-line STATUS= for `systemctl status`.
func (st *state) statusLine() string {
	s := st.status
	var parts []string
	parts = append(parts, s.Health.State)
	switch s.NAT.State {
	case api.NATOK:
		parts = append(parts, fmt.Sprintf("NAT %s (%s -> %s)", s.NAT.Subnet, s.Cluster.Interface, s.Uplink.Interface))
	default:
		parts = append(parts, "NAT "+s.NAT.State)
	}
	if s.Uplink.Address != "" {
		parts = append(parts, "uplink "+s.Uplink.Address)
	} else {
		parts = append(parts, "uplink "+s.Uplink.Interface+" no address")
	}
	if len(s.Health.Reasons) > 0 && s.Health.State != api.HealthOK {
		parts = append(parts, s.Health.Reasons[0])
	}
	return strings.Join(parts, "; ")
}

// reload re-reads the configuration on SIGHUP. An invalid file keeps the
// running configuration; the reason goes to the log and the status.
func (d *Daemon) reload(ctx context.Context, st *state, stopNet func()) (func(), bool) {
	d.opts.Notifier.Reloading()
	defer func() { d.opts.Notifier.Ready(st.statusLine()) }()
	path := d.opts.ConfigPath
	cfg, err := config.Load(path)
	now := time.Now()
	st.status.Config.LastReloadAt = now
	if err != nil {
		st.status.Config.ReloadOK = false
		st.status.Config.ReloadError = err.Error()
		st.status.Config.ReloadsFailed++
		d.log.Error("reload failed; keeping the running configuration", "config", path, "err", err)
		return nil, false
	}
	old := st.cfg
	st.cfg = cfg
	st.status.Config = api.Config{Path: configPathShown(cfg), LoadedAt: now, ReloadOK: true, LastReloadAt: now, ReloadsFailed: st.status.Config.ReloadsFailed}
	d.log.Info("configuration reloaded", "config", configPathShown(cfg))
	if old.Network == cfg.Network && old.Daemon == cfg.Daemon {
		return nil, false
	}
	d.log.Info("network settings changed; restarting NAT and interface watching")
	stopNet()
	st.status.NAT = api.NAT{State: api.NATApplying, Daemon: true}
	st.status.Uplink = api.Link{Interface: cfg.Network.UplinkInterface}
	st.status.Cluster = api.Link{Interface: cfg.Network.ClusterInterface}
	st.natReport, st.natOpenError = nil, nil
	return d.startNetwork(ctx, cfg), true
}

var errNoKeeper = errors.New("NAT is unavailable in this daemon (see `headnode status`)")
