package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
	"github.com/headnode/headnode/power/nodename"
)

// Node power commands, with the official clusterctrl's grammar: nodes are
// p1..pN; none named means all.
func runOn(ctx context.Context, env *Env) error  { return powerNodes(ctx, env, "on") }
func runOff(ctx context.Context, env *Env) error { return powerNodes(ctx, env, "off") }

// runAlert: `alert on|off [pN ...]`; with nodes named, only their boards'.
func runAlert(ctx context.Context, env *Env) error {
	_, pos, err := flags(env.Args)
	if err != nil {
		return err
	}
	if len(pos) < 1 || (pos[0] != "on" && pos[0] != "off") {
		if len(pos) == 0 {
			return usagef("alert needs one of on|off")
		}
		return usagef("alert %q: use on|off", pos[0])
	}
	return powerRequest(ctx, env, "alert", api.PowerRequest{State: pos[0], Nodes: pos[1:]})
}

func runHub(ctx context.Context, env *Env) error {
	return powerSwitch(ctx, env, "hub", "on", "off", "reset")
}

func runLEDs(ctx context.Context, env *Env) error {
	return powerSwitch(ctx, env, "leds", "on", "off")
}

func runWP(ctx context.Context, env *Env) error {
	return powerSwitch(ctx, env, "wp", "on", "off")
}

// runFan: `fan on|off [c|ORDER]`.
func runFan(ctx context.Context, env *Env) error { return switchWithTarget(ctx, env, "fan", true) }

// runACT: `act on|off [ORDER]`.
func runACT(ctx context.Context, env *Env) error { return switchWithTarget(ctx, env, "act", false) }

func switchWithTarget(ctx context.Context, env *Env, op string, head bool) error {
	_, pos, err := flags(env.Args)
	if err != nil {
		return err
	}
	what := "ORDER"
	if head {
		what = "c|ORDER"
	}
	if len(pos) < 1 || len(pos) > 2 || (pos[0] != "on" && pos[0] != "off") {
		return usagef("%s needs on|off and optionally %s, e.g. `headnode %s on 20`", op, what, op)
	}
	req := api.PowerRequest{State: pos[0]}
	if len(pos) == 2 {
		if !(head && pos[1] == "c") {
			if _, err := order(pos[1]); err != nil {
				return err
			}
		}
		req.Target = pos[1]
	}
	return powerRequest(ctx, env, op, req)
}

// order parses a ClusterCTRL order value.
func order(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 255 {
		return 0, usagef("%q is not an order: use 1-255, as `headnode status` lists them", s)
	}
	return n, nil
}

// runUSBBoot: `usbboot on|off pN ...`.
func runUSBBoot(ctx context.Context, env *Env) error {
	_, pos, err := flags(env.Args)
	if err != nil {
		return err
	}
	if len(pos) < 2 || (pos[0] != "on" && pos[0] != "off") {
		return usagef("usbboot needs on|off and the nodes, e.g. `headnode usbboot on p5`")
	}
	return powerRequest(ctx, env, "usbboot", api.PowerRequest{State: pos[0], Nodes: pos[1:]})
}

// runSetOrder: `setorder OLD NEW`.
func runSetOrder(ctx context.Context, env *Env) error {
	_, pos, err := flags(env.Args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usagef("setorder needs the board's order and its new one, e.g. `headnode setorder 20 21`")
	}
	old, err := order(pos[0])
	if err != nil {
		return err
	}
	nw, err := order(pos[1])
	if err != nil {
		return err
	}
	return powerRequest(ctx, env, "setorder", api.PowerRequest{Order: old, NewOrder: nw})
}

// runSave: `save ORDER [all|order|usbboot|pos|leds|defaults]`.
func runSave(ctx context.Context, env *Env) error {
	_, pos, err := flags(env.Args)
	if err != nil {
		return err
	}
	if len(pos) < 1 || len(pos) > 2 {
		return usagef("save needs the board's order and optionally what to save (all, order, usbboot, pos, leds, defaults)")
	}
	o, err := order(pos[0])
	if err != nil {
		return err
	}
	req := api.PowerRequest{Order: o, Save: "all"}
	if len(pos) == 2 {
		switch pos[1] {
		case "all", "order", "usbboot", "pos", "leds", "defaults":
			req.Save = pos[1]
		default:
			return usagef("nothing called %q to save: use all, order, usbboot, pos, leds or defaults", pos[1])
		}
	}
	return powerRequest(ctx, env, "save", req)
}

// runReset: `reset ORDER`, a ClusterCTRL's controller restarts.
func runReset(ctx context.Context, env *Env) error {
	_, pos, err := flags(env.Args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("reset needs the board's order, e.g. `headnode reset 20`")
	}
	o, err := order(pos[0])
	if err != nil {
		return err
	}
	return powerRequest(ctx, env, "restart", api.PowerRequest{Order: o})
}

// runGetPath: `getpath [pN ...]` prints each node's USB path, in node
// order.
func runGetPath(ctx context.Context, env *Env) error {
	_, names, err := flags(env.Args)
	if err != nil {
		return err
	}
	paths, err := getPaths(ctx, env, names)
	if err != nil {
		return err
	}
	if len(paths) == 0 {
		return errors.New("no node's USB path could be found (a ClusterHAT v1's hub is [power] hat_usb_path)")
	}
	ns := slices.Collect(maps.Keys(paths))
	slices.SortFunc(ns, func(a, b string) int {
		x, _ := nodename.Parse(a)
		y, _ := nodename.Parse(b)
		return cmp.Compare(x, y)
	})
	for _, n := range ns {
		p := paths[n]
		if p == "" {
			p = "(none: the board's nodes are not on its USB hub)"
		}
		fmt.Fprintf(env.Stdout, "%s: %s\n", n, p)
	}
	return nil
}

