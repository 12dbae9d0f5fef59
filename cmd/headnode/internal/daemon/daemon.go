// Package daemon wires headnode together. One goroutine (the loop in Run)
// owns the state: the parts (network, power, display, dhcp) send it events
// and are driven from it; everything users see (the control API, sd_notify
// STATUS, the LCD, the LED) is derived from the status it publishes.
//
// Each part lives in its own file with the same shape: a start function
// that runs the part for a configuration and returns its stop function, a
// predicate saying whether a reload must restart it, control routes, and a
// contribution to health.
package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
	"github.com/headnode/headnode/cmd/headnode/internal/config"
	"github.com/headnode/headnode/hw/machine"
	"github.com/headnode/headnode/hw/wake"
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
	net    netState
	power  powerState
	dhcp   dhcpState
	subnet subnetState
	dns    dnsState
	roles  rolesState
	// quiet is set by an event that left status as it was (a probe
	// round with the same answers, a board read-back like the one
	// before): the loop then skips settle, whose encoding of the status
	// is most of an idle daemon's work.
	quiet bool
}

// Daemon is a running headnode.
type Daemon struct {
	opts   Options
	log    *slog.Logger
	events chan event

	published atomic.Pointer[api.Status]
	watchMu   sync.Mutex
	changed   chan struct{} // closed and replaced on every publish
	// Loop goroutine only: the encoding of the published status, and the
	// STATUS= line last sent to systemd.
	publishedJSON []byte
	lastLine      string

	hw     *machine.Machine
	traces traces
	// ctl is the control socket being served (nil while it cannot be);
	// the loop goroutine's.
	ctl     *controlServer
	limits  limitCounters
	net     netHandles
	power   powerHandles
	display displayHandles
	dhcp    dhcpHandles
	dns     dnsHandles
	console consoleHandles
	roles   rolesHandles
	// run runs the parts; the loop goroutine's.
	run *partRunner
}

// part is one subsystem of the daemon.
type part struct {
	name string
	// start runs the part for cfg until its stop function is called.
	// Parts report through d.send; they never touch the state directly.
	start func(ctx context.Context, cfg *config.Config) (stop func())
	// changed reports whether a reload from old to new must restart it.
	changed func(old, new *config.Config) bool
}

