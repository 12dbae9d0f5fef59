package daemon

import (
	"context"

	"github.com/headnode/headnode/cmd/headnode/internal/config"
)

// partRunner runs the parts for the loop goroutine (and only it): started
// in order, stopped in reverse, restarted when their configuration
// changes, and, while the cluster moves to another subnet, some of them
// held stopped for a while (subnet.go).
type partRunner struct {
	ctx   context.Context
	parts []part
	stops []func()
	// held marks parts stopped until resume.
	held []bool
	// unhold, while parts are held, undoes what holding them took away
	// (the nodes' links), should the daemon stop first.
	unhold func()
}

func newPartRunner(ctx context.Context, parts []part) *partRunner {
	return &partRunner{ctx: ctx, parts: parts, stops: make([]func(), len(parts)), held: make([]bool, len(parts))}
}

func (r *partRunner) startAll(cfg *config.Config) {
	for i, p := range r.parts {
		r.stops[i] = p.start(r.ctx, cfg)
	}
}

func (r *partRunner) stopAll() {
	if r.unhold != nil {
		r.unhold()
		r.unhold = nil
	}
	for i := len(r.stops) - 1; i >= 0; i-- {
		r.stops[i]()
	}
}

// restartChanged restarts the parts whose configuration differs from old
// to cfg (a held part starts at once: the new configuration wins). hold
// names parts that are to be stopped and held instead.
func (d *Daemon) restartChanged(st *state, old, cfg *config.Config, hold ...string) {
	r := d.run
	for i, p := range r.parts {
		if !p.changed(old, cfg) && !r.held[i] {
			continue
		}
		holdIt := false
		for _, h := range hold {
			holdIt = holdIt || h == p.name
		}
		if !r.held[i] {
			d.log.Info("settings changed; restarting", "part", p.name)
			r.stops[i]()
			d.drainFor(st)
		}
		if holdIt {
			r.stops[i], r.held[i] = func() {}, true
			continue
		}
		r.stops[i], r.held[i] = p.start(r.ctx, cfg), false
	}
}

// resume starts the held parts with the running configuration.
func (d *Daemon) resume(st *state) {
	r := d.run
	for i, p := range r.parts {
		if r.held[i] {
			r.stops[i], r.held[i] = p.start(r.ctx, st.cfg), false
		}
	}
}
