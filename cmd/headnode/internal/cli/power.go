package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
)

// Node power commands, with the official clusterctrl's grammar: nodes are
// p1..pN; none named means all.
func runOn(ctx context.Context, env *Env) error  { return powerNodes(ctx, env, "on") }
func runOff(ctx context.Context, env *Env) error { return powerNodes(ctx, env, "off") }

func runAlert(ctx context.Context, env *Env) error {
	return powerSwitch(ctx, env, "alert", "on", "off")
}

func runHub(ctx context.Context, env *Env) error {
	return powerSwitch(ctx, env, "hub", "on", "off", "reset")
}

func runLEDs(ctx context.Context, env *Env) error {
	return powerSwitch(ctx, env, "leds", "on", "off")
}

func powerNodes(ctx context.Context, env *Env, op string) error {
	_, names, err := flags(env.Args)
	if err != nil {
		return err
	}
	return powerRequest(ctx, env, op, api.PowerRequest{Nodes: names})
}

func powerSwitch(ctx context.Context, env *Env, op string, valid ...string) error {
	_, pos, err := flags(env.Args)
	if err != nil {
		return err
	}
	choices := strings.Join(valid, "|")
	if len(pos) != 1 {
		return usagef("%s needs one of %s", op, choices)
	}
	for _, v := range valid {
		if pos[0] == v {
			return powerRequest(ctx, env, op, api.PowerRequest{State: v})
		}
	}
	return usagef("%s %q: use %s", op, pos[0], choices)
}

func powerRequest(ctx context.Context, env *Env, op string, req api.PowerRequest) error {
	c, err := env.client()
	if err != nil {
		return err
	}
	var out api.Changes
	if err := c.Do(ctx, http.MethodPost, "/v1/power/"+op, req, &out); err != nil {
		return err
	}
	for _, line := range out.Changes {
		fmt.Fprintln(env.Stdout, line)
	}
	return nil
}

// printPower adds the board and the node table to `headnode status`.
func printPower(w io.Writer, p api.Power) {
	if len(p.Boards) == 0 {
		fmt.Fprintf(w, "board\tnone\n")
	}
	for _, b := range p.Boards {
		fmt.Fprintf(w, "board\t%s\n", boardLine(b))
	}
	for _, e := range p.Errors {
		fmt.Fprintf(w, "power error\t%s\n", e)
	}
	for _, e := range p.Warnings {
		fmt.Fprintf(w, "power warning\t%s\n", e)
	}
	if len(p.Queued) > 0 {
		fmt.Fprintf(w, "queued\t%s (one every %s)\n", strings.Join(p.Queued, " "), p.Stagger)
	}
	if len(p.Nodes) == 0 {
		return
	}
	fmt.Fprintf(w, "\n")
	t := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(t, "NODE\tSTATE\tPOWER\tADDRESS\tSINCE\n")
	for _, n := range p.Nodes {
		pw := "-"
		if n.Powered != nil {
			pw = onOff(*n.Powered)
		}
		since := "-"
		if !n.Since.IsZero() {
			since = time.Since(n.Since).Round(time.Second).String()
		}
		fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%s\n", n.Name, n.State, pw, n.Address, since)
	}
	t.Flush()
}

// boardLine is one board: where it is, its nodes, and what it reads back.
func boardLine(b api.PowerBoard) string {
	where := "GPIO"
	if b.Bus >= 0 {
		where = fmt.Sprintf("I2C bus %d", b.Bus)
		if b.Address != "" {
			where += " " + b.Address
		}
	}
	for _, x := range []string{b.Chip, b.Firmware} {
		if x != "" && x != "GPIO" {
			where += ", " + x
		}
	}
	if b.Order != 0 {
		where += fmt.Sprintf(", order %d", b.Order)
	}
	s := fmt.Sprintf("%s (%s): %s", b.Model, where, b.Nodes)
	if b.State != "ok" {
		return s + ", " + b.State + ": " + b.Error
	}
	for _, f := range []struct {
		name string
		v    *bool
	}{{"hub", b.Hub}, {"alert", b.Alert}, {"leds", b.LEDs}} {
		if f.v != nil {
			s += ", " + f.name + " " + onOff(*f.v)
		}
	}
	return s
}