func getPaths(ctx context.Context, env *Env, names []string) (map[string]string, error) {
	c, err := env.client()
	if err != nil {
		return nil, err
	}
	var out api.PowerPaths
	if err := c.Do(ctx, http.MethodPost, "/v1/power/paths", api.PowerRequest{Nodes: names}, &out); err != nil {
		return nil, err
	}
	return out.Paths, nil
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

// printPower adds the head node, the boards and the node table to
// `headnode status`.
func printPower(w io.Writer, p api.Power) {
	fmt.Fprintf(w, "head\t%s\n", headLine(p.Head))
	if len(p.Boards) == 0 {
		fmt.Fprintf(w, "board\tnone\n")
	}
	for _, b := range p.Boards {
		fmt.Fprintf(w, "board\t%s\n", boardLine(b))
		if f := boardFacts(b); f != "" {
			fmt.Fprintf(w, "\t%s\n", f)
		}
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
	usbboot := slices.ContainsFunc(p.Nodes, func(n api.Node) bool { return n.USBBoot != nil })
	fmt.Fprintf(w, "\n")
	t := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(t, "NODE\tSTATE\tPOWER\tADDRESS\tSINCE")
	if usbboot {
		fmt.Fprintf(t, "\tUSBBOOT")
	}
	fmt.Fprintf(t, "\n")
	for _, n := range p.Nodes {
		pw := "-"
		if n.Powered != nil {
			pw = onOff(*n.Powered)
		}
		since := "-"
		if !n.Since.IsZero() {
			since = time.Since(n.Since).Round(time.Second).String()
		}
		fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%s", n.Name, n.State, pw, n.Address, since)
		if usbboot {
			u := "-"
			if n.USBBoot != nil {
				u = onOff(*n.USBBoot)
			}
			fmt.Fprintf(t, "\t%s", u)
		}
		fmt.Fprintf(t, "\n")
	}
	t.Flush()
}

// headLine is the head node: its model and its power supply as the
// firmware reports it.
func headLine(h api.Head) string {
	s := "Raspberry Pi"
	if h.Pi5 {
		s += " 5"
	}
	if h.Revision != "" {
		s += " (revision " + h.Revision + ")"
	}
	var now, past []string
	for _, f := range []struct {
		on   bool
		what string
		now  bool
	}{{h.UnderVoltage, "under-voltage", true}, {h.FrequencyCapped, "frequency capped", true}, {h.Throttling, "throttled", true},
		{h.SoftTempLimit, "at its soft temperature limit", true}, {h.UnderVoltageOccurred, "under-voltage", false}} {
		switch {
		case f.on && f.now:
			now = append(now, f.what)
		case f.on:
			past = append(past, f.what)
		}
	}
	switch {
	case h.ThrottledSource == "":
		s += ", throttling unknown"
	case len(now) > 0:
		s += ": " + strings.Join(now, ", ") + " now"
	case len(past) > 0:
		s += ": " + strings.Join(past, ", ") + " a moment ago"
	default:
		s += ", power and temperature fine"
	}
	if h.Throttled != "" {
		s += " (throttled=" + h.Throttled + ")"
	}
	if h.Fan != nil {
		s += fmt.Sprintf(", fan %s (GPIO%d)", onOff(*h.Fan), h.FanGPIO)
	} else if h.FanError != "" {
		s += ", fan: " + h.FanError
	}
	return s
}

// boardFacts is the second line of a board: what it says about itself.
func boardFacts(b api.PowerBoard) string {
	var f []string
	if b.Forced != "" {
		f = append(f, "version forced to "+b.Forced)
	}
	if b.UUID != "" {
		f = append(f, "uuid "+b.UUID)
	}
	if b.Vendor != "" {
		f = append(f, "vendor "+b.Vendor)
	}
	if b.ProductID != "" {
		f = append(f, "product id "+b.ProductID)
	}
	if b.WP != nil {
		wp := "EEPROM writable"
		if *b.WP {
			wp = "EEPROM write-protected"
		}
		if b.WPLink != nil {
			switch *b.WPLink {
			case 1:
				wp += " (WP link bridged)"
			case 0:
				wp += " (WP link open)"
			default:
				wp += " (WP link unknown: no pull-up to test it on a PCA9554)"
			}
		}
		f = append(f, wp)
	}
	if b.Fan != nil {
		fan := "fan " + onOff(*b.Fan)
		if len(b.Cooling) > 0 {
			fan += ", cooling asked by " + strings.Join(b.Cooling, " ")
		}
		f = append(f, fan)
	}
	for _, v := range b.Voltages {
		what := "5 V rail"
		if v.Type == 2 {
			what = "input"
		}
		f = append(f, fmt.Sprintf("ADC%d %s %.2f V", v.ADC, what, v.Volts))
	}
	if t := b.Temperature; t != nil {
		f = append(f, fmt.Sprintf("%.1f °C", t.Celsius))
	}
	return strings.Join(f, ", ")
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

// nodesSummary counts the nodes by state, "1008/1024 up, 12 unreachable,
// 4 off", ahead of the table: on a thousand-node cluster it is what a
// reader wants first.
func nodesSummary(nodes []api.Node) string {
	count := map[string]int{}
	for _, n := range nodes {
		count[n.State]++
	}
	s := fmt.Sprintf("%d/%d up", count[api.NodeUp], len(nodes))
	for _, st := range []string{api.NodeUnreachable, api.NodeBooting, api.NodeOff, api.NodeUnknown} {
		if count[st] > 0 {
			s += fmt.Sprintf(", %d %s", count[st], st)
		}
	}
	return s
}
