package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
	"github.com/headnode/headnode/cmd/headnode/internal/config"
	"github.com/headnode/headnode/power/board"
	"github.com/headnode/headnode/power/clusterctrl"
	"github.com/headnode/headnode/power/nodename"
)

// The clusterctrl personality: run as clusterctrl (or clusterhat), the
// binary takes the official tool's command line, prints its texts and
// exits with its codes, and does what it does through the running daemon.
// The tool is burtyb/clusterhat-image files/usr/sbin/clusterctrl at
// dd66f59ffe9e6e981288c9a49b0affbb7ca0c751; the line numbers below are
// that file's. Its control flow is kept: validation first (nothing is
// changed when an argument is bad), then the actions in the same order,
// with the daemon doing each on the hardware it owns.
//
// Where this differs from the tool, on purpose:
//   - It does not read /etc/default/clusterctrl's TYPE (lines 114-116; the
//     tool does nothing unless TYPE is c or cnat): headnode runs on the
//     controller by definition. Of that file only LINK is read (for init's
//     rpiboot links); the daemon's own configuration has the others
//     (CLUSTERHAT_SIZE is [power] hat_size, CLUSTERHAT_FORCE hat_version,
//     CLUSTERCTRL_DELAY stagger, FANGPIO fan_gpio, CLUSTERHATV1
//     hat_usb_path).
//   - `led on` never powers a node on: the pHAT's and Single's firmware
//     does when sent LED_EN for all nodes (lines 934), so the daemon
//     enables the LEDs node by node.
//   - A bad pN token, a non-numeric order and the like, where the tool
//     ends in a Python traceback (exit 1), print one ERROR line, exit 1.
//   - Without a daemon it says so in one line and exits 1: the daemon owns
//     the boards (see the README). init waits up to initWait for a daemon
//     that is starting (the official image's clusterctrl-init.service runs
//     at boot beside it).

// Clusterctrl runs the personality: prog is how the binary was invoked
// (os.Args[0], for the usage text), args the arguments after it.
func Clusterctrl(prog string, args []string, stdout, stderr io.Writer) int {
	p := &personality{prog: prog, args: args, out: stdout, errOut: stderr,
		defaults: "/etc/default/clusterctrl", nfsboot: "/var/lib/clusterctrl/boot/", nfsroot: "/var/lib/clusterctrl/nfs/",
		configPath: config.DefaultPath, socket: os.Getenv("HEADNODE_SOCKET"), initWait: 30 * time.Second, euid: os.Geteuid}
	if c := os.Getenv("HEADNODE_CONFIG"); c != "" {
		p.configPath = c
	}
	return p.run(context.Background())
}

// personality is one run of the clusterctrl command line.
type personality struct {
	prog   string
	args   []string
	out    io.Writer
	errOut io.Writer
	// defaults is /etc/default/clusterctrl; nfsboot and nfsroot are the
	// official image's rpiboot directories (lines 187-188).
	defaults, nfsboot, nfsroot string
	configPath, socket         string
	initWait                   time.Duration
	// euid is os.Geteuid: the links are made by root only.
	euid func() int

	client *api.Client
	st     *api.Status
	hat    *api.PowerBoard  // nil without a ClusterHAT
	ctrls  []api.PowerBoard // by order
	maxpi  int
}

// exitError is the tool ending with a message and an exit code.
type exitError struct {
	msg  string // printed on stdout, as the tool prints everything
	code int
}

func (e *exitError) Error() string { return e.msg }

func exitf(code int, format string, args ...any) error {
	return &exitError{msg: fmt.Sprintf(format, args...), code: code}
}

func (p *personality) run(ctx context.Context) int {
	if len(p.args) == 0 || slices.Contains([]string{"help", "--help", "-h", "/?"}, p.args[0]) {
		p.usage()
		return 0
	}
	err := p.connect(ctx)
	if err == nil {
		err = p.dispatch(ctx)
	}
	var ee *exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		if ee.msg != "" {
			fmt.Fprintln(p.out, ee.msg)
		}
		return ee.code
	}
	fmt.Fprintf(p.out, "ERROR: %s\n", oneLine(err.Error()))
	return 1
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", "; ") }

