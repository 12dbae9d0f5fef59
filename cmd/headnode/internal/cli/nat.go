package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
	"github.com/headnode/headnode/cmd/headnode/internal/config"
	"github.com/headnode/headnode/netcfg/firewall"
	"github.com/headnode/headnode/netcfg/links"
	"github.com/headnode/headnode/netcfg/nat"
	"github.com/headnode/headnode/netcfg/netlinksafe"
	"github.com/headnode/headnode/netcfg/roles"
	"github.com/headnode/headnode/netcfg/routes"
	"github.com/headnode/headnode/netcfg/subnet"
)

// runNAT works with or without a daemon: when one is running the request
// goes through it (so it knows, and does not undo a clear); otherwise the
// CLI does the same work itself.
func runNAT(ctx context.Context, env *Env) error {
	set, pos, err := flags(env.Args, "json")
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("nat needs one of: status, apply, clear")
	}
	sub := pos[0]
	if sub != "status" && sub != "apply" && sub != "clear" {
		return usagef("unknown nat subcommand %q: use status, apply or clear", sub)
	}
	cfg, err := env.loadConfig()
	if err != nil {
		return err
	}
	c := api.NewClient(cfg.Control.Socket)
	if env.Socket != "" {
		c = api.NewClient(env.Socket)
	}
	switch sub {
	case "status":
		var n api.NAT
		var s *api.Status
		err := c.Do(ctx, http.MethodGet, "/v1/nat", nil, &n)
		if err == nil {
			s, err = c.Status(ctx)
		}
		if errors.Is(err, api.ErrDaemonNotRunning) {
			n, s, err = localNATStatus(cfg)
		}
		if err != nil {
			return err
		}
		if set["json"] {
			return printJSON(env.Stdout, struct {
				api.NAT
				Uplink api.Link `json:"uplink"`
			}{n, s.Uplink})
		}
		printNATStatus(env.Stdout, n, s)
		return nil
	default:
		var ch api.Changes
		err := c.Do(ctx, http.MethodPost, "/v1/nat/"+sub, nil, &ch)
		if errors.Is(err, api.ErrDaemonNotRunning) {
			ch, err = localNAT(cfg, sub)
		}
		if set["json"] && err == nil {
			return printJSON(env.Stdout, ch)
		}
		for _, c := range ch.Changes {
			fmt.Fprintln(env.Stdout, c)
		}
		for _, w := range ch.Waiting {
			fmt.Fprintln(env.Stdout, "waiting: "+w)
		}
		if err == nil && len(ch.Changes) == 0 {
			fmt.Fprintln(env.Stdout, "nothing to change")
		}
		return err
	}
}

func managerFor(cfg *config.Config) (*nat.Manager, error) {
	addr, _ := cfg.Network.ClusterPrefix()
	if cfg.Network.IsAuto() {
		// The subnet the daemon chose and keeps; none yet leaves the
		// interface's address alone.
		addr = subnet.Load(cfg.Daemon.StateDir)
	}
	cluster, uplink, err := resolveRoles(cfg)
	if err != nil {
		return nil, err
	}
	return nat.NewManager(nat.Options{
		ClusterInterface: cluster,
		UplinkInterface:  uplink,
		ClusterAddress:   addr,
		Firewall:         cfg.Network.FirewallChoice(),
		StateDir:         cfg.Daemon.StateDir,
	})
}

// resolveRoles finds "auto" interfaces without the daemon, from one look
// at the links and default routes (netcfg/roles, as the daemon decides;
// a board counts as present when a gadget link exists). A cluster side
// that is a LAN, or none, is an error: nothing is changed.
func resolveRoles(cfg *config.Config) (cluster, uplink string, err error) {
	n := cfg.Network
	if n.ClusterInterface != config.Auto && n.UplinkInterface != config.Auto {
		return n.ClusterInterface, n.UplinkInterface, nil
	}
	h, err := netlinksafe.Open(nil)
	if err != nil {
		return "", "", err
	}
	defer h.Close()
	ls, err := links.ReadAll(h)
	if err != nil {
		return "", "", err
	}
	rs, err := routes.Read(h)
	if err != nil {
		return "", "", err
	}
	in := roles.Input{Uplink: n.UplinkInterface, Cluster: n.ClusterInterface, Bridge: cfg.Bridge.Name,
		BridgePorts: cfg.Bridge.Ports, BridgeEnabled: cfg.Bridge.Enabled, Links: ls}
	for name := range ls {
		in.Board = in.Board || roles.IsGadget(name)
	}
	in.Board = in.Board || cfg.Bridge.Enabled
	for _, r := range rs {
		in.Routes = append(in.Routes, roles.Route{Interface: r.Interface, Metric: r.Metric})
	}
	r := roles.Decide(in)
	switch {
	case r.Problem != nil && !r.Problem.Port:
		return "", "", errors.New(r.Problem.Line)
	case r.Cluster == "":
		return "", "", fmt.Errorf("network.cluster_interface is \"auto\" and no cluster side is found (%s); start the daemon, or name the interface", r.ClusterWhy)
	}
	return r.Cluster, r.Uplink, nil
}