// parts in start order; they stop in reverse order, so the display still
// shows "stopped" after everything but the status page has ended.
func (d *Daemon) parts() []part {
	return []part{
		{"roles", d.startRoles, rolesChanged},
		{"network", d.startNetwork, networkChanged},
		{"dhcp", d.startDHCP, dhcpChanged},
		{"subnet", d.startSubnet, subnetChanged},
		{"dns", d.startDNS, dnsChanged},
		{"power", d.startPower, powerChanged},
		{"display", d.startDisplay, displayChanged},
		{"console", d.startConsole, consoleChanged},
		{"notify", d.startNotify, notifyChanged},
		{"http", d.startHTTP, httpChanged},
	}
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
	// One daemon per state directory, and so per machine: taken before
	// anything (hardware, sockets, the network) is touched.
	lock, err := lockStateDir(cfg.Daemon.StateDir)
	if err != nil {
		return err
	}
	defer lock.Close()
	if o.Log == nil {
		o.Log = systemd.NewLogger(os.Stderr, slog.LevelInfo)
	}
	d := &Daemon{opts: o, log: o.Log, events: make(chan event, 256), changed: make(chan struct{}), traces: newTraces()}
	d.initLimits()
	notApplied := d.traces.apply(cfg.Hardware)
	for _, p := range notApplied {
		d.log.Error("hardware trace unavailable", "err", p)
	}
	defer d.traces.close()
	// The machine, real or emulated as [hardware] backend says, lives as
	// long as the daemon: a reload must not reset emulated chips, just as
	// it does not power-cycle real ones. Every part takes its buses, lines
	// and devices from it, so the I2C trace sees every transaction and the
	// LCD and the ClusterHAT expander share bus 1, as on a real ClusterHAT
	// with an LCD.
	m, errs := machine.Open(machine.Options{Backend: cfg.Hardware.Backend, Sim: cfg.SimSpec(), I2CTrace: d.traces.i2c, HIDTrace: d.traces.hid})
	for _, err := range errs {
		d.log.Error("hardware unavailable", "err", err)
	}
	d.hw = m
	// cluster_address = "auto" becomes the subnet chosen (subnet.go):
	// the parts see the address they are to use.
	cfg, sub := d.resolveSubnet(cfg, subnetState{})
	now := time.Now()
	st := &state{cfg: cfg, subnet: sub}
	st.status = api.Status{
		Version: o.Version,
		Started: now,
		Config:  api.Config{Path: configPathShown(cfg), LoadedAt: now, ReloadOK: true},
	}
	st.resetNetwork()
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

	// Without the socket the CLI cannot reach us, but NAT matters more:
	// say so (log, status) and go on.
	if _, problem := d.applyControl(cfg.Control); problem != "" {
		notApplied = append(notApplied, problem)
	}
	defer func() { d.ctl.close(0) }()
	st.status.Config.NotApplied = notApplied
	d.publish(st)

	d.run = newPartRunner(ctx, d.parts())
	d.run.startAll(cfg)
	stopAll := d.run.stopAll
	d.log.Info("headnode started", "version", o.Version, "config", configPathShown(cfg))
	trim := time.AfterFunc(trimAfter, func() { trimStartup() })
	defer trim.Stop()

	var wdTick <-chan time.Time
	if iv := systemd.WatchdogInterval(); iv > 0 {
		t := wake.NewTicker(iv)
		defer t.Stop()
		wdTick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			stopAll()
			return nil
		case ev := <-d.events:
			ev(st)
			if st.quiet {
				st.quiet = false
				continue
			}
		case <-wdTick:
			// From this loop, not a free-running goroutine: a hung loop
			// stops the pings and systemd restarts us.
			o.Notifier.Watchdog()
			continue
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				d.reload(st)
				break
			}
			d.log.Info("stopping; NAT rules stay in place so nodes keep their connectivity", "signal", sig.String())
			o.Notifier.Stopping()
			st.status.Health = api.Health{State: api.HealthStopped, Reasons: []string{"stopped"}}
			d.publish(st)
			stopAll()
			return nil
		}
		d.settle(st)
	}
}

// quietIf marks the current event as having left the status unchanged
// (see state.quiet); the caller must know that nothing else in the
// status moved.
func (st *state) quietIf(unchanged bool) { st.quiet = unchanged }

// settle derives what follows from the state after an event: the health,
// READY or a new STATUS= for systemd, and the published status.
func (d *Daemon) settle(st *state) {
	d.settleRoles(st)
	d.dnsSync(st)
	st.deriveHealth()
	// READY as soon as NAT has been applied (or has definitely failed):
	// NetworkManager waits for us; hardware does not hold it up.
	if !st.status.Ready && st.networkSettled() {
		st.status.Ready = true
		line := st.statusLine()
		d.opts.Notifier.Ready(line)
		d.lastLine = line
		d.log.Info("ready", "status", line)
	} else if line := st.statusLine(); st.status.Ready && line != d.lastLine {
		d.opts.Notifier.Status(line)
		d.lastLine = line
	}
	d.publish(st)
}

func configPathShown(c *config.Config) string {
	if c.Path == "" {
		return "(built-in defaults)"
	}
	return c.Path
}

// send queues an event for the loop. Parts call it from their goroutines;
// it gives up when ctx (the part's) ends, so a stopping part never blocks.
func (d *Daemon) send(ctx context.Context, ev event) {
	select {
	case d.events <- ev:
	case <-ctx.Done():
	}
}