// usage is the tool's help (lines 44-102).
func (p *personality) usage() {
	a := p.prog
	fmt.Fprintf(p.out, "Usage :%s <cmd> \n\n", a)
	fmt.Fprint(p.out, "## Commands <cmd>\n\n")
	fmt.Fprint(p.out, "# <devices> can be a single device 'p1' or a list 'p2 p3 p5'\n")
	fmt.Fprintf(p.out, "# <order> is the order listed by '%s status' (default 20)\n\n", a)
	for _, s := range []struct{ comment, cmd string }{
		{"Power on/off all or listed device(s)", a + " on|off [<devices>]"},
		{"Show status of ClusterHAT/CTRL", a + " status"},
		{"Get number of controllable Pi", a + " maxpi"},
		{"Create/update symlinks for rpiboot [root]", "sudo " + a + " init"},
		{"Turn ALERT LED on/off for all or listed device(s)", a + " alert on|off [<devices>]"},
		{"Enable LED (Power/pX/etc.)", a + " led on"},
		{"Disable LED (Power/pX/etc.)", a + " led off"},
		{"Turns on/off or resets the USB HUB", a + " hub off|on|reset"},
	} {
		fmt.Fprintf(p.out, "# %s\n%s\n\n", s.comment, s.cmd)
	}
	fmt.Fprint(p.out, "## The following are only available on ClusterCTRL devices\n\n")
	for _, s := range []struct{ comment, cmd string }{
		{"Set order on device <old> to <new>", a + " setorder <old> <new>"},
		{"Get USB path to Px", a + " getpath <device>"},
		{"Turns FAN on/off for CTRL with <order>", a + " fan on|off <order>"},
		{"Enable/Disable ACT LED", a + " act on|off"},
		{"Save current settings to EEPROM", a + " save <order>"},
		{"Save current order to EEPROM", a + " saveorder <order>"},
		{"Save current Power On State to EEPROM", a + " savepos <order>"},
		{"Save factory default settings to EEPROM", a + " savedefaults <order>"},
	} {
		fmt.Fprintf(p.out, "# %s\n%s\n\n", s.comment, s.cmd)
	}
}

// connect finds the daemon and reads the boards from its status, then
// makes the tool's checks of them (lines 523-550).
func (p *personality) connect(ctx context.Context) error {
	if p.socket != "" {
		p.client = api.NewClient(p.socket)
	} else {
		cfg, err := config.Load(p.configPath)
		if err != nil {
			return fmt.Errorf("headnode's configuration: %v", err)
		}
		p.client = api.NewClient(cfg.Control.Socket)
	}
	deadline := time.Now()
	if p.args[0] == "init" && len(p.args) == 1 {
		deadline = deadline.Add(p.initWait)
	}
	for {
		st, err := p.client.Status(ctx)
		if err == nil {
			p.st = st
			break
		}
		if !errors.Is(err, api.ErrDaemonNotRunning) {
			return err
		}
		if time.Now().After(deadline) {
			return exitf(1, "ERROR: the headnode daemon is not running; it drives the ClusterHAT/ClusterCTRL boards: start it with `sudo systemctl start headnode`")
		}
		time.Sleep(200 * time.Millisecond)
	}
	for i := range p.st.Power.Boards {
		b := p.st.Power.Boards[i]
		if b.State != "ok" {
			return fmt.Errorf("%s: %s %s", b.Model, b.State, b.Error)
		}
		switch b.Kind {
		case "clusterhat":
			p.hat = &b
		case "clusterctrl":
			p.ctrls = append(p.ctrls, b)
		}
		p.maxpi += b.Count
	}
	if p.hat == nil && len(p.ctrls) == 0 {
		return exitf(1, "ERROR: No ClusterHAT/CTRL devices found\n")
	}
	orders := map[int]bool{}
	dup := false
	for _, c := range p.ctrls {
		dup = dup || orders[c.Order]
		orders[c.Order] = true
	}
	if dup {
		msg := "ERROR: Duplicate ClusterCTRL 'order' found"
		bus := slices.Clone(p.ctrls)
		slices.SortFunc(bus, func(a, b api.PowerBoard) int { return a.Bus - b.Bus })
		for _, c := range bus {
			msg += fmt.Sprintf("\nI2C Bus: %d Order: %d", c.Bus, c.Order)
		}
		return exitf(1, "%s", msg)
	}
	slices.SortStableFunc(p.ctrls, func(a, b api.PowerBoard) int { return a.Order - b.Order })
	return nil
}

