package daemon

import (
	"context"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
	"github.com/headnode/headnode/cmd/headnode/internal/config"
	"github.com/headnode/headnode/netcfg/dhcpwatch"
	"github.com/headnode/headnode/netcfg/links"
	"github.com/headnode/headnode/netcfg/routes"
)

// fakeWatch stands in for the DHCP watcher: it reports listening every
// second, as the real one does after each probe, and a sighting whenever
// the test says another server answers.
type fakeWatch struct {
	mu      sync.Mutex
	answers map[string]bool // interface -> another server answers there
	started []string
}

func (f *fakeWatch) run(ctx context.Context, o dhcpwatch.Options, report func(dhcpwatch.Report)) {
	f.mu.Lock()
	f.started = append(f.started, o.Interface)
	f.mu.Unlock()
	for {
		now := time.Now()
		report(dhcpwatch.Report{At: now, Listening: true})
		f.mu.Lock()
		other := f.answers[o.Interface]
		f.mu.Unlock()
		if other {
			report(dhcpwatch.Report{At: now, Listening: true, Sighting: &dhcpwatch.Sighting{Server: netip.MustParseAddr("192.168.1.1"), Type: "OFFER", At: now}})
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

func (f *fakeWatch) answer(iface string, on bool) {
	f.mu.Lock()
	f.answers[iface] = on
	f.mu.Unlock()
}

// rolesRig is the loop's side of the roles part: state, events, a fake
// watcher, and the loop's own work (run events, settle) for a while.
type rolesRig struct {
	d     *Daemon
	st    *state
	watch *fakeWatch
}

func newRolesRig(t *testing.T, ctx context.Context, cluster, uplink string) *rolesRig {
	cfg := config.Default()
	cfg.Network.ClusterInterface, cfg.Network.UplinkInterface = cluster, uplink
	cfg.DHCP.Probe.Duration, cfg.DHCP.Quiet.Duration = 2*time.Second, 5*time.Second
	f := &fakeWatch{answers: map[string]bool{}}
	d := &Daemon{log: slog.New(slog.DiscardHandler), events: make(chan event, 256), changed: make(chan struct{})}
	d.opts.Notifier.Send = func(string) error { return nil }
	d.roles.ctx, d.roles.watch = ctx, f.run
	d.roles.desired = make(chan keeperDesired, 1)
	st := &state{cfg: cfg}
	st.resetNetwork()
	st.resetRoles()
	st.roles.running = true
	st.status.DHCP = api.DHCP{State: api.DHCPWaiting}
	// No keeper here: NAT as if another tool owned it, so READY and the
	// health do not wait for one.
	st.status.NAT.State = api.NATDisabled
	st.status.Config.ReloadOK = true
	// No LCD, LED or board to report on.
	st.cfg.LCD.Enabled, st.cfg.LED.Enabled = false, false
	return &rolesRig{d: d, st: st, watch: f}
}

// run does the loop's work for d of (fake) time.
func (r *rolesRig) run(d time.Duration) {
	deadline := time.After(d)
	for {
		select {
		case ev := <-r.d.events:
			ev(r.st)
			r.d.settle(r.st)
		case <-deadline:
			return
		}
	}
}

func (r *rolesRig) links(ls ...links.State) {
	m := map[string]links.State{}
	for _, l := range ls {
		m[l.Name] = l
	}
	r.d.applyLinks(r.st, m)
	r.d.settle(r.st)
}

func (r *rolesRig) routes(rs ...routes.Default) {
	r.st.roles.routes, r.st.roles.routesKnown = rs, true
	r.d.settle(r.st)
}

func up(name string, addrs ...string) links.State {
	l := links.State{Name: name, Exists: true, Up: true, Carrier: true, Index: len(name) + int(name[len(name)-1])}
	for _, a := range addrs {
		l.IPv4 = append(l.IPv4, netip.MustParsePrefix(a))
	}
	return l
}

// Explicit names: the cluster port is taken only after the probe window
// with carrier; another server seen then silences ours until it has been
// quiet; another server seen before makes the port a LAN, for good, with
// the LCD's two lines and the LED's class.
func TestRolesClaimSilenceAndLAN(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		r := newRolesRig(t, ctx, "eth0", "eth1")
		r.routes(routes.Default{Interface: "eth1", Metric: 100})
		r.links(up("eth0"), up("eth1", "10.0.0.2/24"))
		if r.st.roles.claimed != "" || r.st.status.DHCP.State != api.DHCPProbing {
			t.Fatalf("taken before the check: claimed %q, DHCP %+v", r.st.roles.claimed, r.st.status.DHCP)
		}
		r.run(1500 * time.Millisecond)
		if r.st.roles.claimed != "" {
			t.Fatal("taken within the probe window")
		}
		r.run(time.Second)
		if r.st.roles.claimed != "eth0" || !r.st.roles.dhcpOpen || r.st.status.Health.State != api.HealthOK {
			t.Fatalf("after the window: claimed %q, open %v, health %+v", r.st.roles.claimed, r.st.roles.dhcpOpen, r.st.status.Health)
		}
		if v := r.st.status.Roles; v == nil || !v.Cluster.Claimed || v.Uplink.Interface != "eth1" {
			t.Errorf("roles view %+v", v)
		}

		// Another server while ours serves: silent at the next probe.
		r.watch.answer("eth0", true)
		r.run(1100 * time.Millisecond)
		if r.st.roles.dhcpOpen || r.st.status.DHCP.State != api.DHCPOtherServer || r.st.status.Health.State != api.HealthDegraded ||
			!strings.HasPrefix(r.st.status.Health.Reasons[0], "other DHCP server 192.168.1.1 on eth0") {
			t.Fatalf("not silenced: open %v, DHCP %+v, health %+v", r.st.roles.dhcpOpen, r.st.status.DHCP, r.st.status.Health)
		}
		if r.st.roles.claimed != "eth0" {
			t.Error("a server seen after the claim gave up the cluster side; it should only silence ours")
		}
		// It stops: ours answers again once it has been quiet for 5 s.
		r.watch.answer("eth0", false)
		r.run(4 * time.Second)
		if r.st.roles.dhcpOpen {
			t.Fatal("answering again before the quiet time")
		}
		r.run(2 * time.Second)
		if !r.st.roles.dhcpOpen || r.st.status.Health.State != api.HealthOK {
			t.Fatalf("not answering again after the quiet time: health %+v", r.st.status.Health)
		}

		// The cable is pulled and plugged into a LAN: checked again, and
		// found out.
		r.watch.answer("eth0", true)
		r.links(links.State{Name: "eth0", Exists: true, Up: true, Index: up("eth0").Index}, up("eth1", "10.0.0.2/24"))
		if r.st.roles.claimed != "" || r.st.roles.dhcpOpen {
			t.Fatalf("still taken without carrier: %q", r.st.roles.claimed)
		}
		r.links(up("eth0"), up("eth1", "10.0.0.2/24"))
		r.run(1100 * time.Millisecond)
		p := r.st.roles.decided.Problem
		if p == nil || p.Short != "eth0 is a LAN" {
			t.Fatalf("no problem after a server answered before the claim: %+v", r.st.roles.decided)
		}
		h := r.st.status.Health
		if h.State != api.HealthFailed || h.Class != 4 || h.Reasons[0] != "eth0 is a LAN" || h.Reasons[1] != "swap cables?" {
			t.Errorf("health %+v", h)
		}
		if r.st.roles.claimed != "" || r.st.status.DHCP.State != api.DHCPOtherServer {
			t.Errorf("claimed %q, DHCP %+v", r.st.roles.claimed, r.st.status.DHCP)
		}
	})
}

// Auto: the uplink follows the default route with the lowest metric, and
// the old uplink is never taken as the cluster side.
func TestRolesUplinkFollowsRoutes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		r := newRolesRig(t, ctx, "auto", "auto")
		r.links(up("eth0"), up("eth1", "10.0.0.2/24"), up("wlan0", "10.1.0.2/24"))
		r.routes()
		if r.st.status.Uplink.Interface != "" || r.st.roles.decided.Cluster != "" {
			t.Fatalf("guessed without a route: %+v", r.st.roles.decided)
		}
		r.routes(routes.Default{Interface: "eth1", Metric: 100}, routes.Default{Interface: "wlan0", Metric: 600})
		if r.st.status.Uplink.Interface != "eth1" || r.st.status.Uplink.Address != "10.0.0.2/24" || r.st.roles.decided.Cluster != "eth0" {
			t.Fatalf("uplink %+v, cluster %q", r.st.status.Uplink, r.st.roles.decided.Cluster)
		}
		r.routes(routes.Default{Interface: "wlan0", Metric: 600})
		if r.st.status.Uplink.Interface != "wlan0" || r.st.status.Uplink.Address != "10.1.0.2/24" || r.st.roles.decided.Cluster != "eth0" {
			t.Fatalf("after failover: uplink %+v, cluster %q", r.st.status.Uplink, r.st.roles.decided.Cluster)
		}
		if why := r.st.roles.decided.Refused["eth1"]; why != "carried the default route earlier" {
			t.Errorf("eth1 after failover: %q", why)
		}
	})
}