// publish stores an immutable copy of the status for readers and wakes
// the watchers (the control API's streams, the display), but only when the
// status differs from the one published last: most events change nothing
// users see (a probe round with the same answers, a power read-back or a
// link snapshot like the one before). It compares the JSON encoding, which
// is what every watcher is sent: it sees every field, those added later
// too, and times to the nanosecond, so a new NAT check time is a change.
// Encoding is the first half of the deep copy a publish makes anyway
// (readers on other goroutines may keep theirs), so an event that changes
// nothing costs one encoding where it cost a copy and a wake-up of every
// watcher.
func (d *Daemon) publish(st *state) {
	b, err := json.Marshal(&st.status)
	if err != nil {
		panic(err) // Status holds only JSON-safe types
	}
	if bytes.Equal(b, d.publishedJSON) {
		return
	}
	var s api.Status
	if err := json.Unmarshal(b, &s); err != nil {
		panic(err)
	}
	d.publishedJSON = b
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

// health collects failures and degradations from the parts.
type health struct {
	failed, degraded []string
	class            int
}

// fail records a failure; class is the LED blink count of the first one:
// 1 config, 2 NAT, 3 board/bus, 4 uplink.
func (h *health) fail(class int, reason string) {
	if h.class == 0 {
		h.class = class
	}
	h.failed = append(h.failed, reason)
}

// degrade records something that should be up and is not.
func (h *health) degrade(reason string) { h.degraded = append(h.degraded, reason) }

// deriveHealth computes the overall health from the parts. Failures come
// first in Reasons, then degradations, each in order of importance.
func (st *state) deriveHealth() {
	if st.status.Health.State == api.HealthStopped {
		return
	}
	if !st.status.Ready && !st.networkSettled() {
		st.status.Health = api.Health{State: api.HealthStarting, Reasons: []string{"starting"}}
		return
	}
	h := &health{}
	if !st.status.Config.ReloadOK {
		h.fail(1, "config invalid: "+firstLine(st.status.Config.ReloadError))
	}
	st.subnetHealth(h)
	st.rolesHealth(h)
	st.networkHealth(h)
	st.dhcpHealth(h)
	st.dnsHealth(h)
	st.powerHealth(h)
	st.displayHealth(h)
	out := api.Health{Reasons: append(h.failed, h.degraded...)}
	switch {
	case len(h.failed) > 0:
		out.State, out.Class = api.HealthFailed, h.class
	case len(h.degraded) > 0:
		out.State = api.HealthDegraded
	default:
		out.State = api.HealthOK
	}
	st.status.Health = out
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
	parts := []string{s.Health.State}
	parts = append(parts, st.networkStatusLine()...)
	if len(s.Health.Reasons) > 0 && s.Health.State != api.HealthOK {
		parts = append(parts, s.Health.Reasons[0])
	}
	return strings.Join(parts, "; ")
}

// reload re-reads the configuration on SIGHUP. An invalid file keeps the
// running configuration; the reason goes to the log and the status. Parts
// whose configuration changed are restarted; the others keep running.
func (d *Daemon) reload(st *state) {
	d.opts.Notifier.Reloading()
	if light := d.display.light.Load(); light != nil {
		light.Reloading()
	}
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
		return
	}
	old := st.cfg
	cfg, pending := restartOnly(old, cfg)
	cfg, st.subnet = d.resolveSubnet(cfg, st.subnet)
	notApplied := d.traces.apply(cfg.Hardware)
	var problem string
	if cfg.Control, problem = d.applyControl(cfg.Control); problem != "" {
		notApplied = append(notApplied, problem)
	}
	st.cfg = cfg
	st.status.Config = api.Config{Path: configPathShown(cfg), LoadedAt: now, ReloadOK: true, LastReloadAt: now, ReloadsFailed: st.status.Config.ReloadsFailed,
		RestartNeeded: pending, NotApplied: notApplied}
	if len(pending) == 0 && len(notApplied) == 0 {
		d.log.Info("configuration reloaded", "config", configPathShown(cfg))
	} else {
		// Never "reloaded" alone while part of the file is not in effect.
		d.log.Warn("configuration reloaded, but not all of it is in effect", "config", configPathShown(cfg),
			"restart_needed", strings.Join(pending, ", "), "not_applied", strings.Join(notApplied, "; "))
	}
	d.restartChanged(st, old, cfg)
}

// drainFor applies events queued by a part that just stopped, so that its
// last reports do not land after its replacement's first ones.
func (d *Daemon) drainFor(st *state) {
	for {
		select {
		case ev := <-d.events:
			ev(st)
			st.quiet = false
		default:
			return
		}
	}
}