// dispatch is the tool's command chain (lines 583-1093).
func (p *personality) dispatch(ctx context.Context) error {
	a := p.args
	n := len(a) + 1 // the tool's len(sys.argv)
	on := func(i int) bool { return len(a) > i && (a[i] == "on" || a[i] == "off") }
	switch {
	case n == 2 && (a[0] == "on" || a[0] == "off"):
		return p.power(ctx, a[0], nil)
	case n > 2 && (a[0] == "on" || a[0] == "off"):
		nodes, err := p.devices(a[1:])
		if err != nil {
			return err
		}
		return p.power(ctx, a[0], nodes)
	case n > 2 && a[0] == "usbboot" && on(1):
		return p.usbboot(ctx, a[1], a[2:])
	case n == 2 && a[0] == "status":
		return p.status()
	case n == 3 && a[0] == "hub" && on(1):
		return p.hub(ctx, a[1])
	case n == 3 && a[0] == "hub" && a[1] == "reset":
		return p.hubReset(ctx)
	case n == 3 && a[0] == "alert" && on(1):
		return p.request(ctx, "alert", api.PowerRequest{State: a[1]})
	case n > 3 && a[0] == "alert" && on(1):
		nodes, err := p.devices(a[2:])
		if err != nil {
			return err
		}
		return p.request(ctx, "alert", api.PowerRequest{State: a[1], Nodes: names(nodes)})
	case n == 3 && a[0] == "led" && on(1):
		// The HAT's LED bit (v2 only) and every ClusterCTRL's LEDs.
		if (p.hat != nil && p.hat.Major == 2) || len(p.ctrls) > 0 {
			return p.request(ctx, "leds", api.PowerRequest{State: a[1]})
		}
		return nil
	case n == 3 && a[0] == "act" && on(1):
		if len(p.ctrls) == 0 {
			return nil
		}
		return p.lenient(p.request(ctx, "act", api.PowerRequest{State: a[1]}))
	case n == 4 && a[0] == "act" && on(1):
		o, err := pyInt(a[2])
		if err != nil {
			return err
		}
		if p.ctrlByOrder(o) == nil {
			return nil
		}
		return p.lenient(p.request(ctx, "act", api.PowerRequest{State: a[1], Target: strconv.Itoa(o)}))
	case n == 3 && a[0] == "wp" && on(1):
		return p.wp(ctx, a[1])
	case n > 1 && a[0] == "getpath":
		return p.getpath(ctx, a[1:])
	case n == 3 && a[0] == "savedefaults":
		return p.save(ctx, a[1], "defaults", true, "saved")
	case n == 4 && a[0] == "setorder":
		return p.setorder(ctx, a[1], a[2])
	case n == 3 && a[0] == "save":
		return p.save(ctx, a[1], "all", true, "saved")
	case n == 3 && a[0] == "saveorder":
		return p.save(ctx, a[1], "order", false, "saved")
	case n == 3 && a[0] == "saveusbboot":
		return p.save(ctx, a[1], "usbboot", false, "saved")
	case n == 3 && a[0] == "savepos":
		return p.save(ctx, a[1], "pos", false, "saved")
	case n == 3 && a[0] == "reset":
		return p.save(ctx, a[1], "", true, "reset")
	case n == 3 && a[0] == "fan" && on(1):
		return p.fan(ctx, a[1], "")
	case n == 4 && a[0] == "fan" && on(1):
		return p.fanOf(ctx, a[1], a[2])
	case n == 2 && a[0] == "maxpi":
		fmt.Fprintln(p.out, p.maxpi)
		return nil
	case n == 2 && a[0] == "init":
		// The boards were initialised as the daemon found them (the
		// tool's first-run block, lines 474-507); what is left is the
		// rpiboot links (lines 553-575).
		return p.links(ctx)
	}
	fmt.Fprintln(p.out, "Error: Missing arguments")
	return nil
}

// pyInt is Python's int() of an argument: a traceback (exit 1) when it is
// not a number.
func pyInt(s string) (int, error) {
	v, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, exitf(1, "ERROR: %q is not a number", s)
	}
	return v, nil
}

