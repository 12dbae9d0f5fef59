package daemon

import (
	"encoding"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/headnode/headnode/cmd/headnode/internal/config"
)

// A reload puts every section of the file into effect, or says which keys
// wait for a restart. The parts (daemon.go's parts) restart when their
// sections change; the control socket and the trace files are applied
// here; what remains is read only at start (restartOnly).

// restartOnly takes the keys that only a restart applies from the
// running configuration, and returns the configuration to run with and
// the keys of the file that differ from it. Those are the state
// directory (this daemon holds its lock, and every part keeps its records
// there) and the hardware the machine was opened with: real or emulated,
// and the emulated chips, whose state must survive a reload as a real
// board's does.
func restartOnly(running, file *config.Config) (*config.Config, []string) {
	run := *file
	var pending []string
	if running.Hardware.Backend != file.Hardware.Backend {
		pending = append(pending, "hardware.backend")
	}
	pending = append(pending, changedKeys("hardware.sim", running.Hardware.Sim, file.Hardware.Sim)...)
	pending = append(pending, changedKeys("daemon", running.Daemon, file.Daemon)...)
	run.Hardware.Backend, run.Hardware.Sim, run.Daemon = running.Hardware.Backend, running.Hardware.Sim, running.Daemon
	// The emulated chips sit where [power] and [lcd] put them at start.
	if run.Hardware.Backend == "sim" && !reflect.DeepEqual(running.SimSpec(), run.SimSpec()) {
		pending = append(pending, "hardware.sim (the emulated chips stay on the buses and addresses that [power] and [lcd] had at start)")
	}
	return &run, pending
}

// changedKeys lists the keys (by their TOML names, under prefix) whose
// values differ between a and b, structs of the same type.
func changedKeys(prefix string, a, b any) []string {
	var out []string
	var walk func(prefix string, a, b reflect.Value)
	walk = func(prefix string, a, b reflect.Value) {
		if a.Kind() == reflect.Struct && !a.Type().Implements(textMarshaler) {
			for i := range a.NumField() {
				f := a.Type().Field(i)
				name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
				if name == "" || name == "-" {
					continue
				}
				walk(prefix+"."+name, a.Field(i), b.Field(i))
			}
			return
		}
		if !reflect.DeepEqual(a.Interface(), b.Interface()) {
			out = append(out, prefix)
		}
	}
	walk(prefix, reflect.ValueOf(a), reflect.ValueOf(b))
	return out
}

var textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()

// applyControl moves the control socket to cfg's path, owner and mode
// when they are not those it has. It returns the [control] in effect and
// the problem, if any: on failure the socket stays as it was.
func (d *Daemon) applyControl(cfg config.Control) (config.Control, string) {
	if d.ctl != nil && d.ctl.cfg == cfg && d.ctl.owner == d.socketOwnerQuiet(cfg.Group) {
		return cfg, ""
	}
	c, err := d.serveControl(cfg, d.ctl)
	if err != nil {
		if d.ctl == nil {
			d.log.Error("control socket unavailable; the CLI cannot reach this daemon", "socket", cfg.Socket, "err", err)
		} else {
			d.log.Error("control socket not moved; the one before stays", "socket", cfg.Socket, "err", err)
		}
		if d.ctl != nil {
			return d.ctl.cfg, fmt.Sprintf("control.socket: %v (the CLI still reaches the daemon at %s)", err, d.ctl.path)
		}
		return cfg, fmt.Sprintf("control.socket: %v (the CLI cannot reach this daemon)", err)
	}
	if old := d.ctl; old != nil {
		d.log.Info("control socket replaced; connections to the one before are closed", "socket", cfg.Socket, "group", cfg.Group)
		// Requests under way get a few seconds to finish; streams (status
		// watches, console sessions) end then, so that a user the new
		// socket no longer admits keeps nothing open.
		go old.close(5 * time.Second)
	}
	d.ctl = c
	return cfg, ""
}
