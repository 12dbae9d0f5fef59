package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os/user"
	"strconv"
	"time"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
	"github.com/headnode/headnode/cmd/headnode/internal/config"
	"github.com/headnode/headnode/cmd/headnode/internal/guard"
	"github.com/headnode/headnode/cmd/headnode/internal/sim"
	"github.com/headnode/headnode/netcfg/change"
)

// Limits of the control socket. Its clients are the CLI and scripts of
// root and the [control] group: a few short requests at a time, and long
// streams (status watches, console sessions) that send no body, so there
// is no time for a whole request or answer. A client is a user
// (SO_PEERCRED), so one member of the group cannot take the places of root
// or of the other members.
var controlLimits = guard.HTTPLimits{
	Conns:      guard.ConnLimits{Total: 128, PerClient: 32, Client: guard.UnixPeer},
	Body:       guard.BodyLimits{Max: api.MaxRequestBody, Timeout: 5 * time.Second},
	Header:     8 << 10,
	HeaderTime: 5 * time.Second,
	Idle:       30 * time.Second,
}

// controlServer is the control socket being served.
type controlServer struct {
	cfg   config.Control
	owner socketOwner
	path  string
	fi    fs.FileInfo // the socket at path, so that only it is removed
	l     *guard.Listener
	srv   *http.Server
	done  chan struct{}
}

// serveControl serves the control API on a unix socket. The socket is the
// only way to change state: its owner and mode (root and group, 0660;
// root alone, 0600) are the authentication. The network listener only
// ever gets read-only handlers. replacing is the socket being served now
// (nil at start): on a reload the new socket takes its place at once.
func (d *Daemon) serveControl(cfg config.Control, replacing *controlServer) (*controlServer, error) {
	owner := d.socketOwner(cfg.Group)
	var own fs.FileInfo
	if replacing != nil && replacing.path == cfg.Socket {
		own = replacing.fi
	}
	ul, fi, err := listenSocket(cfg.Socket, owner.gid, owner.mode, own)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	d.readOnlyRoutes(mux)
	d.networkRoutes(mux)
	d.powerRoutes(mux)
	d.displayRoutes(mux)
	d.consoleRoutes(mux)
	sim.FaultRoutes(mux, d.hw.Faults(), d.log)
	lim := controlLimits
	lim.Conns.Refused = &d.limits.controlRefused
	l, srv := lim.Server(ul, mux)
	c := &controlServer{cfg: cfg, owner: owner, path: cfg.Socket, fi: fi, l: l, srv: srv, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		if err := c.srv.Serve(c.l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("control socket stopped", "err", err)
		}
	}()
	return c, nil
}

// close stops serving: requests under way get grace to finish, then every
// connection is closed, streams and console sessions too (so a user the
// new socket no longer admits loses what was open). The socket file goes
// unless another (the one replacing it) has taken its path.
func (c *controlServer) close(grace time.Duration) {
	if c == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	c.srv.Shutdown(ctx)
	c.srv.Close()
	c.l.CloseConns()
	<-c.done
	removeSocket(c.path, c.fi)
}

// socketOwner is who may use the control socket besides root.
type socketOwner struct {
	gid  int // -1: root's group, unchanged
	mode fs.FileMode
}

// socketOwner returns the group and mode for the socket: group's, 0660,
// when it exists; root's alone, 0600, otherwise (said in the log when a
// group was asked for).
func (d *Daemon) socketOwner(group string) socketOwner {
	o, warn := lookupSocketOwner(group)
	if warn != "" {
		d.log.Warn("control socket is for root only: "+warn, "group", group)
	}
	return o
}

// socketOwnerQuiet is socketOwner without the log line, to compare.
func (d *Daemon) socketOwnerQuiet(group string) socketOwner {
	o, _ := lookupSocketOwner(group)
	return o
}

func lookupSocketOwner(group string) (socketOwner, string) {
	rootOnly := socketOwner{gid: -1, mode: 0o600}
	if group == "" {
		return rootOnly, ""
	}
	g, err := user.LookupGroup(group)
	if err != nil {
		return rootOnly, fmt.Sprintf("its group does not exist (the package creates it): %v", err)
	}
	gid, err := strconv.Atoi(g.Gid)
	if err != nil {
		return rootOnly, "its group has no numeric ID: " + g.Gid
	}
	return socketOwner{gid: gid, mode: 0o660}, ""
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
		// A watcher that stops reading for a minute is dropped.
		rc.SetWriteDeadline(time.Now().Add(time.Minute))
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