// devices checks pN tokens as the tool does (lines 650-654): each must be
// p1 to p<maxpi>, or nothing happens and it exits 1.
func (p *personality) devices(tokens []string) ([]int, error) {
	var out []int
	for _, t := range tokens {
		n, err := strconv.Atoi(strings.TrimPrefix(t, "p"))
		if !strings.HasPrefix(t, "p") || err != nil || n < 1 || n > p.maxpi {
			return nil, exitf(1, "ERROR: Valid options are p1-p%d", p.maxpi)
		}
		out = append(out, n)
	}
	return out, nil
}

func names(ns []int) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = nodename.Name(n)
	}
	return out
}

// request asks the daemon to do op.
func (p *personality) request(ctx context.Context, op string, req api.PowerRequest) error {
	return p.client.Do(ctx, http.MethodPost, "/v1/power/"+op, req, nil)
}

// lenient passes over a refusal: where the tool sends a command a board
// does not know, the firmware refuses it and the tool carries on.
func (p *personality) lenient(err error) error {
	var re *api.RequestError
	if errors.As(err, &re) && re.BadInput() {
		return nil
	}
	return err
}

// power is on/off of every node or of those listed. The tool returns when
// every node is switched, pausing CLUSTERCTRL_DELAY between power-ons
// (lines 583-710); the daemon staggers them by [power] stagger, and this
// waits until the last of them reads back on.
func (p *personality) power(ctx context.Context, op string, nodes []int) error {
	var out api.Changes
	if err := p.client.Do(ctx, http.MethodPost, "/v1/power/"+op, api.PowerRequest{Nodes: names(nodes)}, &out); err != nil {
		return err
	}
	if op == "off" {
		return nil
	}
	if len(nodes) == 0 {
		for n := 1; n <= p.maxpi; n++ {
			nodes = append(nodes, n)
		}
	}
	stagger, _ := time.ParseDuration(p.st.Power.Stagger)
	ctx, cancel := context.WithTimeout(ctx, time.Duration(len(nodes))*stagger+30*time.Second)
	defer cancel()
	var last *api.Status
	err := p.client.Watch(ctx, func(s *api.Status) bool {
		last = s
		return !allOn(s, nodes)
	})
	if last != nil && allOn(last, nodes) {
		return nil
	}
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("%s did not come on", strings.Join(names(nodes), " "))
	}
	return err
}

// allOn reports whether every one of nodes reads back on, or has given up
// (not queued and not on: the daemon logged why).
func allOn(s *api.Status, nodes []int) bool {
	for _, n := range nodes {
		name := nodename.Name(n)
		if slices.Contains(s.Power.Queued, name) {
			return false
		}
		for _, nd := range s.Power.Nodes {
			if nd.Name == name && (nd.Powered == nil || !*nd.Powered) {
				return false
			}
		}
	}
	return true
}

// usbboot is `usbboot on|off <devices>` (lines 711-736): ClusterCTRL nodes
// only; a HAT's nodes are passed over.
func (p *personality) usbboot(ctx context.Context, state string, tokens []string) error {
	nodes, err := p.devices(tokens)
	if err != nil {
		return err
	}
	var ctrlNodes []int
	for _, n := range nodes {
		if p.hat == nil || n > p.hat.Count {
			ctrlNodes = append(ctrlNodes, n)
		}
	}
	if len(ctrlNodes) == 0 {
		return nil
	}
	return p.lenient(p.request(ctx, "usbboot", api.PowerRequest{State: state, Nodes: names(ctrlNodes)}))
}

// hub is `hub on|off` (lines 838-852): the HAT's only.
func (p *personality) hub(ctx context.Context, state string) error {
	switch {
	case p.hat == nil:
		return nil
	case p.hat.Major == 1:
		fmt.Fprint(p.out, "ERROR: hub control not supported on Cluster HAT v1.x\n\n")
		return nil
	}
	return p.request(ctx, "hub", api.PowerRequest{State: state})
}

// hubReset is `hub reset` (lines 854-866): the HAT's (v2/v3) off and on,
// every ClusterCTRL's HUB_CYCLE.
func (p *personality) hubReset(ctx context.Context) error {
	if (p.hat != nil && p.hat.Major != 1) || len(p.ctrls) > 0 {
		return p.lenient(p.request(ctx, "hub", api.PowerRequest{State: "reset"}))
	}
	return nil
}

