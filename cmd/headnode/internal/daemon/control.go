package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"time"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
	"github.com/headnode/headnode/cmd/headnode/internal/sim"
	"github.com/headnode/headnode/netcfg/change"
)

// serveControl serves the control API on a unix socket. The socket is the
// only way to change state: its owner and mode (root and group, 0660) are
// the authentication. The network listener only ever gets read-only
// handlers.
func (d *Daemon) serveControl(path, group string) (*http.Server, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	if err := removeStaleSocket(path); err != nil {
		return nil, err
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o660); err != nil {
		l.Close()
		return nil, err
	}
	d.shareSocket(path, group)
	mux := http.NewServeMux()
	d.readOnlyRoutes(mux)
	d.networkRoutes(mux)
	d.powerRoutes(mux)
	d.displayRoutes(mux)
	d.consoleRoutes(mux)
	sim.FaultRoutes(mux, d.hw.Faults(), d.log)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("control socket stopped", "err", err)
		}
	}()
	return srv, nil
}

// shareSocket gives the socket to group, so its members can use the CLI
// without sudo. Without the group the socket stays root's: safe, and said
// once in the log.
func (d *Daemon) shareSocket(path, group string) {
	if group == "" {
		return
	}
	g, err := user.LookupGroup(group)
	if err != nil {
		d.log.Warn("control socket is for root only: its group does not exist (the package creates it)", "group", group, "err", err)
		return
	}
	gid, err := strconv.Atoi(g.Gid)
	if err == nil {
		err = os.Chown(path, -1, gid)
	}
	if err != nil {
		d.log.Warn("control socket is for root only: cannot give it to its group", "group", group, "err", err)
	}
}

// removeStaleSocket deletes a socket file left by a daemon that died, but
// refuses to steal the socket of one that is still running.
func removeStaleSocket(path string) error {
	if _, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("another headnode daemon is already running (it answers on %s)", path)
	}
	return os.Remove(path)
}

// readOnlyRoutes are safe to expose anywhere: they change nothing.
func (d *Daemon) readOnlyRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		s, _ := d.current()
		api.Reply(w, http.StatusOK, s)
	})
	mux.HandleFunc("GET /v1/watch", d.handleWatch)
}

// handleWatch streams one JSON status per line: the current one, then one
// per change. Slow readers skip intermediate states, never block the loop.
func (d *Daemon) handleWatch(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	rc := http.NewResponseController(w)
	enc := json.NewEncoder(w)
	for {
		s, changed := d.current()
		if err := enc.Encode(s); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-changed:
		}
	}
}

func (d *Daemon) handleNATStatus(w http.ResponseWriter, r *http.Request) {
	s, _ := d.current()
	out := s.NAT
	k := d.net.keeper.Load()
	if k == nil {
		api.Reply(w, http.StatusOK, out)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	ns, err := k.Status(ctx)
	if err != nil {
		out.Error = err.Error()
		api.Reply(w, http.StatusOK, out)
		return
	}
	out.Backend = string(ns.Backend)
	out.Forwarding = ns.Forwarding
	out.RulesPresent = ns.RulesPresent
	out.Missing = ns.Rules.Missing()
	if !ns.RulesPresent && ns.Subnet == "" {
		out.Missing = nil
	}
	out.Policy = ns.Rules.Policy
	out.Subnet = ns.Subnet
	api.Reply(w, http.StatusOK, out)
}

func (d *Daemon) handleNATApply(w http.ResponseWriter, r *http.Request) {
	k := d.net.keeper.Load()
	if k == nil {
		api.ReplyError(w, http.StatusServiceUnavailable, errNoKeeper)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	res, err := k.Apply(ctx)
	if err != nil {
		api.ReplyError(w, http.StatusInternalServerError, err)
		return
	}
	api.Reply(w, http.StatusOK, api.Changes{Changes: changeTexts(res.Changes), Waiting: res.Waiting})
}

func (d *Daemon) handleNATClear(w http.ResponseWriter, r *http.Request) {
	k := d.net.keeper.Load()
	if k == nil {
		api.ReplyError(w, http.StatusServiceUnavailable, errNoKeeper)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	changes, err := k.Clear(ctx)
	if err != nil {
		api.ReplyError(w, http.StatusInternalServerError, err)
		return
	}
	api.Reply(w, http.StatusOK, api.Changes{Changes: changeTexts(changes)})
}

var errNoKeeper = errors.New("NAT is unavailable in this daemon (see `headnode status`)")

func changeTexts(cs []change.Change) []string {
	out := make([]string, 0, len(cs))
	for _, c := range cs {
		out = append(out, c.Text)
	}
	return out
}