func localNAT(cfg *config.Config, sub string) (api.Changes, error) {
	m, err := managerFor(cfg)
	if err != nil {
		return api.Changes{}, err
	}
	var out api.Changes
	if sub == "clear" {
		changes, err := m.Clear()
		for _, c := range changes {
			out.Changes = append(out.Changes, c.Text)
		}
		return out, err
	}
	res, err := m.Apply()
	for _, c := range res.Changes {
		out.Changes = append(out.Changes, c.Text)
	}
	out.Waiting = res.Waiting
	return out, err
}

func localNATStatus(cfg *config.Config) (api.NAT, *api.Status, error) {
	m, err := managerFor(cfg)
	if err != nil {
		return api.NAT{}, nil, err
	}
	st, err := m.Status()
	if err != nil {
		return api.NAT{}, nil, err
	}
	n := api.NAT{
		Backend:      string(st.Backend),
		Forwarding:   st.Forwarding,
		RulesPresent: st.RulesPresent,
		Policy:       st.Rules.Policy,
		Subnet:       st.Subnet,
		Waiting:      st.Waiting,
		Daemon:       false,
	}
	switch {
	case st.Cleared:
		n.State = api.NATCleared
	case st.RulesPresent && st.Forwarding:
		n.State = api.NATOK
	case st.Subnet == "":
		n.State = api.NATWaiting
	default:
		n.State = "not applied"
		n.Missing = st.Rules.Missing()
		if !st.Forwarding {
			n.Missing = append(n.Missing, "IPv4 forwarding")
		}
	}
	s := &api.Status{Uplink: api.Link{Interface: st.Uplink.Name, Exists: st.Uplink.Exists, Up: st.Uplink.Up, Carrier: st.Uplink.Carrier}}
	if a, ok := st.Uplink.Address(); ok {
		s.Uplink.Address = a.String()
	}
	return n, s, nil
}

func printNATStatus(out io.Writer, n api.NAT, s *api.Status) {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	defer w.Flush()
	state := n.State
	if len(n.Missing) > 0 {
		state += ": missing " + strings.Join(n.Missing, ", ")
	}
	if n.Error != "" {
		state += ": " + n.Error
	}
	fmt.Fprintf(w, "state\t%s\n", state)
	fmt.Fprintf(w, "backend\t%s\n", n.Backend)
	fmt.Fprintf(w, "forwarding\t%s\n", onOff(n.Forwarding))
	where := "filter " + firewall.FilterChain + ", nat " + firewall.NATChain
	if n.Backend == string(firewall.BackendNetlink) {
		where = "table ip " + firewall.NFTTable
	}
	fmt.Fprintf(w, "rules\t%s\n", map[bool]string{true: "present (" + where + ")", false: "not present"}[n.RulesPresent])
	if n.Policy != "" {
		fmt.Fprintf(w, "FORWARD policy\t%s\n", n.Policy)
	}
	if n.Subnet != "" {
		fmt.Fprintf(w, "subnet\t%s\n", n.Subnet)
	}
	fmt.Fprintf(w, "uplink\t%s\n", linkLine(s.Uplink))
	if n.Daemon {
		fmt.Fprintf(w, "repairs\t%d\n", n.Repairs)
	} else {
		fmt.Fprintf(w, "repairs\tunknown (daemon not running)\n")
	}
	for _, x := range n.Waiting {
		fmt.Fprintf(w, "waiting\t%s\n", x)
	}
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