// wp is `wp on|off` (lines 954-963): a v2 HAT's only, and off not while the
// solder link is bridged.
func (p *personality) wp(ctx context.Context, state string) error {
	if p.hat == nil || p.hat.Major != 2 {
		return nil
	}
	if state == "off" && p.hat.Chip == "XRA1200P" && p.hat.WPLink != nil && *p.hat.WPLink != 0 {
		fmt.Fprintln(p.out, "Unable to disable EEPROM WP (Solder link set)")
		return nil
	}
	return p.request(ctx, "wp", api.PowerRequest{State: state})
}

func (p *personality) ctrlByOrder(o int) *api.PowerBoard {
	for i := range p.ctrls {
		if p.ctrls[i].Order == o {
			return &p.ctrls[i]
		}
	}
	return nil
}

// save is savedefaults, save, saveorder, saveusbboot, savepos and reset
// (lines 968-1051): an order out of range is "Invalid order", which ends
// the run (exit 1) for savedefaults, save and reset and not for the
// others; a board found prints what was done; none found says so (exit
// 0).
func (p *personality) save(ctx context.Context, arg, what string, strict bool, done string) error {
	o, err := pyInt(arg)
	if err != nil {
		return err
	}
	if o < 1 || o > 255 {
		if strict {
			return exitf(1, "Invalid order")
		}
		fmt.Fprintln(p.out, "Invalid order")
	}
	if p.ctrlByOrder(o) == nil {
		fmt.Fprintln(p.out, "Error: Unable to find Cluster CTRL device with that order")
		return nil
	}
	if what == "" {
		err = p.request(ctx, "restart", api.PowerRequest{Order: o})
	} else {
		err = p.request(ctx, "save", api.PowerRequest{Order: o, Save: what})
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(p.out, done)
	return nil
}

// setorder is `setorder <old> <new>` (lines 980-990).
func (p *personality) setorder(ctx context.Context, oldArg, newArg string) error {
	old, err := pyInt(oldArg)
	if err != nil {
		return err
	}
	if old < 1 || old > 255 {
		return exitf(1, "Invalid order old")
	}
	nw, err := pyInt(newArg)
	if err != nil {
		return err
	}
	if nw < 1 || nw > 255 {
		return exitf(1, "Invalid order new")
	}
	if p.ctrlByOrder(old) == nil {
		return nil
	}
	return p.request(ctx, "setorder", api.PowerRequest{Order: old, NewOrder: nw})
}

// fan is `fan on|off` (lines 1052-1067): the head node's fan and every
// ClusterCTRL's.
func (p *personality) fan(ctx context.Context, state, target string) error {
	if !p.headFan() && len(p.ctrls) == 0 {
		return nil
	}
	return p.lenient(p.request(ctx, "fan", api.PowerRequest{State: state, Target: target}))
}

// headFan reports whether the head node has a fan ([power] fan_gpio).
func (p *personality) headFan() bool {
	return p.st.Power.Head.Fan != nil || p.st.Power.Head.FanError != ""
}

// fanOf is `fan on|off <order|c>` (lines 1068-1085).
func (p *personality) fanOf(ctx context.Context, state, arg string) error {
	if arg == "c" {
		if p.headFan() {
			return p.request(ctx, "fan", api.PowerRequest{State: state, Target: "c"})
		}
		if len(p.ctrls) > 0 {
			// The tool then takes "c" for an order: int("c") fails.
			return exitf(1, "ERROR: the head node has no fan ([power] fan_gpio)")
		}
		return nil
	}
	o, err := pyInt(arg)
	if err != nil {
		return err
	}
	if o < 1 || o > 255 {
		fmt.Fprintln(p.out, "Invalid order")
	}
	if p.ctrlByOrder(o) == nil {
		return nil
	}
	return p.lenient(p.request(ctx, "fan", api.PowerRequest{State: state, Target: strconv.Itoa(o)}))
}

// paths asks the daemon for the USB paths of nodes (nil: all), keyed by
// the node's number as the tool keys them (a string).
func (p *personality) paths(ctx context.Context, nodes []int) (map[string]string, error) {
	var out api.PowerPaths
	if err := p.client.Do(ctx, http.MethodPost, "/v1/power/paths", api.PowerRequest{Nodes: names(nodes)}, &out); err != nil {
		return nil, err
	}
	byNumber := map[string]string{}
	for name, path := range out.Paths {
		if n, err := nodename.Parse(name); err == nil {
			byNumber[strconv.Itoa(n)] = path
		}
	}
	return byNumber, nil
}

// getpath is `getpath [<devices>]` (lines 964-967): "p<n>:<path>" lines,
// sorted as the tool sorts them, as strings (p10 before p2).
func (p *personality) getpath(ctx context.Context, tokens []string) error {
	nodes, err := p.devices(tokens)
	if err != nil {
		return err
	}
	paths, err := p.paths(ctx, nodes)
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(paths))
	for k := range paths {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(p.out, "p%s:%s\n", k, paths[k])
	}
	return nil
}

