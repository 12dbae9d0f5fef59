package daemon

import (
	"context"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
	"github.com/headnode/headnode/cmd/headnode/internal/config"
	"github.com/headnode/headnode/netcfg/links"
	"github.com/headnode/headnode/netcfg/nat"
)

// netState is the network part of the state (loop goroutine only).
type netState struct {
	report  *nat.KeeperReport // latest keeper report; nil before the first
	openErr error             // NAT could not start at all (no iptables)
	// links is the latest state of every interface, for parts that follow
	// interfaces other than the uplink and cluster (ethpiN gadget nodes).
	links map[string]links.State
}

// netHandles are what control handlers need from the running network part.
type netHandles struct {
	keeper atomic.Pointer[nat.Keeper]
}

func networkChanged(old, new *config.Config) bool {
	return old.Network != new.Network || old.Daemon != new.Daemon
}

// startNetwork starts the NAT keeper and the interface watcher.
func (d *Daemon) startNetwork(parent context.Context, cfg *config.Config) (stop func()) {
	ctx, cancel := context.WithCancel(parent)
	var wg sync.WaitGroup
	n := cfg.Network
	d.send(ctx, func(st *state) { st.resetNetwork() })
	var m *nat.Manager
	if !n.NAT {
		d.log.Info("NAT is off in the configuration ([network] nat = false); only watching the interfaces")
		d.send(ctx, func(st *state) { st.status.NAT.State = api.NATDisabled })
	} else {
		m = d.startNAT(ctx, &wg, cfg)
	}
	wo := links.WatchOptions{Log: d.log.With("part", "links")}
	// Test hook: the soak test shrinks the receive buffer so that event
	// bursts overflow it and the recovery path runs.
	if n, err := strconv.Atoi(os.Getenv("HEADNODE_NETLINK_RCVBUF")); err == nil && n > 0 {
		wo.ReceiveBuffer = n
	}
	w, err := links.NewWatcher(wo)
	if err != nil {
		d.log.Error("cannot watch interfaces", "err", err)
	} else {
		wg.Go(func() {
			w.Run(ctx, func(links map[string]links.State) {
				resubscribes := w.Resubscribes()
				d.send(ctx, func(st *state) {
					d.applyLinks(st, links)
					st.status.Netlink.Resubscribes = resubscribes
				})
			})
			w.Close()
		})
	}
	return func() {
		cancel()
		wg.Wait()
		d.net.keeper.Store(nil)
		if m != nil {
			m.Close()
		}
	}
}

// startNAT opens the firewall backend and starts the keeper; a failure to
// open (an iptables backend asked for, and no iptables) is reported as NAT
// state. It returns the manager to close, or
// nil.
func (d *Daemon) startNAT(ctx context.Context, wg *sync.WaitGroup, cfg *config.Config) *nat.Manager {
	n := cfg.Network
	addr, _ := n.ClusterPrefix()
	m, err := nat.NewManager(nat.Options{
		// The roles part claims the cluster side (SetDesired) once it is
		// known not to be a LAN; until then nothing is changed.
		ClusterInterface: "",
		UplinkInterface:  n.UplinkInterface,
		ClusterAddress:   addr,
		Firewall:         n.FirewallChoice(),
		StateDir:         cfg.Daemon.StateDir,
	})
	if err != nil {
		openErr := err
		d.log.Error("NAT unavailable", "err", openErr)
		d.send(ctx, func(st *state) { st.net.openErr = openErr; st.applyNAT() })
		return nil
	}
	k := nat.NewKeeper(m, nat.KeeperOptions{
		Log: d.log.With("part", "nat"),
		Report: func(r nat.KeeperReport) {
			d.send(ctx, func(st *state) { st.net.report = &r; st.applyNAT() })
		},
	})
	d.net.keeper.Store(k)
	backend := string(m.Backend())
	d.send(ctx, func(st *state) { st.status.NAT.Backend = backend })
	wg.Go(func() { k.Run(ctx) })
	return m
}

// resetNetwork forgets what the previous network part reported.
func (st *state) resetNetwork() {
	st.net = netState{}
	st.status.NAT = api.NAT{State: api.NATApplying, Daemon: true}
	st.status.Uplink = api.Link{Interface: st.uplinkName()}
	st.status.Cluster = api.Link{Interface: st.clusterName()}
}

// networkSettled: NAT has been applied or has definitely failed.
func (st *state) networkSettled() bool {
	return (st.net.report != nil || st.net.openErr != nil || st.status.NAT.State == api.NATDisabled) && st.rolesSettled()
}

// applyLinks folds a watcher snapshot into the state.
func (d *Daemon) applyLinks(st *state, links map[string]links.State) {
	before := st.status.Cluster
	st.net.links = links
	d.rolesOnLinks(st, links)
	d.refreshLinkViews(st)
	cl := st.status.Cluster
	clusterChanged := cl.Exists != before.Exists || cl.Address != before.Address || cl.Up != before.Up
	d.powerOnLinks(st, links)
	d.dhcpOnLinks(st, links)
	d.subnetOnLinks(st, links)
	if clusterChanged {
		// The cluster interface appeared, or lost its address or state:
		// let the keeper put our address back without waiting for a poll.
		if k := d.net.keeper.Load(); k != nil {
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

func linkView(l links.State, name string) api.Link {
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
	if st.net.openErr != nil {
		n.State, n.Error, n.RulesPresent = api.NATFailed, st.net.openErr.Error(), false
		return
	}
	r := st.net.report
	n.LastCheck = r.At
	n.Repairs = r.Repairs
	if r.Backend != "" {
		n.Backend = string(r.Backend)
	}
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

func (st *state) networkHealth(h *health) {
	nat := st.status.NAT
	switch nat.State {
	case api.NATFailed:
		h.fail(2, "NAT failed: "+nat.Error)
	case api.NATCleared:
		h.degrade("NAT off (nat clear)")
	case api.NATWaiting:
		for _, w := range nat.Waiting {
			h.degrade("NAT waiting: " + w)
		}
	}
	up := st.status.Uplink
	switch {
	case up.Interface == "":
		h.fail(4, "no uplink: no default route yet")
	case !up.Exists:
		h.fail(4, "no uplink: "+up.Interface+" missing")
	case !up.Carrier:
		h.degrade("uplink " + up.Interface + " down")
	case up.Address == "":
		h.degrade("waiting for DHCP on " + up.Interface)
	}
	if st.status.Cluster.Interface == "" {
		h.degrade("no cluster interface yet")
	} else if !st.status.Cluster.Exists {
		h.degrade("cluster " + st.status.Cluster.Interface + " missing")
	}
}

func (st *state) networkStatusLine() []string {
	s := st.status
	var parts []string
	if s.NAT.State == api.NATOK {
		parts = append(parts, "NAT "+s.NAT.Subnet+" ("+s.Cluster.Interface+" -> "+s.Uplink.Interface+")")
	} else {
		parts = append(parts, "NAT "+s.NAT.State)
	}
	if s.Uplink.Address != "" {
		parts = append(parts, "uplink "+s.Uplink.Address)
	} else {
		parts = append(parts, "uplink "+s.Uplink.Interface+" no address")
	}
	return parts
}

// networkRoutes are the NAT control routes (control socket only).
func (d *Daemon) networkRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/nat", d.handleNATStatus)
	mux.HandleFunc("POST /v1/nat/apply", d.handleNATApply)
	mux.HandleFunc("POST /v1/nat/clear", d.handleNATClear)
}
