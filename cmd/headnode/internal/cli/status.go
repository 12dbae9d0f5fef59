package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
	"github.com/headnode/headnode/power/nodename"
)

func runStatus(ctx context.Context, env *Env) error {
	set, pos, err := flags(env.Args, "json")
	if err != nil {
		return err
	}
	if len(pos) > 1 || len(pos) == 1 && set["json"] {
		return usagef("status takes at most one node and no node with --json, got %q", pos)
	}
	var node string
	if len(pos) == 1 {
		if _, err := nodename.Parse(pos[0]); err != nil {
			return usagef("%v", err)
		}
		node = pos[0]
	}
	c, err := env.client()
	if err != nil {
		return err
	}
	s, err := c.Status(ctx)
	if err != nil {
		return err
	}
	if set["json"] {
		return printJSON(env.Stdout, s)
	}
	if node != "" {
		return printNodeStatus(ctx, env.Stdout, c, s, node)
	}
	printStatus(env.Stdout, s)
	return nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func printStatus(out io.Writer, s *api.Status) {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "headnode\t%s, up %s\n", s.Version, time.Since(s.Started).Round(time.Second))
	health := s.Health.State
	if len(s.Health.Reasons) > 0 && s.Health.State != api.HealthOK {
		health += ": " + strings.Join(s.Health.Reasons, "; ")
	}
	fmt.Fprintf(w, "health\t%s\n", health)
	if len(s.Power.Nodes) > 0 {
		fmt.Fprintf(w, "nodes\t%s\n", nodesSummary(s.Power.Nodes))
	}
	fmt.Fprintf(w, "uplink\t%s\n", linkLine(s.Uplink))
	if r := s.Roles; r != nil {
		fmt.Fprintf(w, "\t%s\n", roleLine(r.Uplink))
	}
	fmt.Fprintf(w, "cluster\t%s\n", linkLine(s.Cluster))
	if r := s.Roles; r != nil {
		fmt.Fprintf(w, "\t%s\n", roleLine(r.Cluster))
		if r.Problem != "" {
			fmt.Fprintf(w, "\tproblem: %s\n", r.Problem)
		}
		if len(r.LeftAlone) > 0 {
			fmt.Fprintf(w, "\tnot for the cluster: %s\n", strings.Join(r.LeftAlone, "; "))
		}
	}
	if line := subnetLine(s.Subnet); line != "" {
		fmt.Fprintf(w, "subnet\t%s\n", line)
	}
	fmt.Fprintf(w, "NAT\t%s\n", natLine(s.NAT))
	fmt.Fprintf(w, "LCD\t%s\n", lcdLine(s.Display.LCD))
	fmt.Fprintf(w, "LED\t%s\n", ledLine(s.Display.LED))
	printDHCP(w, s, time.Now())
	if !s.Config.ReloadOK {
		fmt.Fprintf(w, "config\t%s (last reload failed: %s)\n", s.Config.Path, firstLine(s.Config.ReloadError))
	} else {
		fmt.Fprintf(w, "config\t%s\n", s.Config.Path)
	}
	if len(s.Config.RestartNeeded) > 0 {
		fmt.Fprintf(w, "\ttakes effect at the next restart: %s\n", strings.Join(s.Config.RestartNeeded, ", "))
	}
	for _, p := range s.Config.NotApplied {
		fmt.Fprintf(w, "\tnot in effect: %s\n", p)
	}
	printPower(w, s.Power)
	w.Flush()
}

// roleLine says why an interface has its role.
func roleLine(r api.Role) string {
	how := "configured"
	if r.Auto {
		how = "auto"
	}
	name := r.Interface
	if name == "" {
		name = "none yet"
	}
	s := fmt.Sprintf("role (%s): %s, %s", how, name, r.Why)
	if r.Interface != "" && r.Claimed {
		s += "; checked and in use"
	}
	return s
}

func linkLine(l api.Link) string {
	if l.Interface == "" {
		return "none yet"
	}
	switch {
	case !l.Exists:
		return l.Interface + ": missing"
	case !l.Carrier:
		return l.Interface + ": no link"
	case l.Address == "":
		return l.Interface + ": no IPv4 address"
	}
	s := l.Interface + ": " + l.Address
	if len(l.IPv6) > 0 {
		s += " " + strings.Join(l.IPv6, " ")
	}
	return s
}

func natLine(n api.NAT) string {
	switch n.State {
	case api.NATOK:
		return fmt.Sprintf("ok, %s, %s, repairs %d", n.Subnet, n.Backend, n.Repairs)
	case api.NATFailed:
		return "failed: " + n.Error
	case api.NATWaiting:
		return "waiting: " + strings.Join(n.Waiting, "; ")
	case api.NATCleared:
		return "off (removed with `headnode nat clear`; `headnode nat apply` turns it on)"
	case api.NATDisabled:
		return "not managed ([network] nat = false)"
	}
	return n.State
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