// links is init's rpiboot links (lines 553-575): with LINK=1 in
// /etc/default/clusterctrl, as root, and both rpiboot directories there,
// the links in nfsboot that point into nfsroot at a listed node's /boot go,
// and each node with a path gets nfsboot/<path> -> nfsroot/pN/boot/firmware/
// (or boot/ where there is no firmware directory).
func (p *personality) links(ctx context.Context) error {
	if p.readDefaults()["link"] != "1" || p.euid() != 0 || !isDir(p.nfsboot) || !isDir(p.nfsroot) {
		return nil
	}
	paths, err := p.paths(ctx, nil)
	if err != nil {
		return err
	}
	old, _ := filepath.Glob(p.nfsboot + "*-*")
	for _, link := range old {
		fi, err := os.Lstat(link)
		if err != nil || fi.Mode()&os.ModeSymlink == 0 {
			continue
		}
		target, err := filepath.EvalSymlinks(link)
		if err != nil {
			target = realPath(link)
		}
		if strings.HasPrefix(target, p.nfsroot) && strings.HasSuffix(target, "/boot") {
			// "p1" for .../nfs/p1/boot; the tool drops its first letter.
			node := strings.TrimSuffix(strings.TrimPrefix(target, p.nfsroot), "/boot")
			if _, ok := paths[node[min(1, len(node)):]]; ok {
				os.Remove(link)
			}
		}
	}
	keys := make([]string, 0, len(paths))
	for k := range paths {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		path := paths[k]
		if path == "" {
			continue
		}
		link := p.nfsboot + path
		if fi, err := os.Lstat(link); err == nil && fi.Mode()&os.ModeSymlink != 0 {
			os.Remove(link)
		}
		target := p.nfsroot + "p" + k + "/boot/"
		if isDir(p.nfsroot + "p" + k + "/boot/firmware") {
			target = p.nfsroot + "p" + k + "/boot/firmware/"
		}
		if err := os.Symlink(target, link); err != nil {
			return err
		}
	}
	return nil
}

// realPath is Python's os.path.realpath for a link whose target does not
// exist: the target, made absolute.
func realPath(link string) string {
	t, err := os.Readlink(link)
	if err != nil {
		return link
	}
	if !filepath.IsAbs(t) {
		t = filepath.Join(filepath.Dir(link), t)
	}
	return filepath.Clean(t)
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// readDefaults parses /etc/default/clusterctrl as the tool does (lines
// 104-112): lines not starting with # are split at the first =, the key
// stripped and lower-cased, the value cut at the first # and stripped of
// spaces, quotes, tabs and newlines.
func (p *personality) readDefaults() map[string]string {
	out := map[string]string{}
	f, err := os.Open(p.defaults)
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		v, _, _ = strings.Cut(v, "#")
		out[strings.ToLower(strings.TrimSpace(k))] = strings.Trim(v, " \"'\n\t")
	}
	return out
}

