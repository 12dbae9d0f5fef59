package sim

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
)

// view draws the simulated machine as its user would see it: the LCD's
// text, the LED colours, and the nodes. On a terminal it redraws in place;
// otherwise (a log, a test) it prints each new picture once.
type view struct {
	out     io.Writer
	tty     bool
	socket  string
	log     string
	self    string
	page    string
	sandbox string
	topo    *topology
	last    string
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func (v *view) draw(s *api.Status, nodes []nodeView) {
	var b strings.Builder
	v.picture(&b, s, nodes)
	pic := b.String()
	if pic == v.last {
		return
	}
	v.last = pic
	if v.tty {
		// Home, clear, draw: no scrolling history of pictures.
		fmt.Fprint(v.out, "\x1b[H\x1b[2J"+pic)
		return
	}
	fmt.Fprintf(v.out, "--- %s\n%s", time.Now().Format("15:04:05.000"), pic)
}

func (v *view) bye() {
	fmt.Fprintln(v.out, "headnode sim: stopping; the sandbox and the emulated machine are removed")
}

func (v *view) picture(b *strings.Builder, s *api.Status, nodes []nodeView) {
	title := "headnode sim"
	if s.Power.Board != "" {
		title += " · " + s.Power.Board
	}
	if k := s.Display.LED.Kind; k != "" {
		title += " · " + k
	}
	if v.topo != nil {
		title += " · topology " + v.topo.name
	}
	fmt.Fprintf(b, "%s\n\n", title)

	lcd := s.Display.LCD
	width := 0
	for _, r := range lcd.Rows {
		width = max(width, len([]rune(r)))
	}
	led := v.leds(s.Display.LED)
	if len(lcd.Rows) == 0 {
		fmt.Fprintf(b, "  LCD %s\n", orDash(lcd.State))
		fmt.Fprintf(b, "  LED %s\n", led)
	} else {
		fmt.Fprintf(b, "  ┌%s┐\n", strings.Repeat("─", width))
		for i, r := range lcd.Rows {
			side := ""
			if i == 0 {
				side = "   LED " + led
			}
			fmt.Fprintf(b, "  │%s│%s\n", r, side)
		}
		fmt.Fprintf(b, "  └%s┘\n", strings.Repeat("─", width))
	}
	fmt.Fprintln(b)

	w := tabwriter.NewWriter(b, 0, 4, 2, ' ', 0)
	health := s.Health.State
	if len(s.Health.Reasons) > 0 && s.Health.State != api.HealthOK {
		health += ": " + strings.Join(s.Health.Reasons, "; ")
	}
	fmt.Fprintf(w, "  health\t%s\n", health)
	fmt.Fprintf(w, "  uplink\t%s %s\n", s.Uplink.Interface, orDash(s.Uplink.Address))
	fmt.Fprintf(w, "  cluster\t%s %s\n", s.Cluster.Interface, orDash(s.Cluster.Address))
	if r := s.Roles; r != nil && r.Problem != "" {
		fmt.Fprintf(w, "  problem\t%s\n", r.Problem)
	}
	fmt.Fprintf(w, "  NAT\t%s\n", s.NAT.State)
	if s.DHCP.State != "" && s.DHCP.State != api.DHCPOff {
		fmt.Fprintf(w, "  DHCP\t%s, %d leases\n", s.DHCP.State, len(s.DHCP.Leases))
	}
	w.Flush()
	if v.topo != nil {
		for _, n := range v.topo.notes() {
			fmt.Fprintf(b, "  %s\n", n)
		}
	}
	if len(s.Power.Nodes) > 0 {
		fmt.Fprintln(b)
		net := map[string]nodeView{}
		for _, n := range nodes {
			net[n.Name] = n
		}
		w = tabwriter.NewWriter(b, 0, 4, 2, ' ', 0)
		fmt.Fprintf(w, "  NODE\tSTATE\tPOWER\tLINK\tADDRESS\tWAY OUT\n")
		for _, n := range s.Power.Nodes {
			power := "-"
			if n.Powered != nil {
				power = map[bool]string{true: "on", false: "off"}[*n.Powered]
			}
			nv := net[n.Name]
			fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s\t%s\n", n.Name, n.State, power, orDash(nv.Link), orDash(nv.Addr), orDash(nv.Out))
		}
		w.Flush()
	}
	fmt.Fprintln(b)
	cmd := "sudo " + v.self + " --socket " + v.socket
	fmt.Fprintf(b, "  try: %s off p2   (or on, status, led identify, hub reset)\n", cmd)
	if v.page != "" {
		fmt.Fprintf(b, "  status page: %s\n", v.page)
	}
	if v.sandbox != "" {
		fmt.Fprintf(b, "  a node's shell: sudo ip netns exec %s-p1 sh\n", v.sandbox)
		fmt.Fprintf(b, "  a node's console: %s console p1   (Ctrl-] detaches; --log: what it printed)\n", cmd)
	}
	fmt.Fprintf(b, "  daemon log: %s (removed on exit); Ctrl-C stops\n", v.log)
}

// leds draws each LED as a coloured disc on a terminal, as its colour
// code otherwise.
func (v *view) leds(l api.LED) string {
	if len(l.Colors) == 0 {
		return orDash(l.State)
	}
	var parts []string
	for _, c := range l.Colors {
		if v.tty {
			r, g, bl := hexRGB(c)
			// Scale up: the LED's brightness setting makes colours dark
			// on screen; the hue is what matters.
			m := max(r, g, bl, 1)
			r, g, bl = r*255/m, g*255/m, bl*255/m
			if c == "#000000" {
				parts = append(parts, "○")
			} else {
				parts = append(parts, fmt.Sprintf("\x1b[38;2;%d;%d;%dm●\x1b[0m", r, g, bl))
			}
		} else {
			parts = append(parts, c)
		}
	}
	return strings.Join(parts, " ") + "  " + l.Pattern
}

func hexRGB(c string) (r, g, b int) {
	if len(c) != 7 {
		return 0, 0, 0
	}
	v, err := strconv.ParseUint(c[1:], 16, 32)
	if err != nil {
		return 0, 0, 0
	}
	return int(v >> 16 & 0xff), int(v >> 8 & 0xff), int(v & 0xff)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