// status is the tool's `status` (lines 737-836): key:value lines in its
// order and formats, from the daemon's status.
func (p *personality) status() error {
	w := p.out
	pw := p.st.Power
	clusterhat := "False"
	if p.hat != nil {
		clusterhat = "1"
		if p.hat.Forced != "" {
			clusterhat = p.hat.Forced
		}
	}
	fmt.Fprintf(w, "clusterhat:%s\n", clusterhat)
	if len(p.ctrls) == 0 {
		fmt.Fprintln(w, "clusterctrl:False")
	} else {
		fmt.Fprintf(w, "clusterctrl:%d\n", len(p.ctrls))
	}
	fmt.Fprintf(w, "maxpi:%d\n", p.maxpi)
	rev := pw.Head.Revision
	if rev == "" {
		rev = "Unknown"
	}
	fmt.Fprintf(w, "pirevision:%s\n", rev)
	throttled := pw.Head.Throttled
	if throttled == "" {
		throttled = "NA"
	}
	fmt.Fprintf(w, "throttled:%s\n", throttled)
	if len(p.ctrls) > 0 {
		// Every entry is followed by a space: the tool's counter i is
		// never incremented (lines 752-757).
		s := ""
		for _, c := range p.ctrls {
			s += fmt.Sprintf("%d:%d:%d ", c.Order, c.Bus, c.Count)
		}
		fmt.Fprintf(w, "ctrl_bus:%s\n", s)
	}
	nodes := map[string]api.Node{}
	for _, n := range pw.Nodes {
		nodes[n.Name] = n
	}
	bit := func(name string) int {
		if n := nodes[name]; n.Powered != nil && *n.Powered {
			return 1
		}
		return 0
	}
	if h := p.hat; h != nil {
		fmt.Fprintf(w, "hat_version:%d.%d\n", h.Major, h.Minor)
		fmt.Fprintf(w, "hat_version_major:%d\n", h.Major)
		fmt.Fprintf(w, "hat_version_minor:%d\n", h.Minor)
		fmt.Fprintf(w, "hat_size:%d\n", h.Count)
		if h.Forced != "" {
			fmt.Fprintf(w, "hat_uuid:NA\nhat_vendor:NA\nhat_pid:NA\nhat_force:%s\n", h.Forced)
		} else {
			fmt.Fprintf(w, "hat_uuid:%s\nhat_vendor:%s\nhat_product_id:%s\n", h.UUID, h.Vendor, h.ProductID)
		}
		fmt.Fprintf(w, "is_pi5:%s\n", pyBool(pw.Head.Pi5))
		fmt.Fprintf(w, "hat_alert:%d\n", bit01(h.Alert))
		if h.Major != 1 {
			fmt.Fprintf(w, "hat_hub:%d\n", bit01(h.Hub))
			fmt.Fprintf(w, "hat_wp:%d\n", bit01(h.WP))
			if h.Major == 2 {
				fmt.Fprintf(w, "hat_led:%d\n", bit01(h.LEDs))
			}
			wl := 0
			if h.WPLink != nil {
				wl = *h.WPLink
			}
			fmt.Fprintf(w, "hat_wplink:%d\n", wl)
			fmt.Fprintf(w, "hat_xra1200p:%s\n", pyBool(h.Chip == "XRA1200P"))
		}
		for n := h.First; n < h.First+h.Count; n++ {
			fmt.Fprintf(w, "p%d:%d\n", n-h.First+1, bit(nodename.Name(n)))
		}
	}
	for _, c := range p.ctrls {
		info := ""
		for _, v := range c.Voltages {
			mv, _ := clusterctrl.Millivolts(board.ADC{Type: byte(v.Type), Raw: uint16(v.Raw)})
			info += fmt.Sprintf(" ADC%d:%dmV", v.ADC, int(mv))
		}
		if t := c.Temperature; t != nil {
			info += " T1:" + strconv.FormatFloat(clusterctrl.Celsius(uint16(t.Raw)), 'f', 2, 64) + "C"
		}
		if c.FirmwareMajor == 1 && c.FirmwareMinor == 6 && c.FanStatus != nil {
			info += fmt.Sprintf(" FAN:%08b", *c.FanStatus)
		}
		fmt.Fprintf(w, "ctrl%d:FW:%s %s\n", c.Order, pyFloatVersion(c.FirmwareMajor, c.FirmwareMinor), strings.TrimSpace(info))
		for n := c.First; n < c.First+c.Count; n++ {
			name := nodename.Name(n)
			fmt.Fprintf(w, "p%d:%d\n", n, bit(name))
			if u := nodes[name].USBBoot; u != nil {
				fmt.Fprintf(w, "u%d:%d\n", n, bit01(u))
			}
		}
	}
	return nil
}

// pyBool is Python's str of a bool.
func pyBool(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

func bit01(b *bool) int {
	if b != nil && *b {
		return 1
	}
	return 0
}

// pyFloatVersion is the tool's float(str(major)+'.'+str(minor)) printed
// (line 805): Python's shortest round-trip form, so 1.8 is "1.8", 1.10 is
// "1.1" and 2.0 is "2.0".
func pyFloatVersion(major, minor int) string {
	f, err := strconv.ParseFloat(fmt.Sprintf("%d.%d", major, minor), 64)
	if err != nil {
		return fmt.Sprintf("%d.%d", major, minor)
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}
