// Package sim runs the whole daemon on emulated hardware and shows what a
// user of the real thing would see: the LCD, the status LED and the node
// table, live in the terminal, and the status page in a browser.
//
// Run as root it also builds a sandbox of network namespaces: the user's
// network, the head node, and one namespace per cluster node whose network
// link follows the node's emulated power, the way a ClusterHAT's Pi Zero
// appears as a USB network interface only once it has booted. So `headnode
// off p2` really takes p2 off the network, and the status, LCD and LED
// react. Without root it says what it leaves out and runs the rest.
package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
	"github.com/headnode/headnode/cmd/headnode/internal/guard"
	"github.com/headnode/headnode/cmd/headnode/internal/web"
	"github.com/headnode/headnode/netcfg/sandbox"
)

// Options configures a simulation. The machine keys are those of the
// configuration's [hardware.sim] table.
type Options struct {
	Board    string // clusterhat | clusterctrl | clusterhat+clusterctrl | none
	Revision string // ClusterHAT revision, e.g. "2.5"
	CTRL     []string
	LCDSize  string
	PinMap   string
	LED      string
	WPLink   bool   // the ClusterHAT's WP solder link bridged
	Pi       string // "4" or "5"

	Duration time.Duration // 0: until interrupted
	// Listen is where the status page is served on this machine.
	Listen string
	// Name prefixes the network namespaces (several sims can run).
	Name string
	// BootDelay is how long an emulated node takes from power-on to its
	// network link appearing.
	BootDelay time.Duration
	// Topology is the network around the head (Topologies); "" is
	// "two-port".
	Topology string

	Out io.Writer
	// Binary is the headnode executable to run as the daemon.
	Binary string
}

// Run runs the simulation until ctx ends or the duration passes, and
// removes everything it created on the way out.
func Run(ctx context.Context, o Options) error {
	if o.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Duration)
		defer cancel()
	}
	dir, err := os.MkdirTemp("", "headnode-sim")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	root := sandbox.Check() == nil
	var sb *sandboxNet
	if root {
		if sb, err = buildSandbox(o.Name, dir, o.Topology); err != nil {
			return err
		}
		defer sb.close()
		go sb.runTopology(ctx)
	} else {
		fmt.Fprintf(o.Out, "headnode sim: %v, so there is no network sandbox: NAT, DHCP and the nodes' network are left out\n", sandbox.Check())
		fmt.Fprintf(o.Out, "  and the emulated nodes count as up while powered. Run it with sudo for everything.\n\n")
	}

	cfg, sock, err := writeConfig(dir, o, sb)
	if err != nil {
		return err
	}
	if sb != nil {
		if err := sb.startConsoles(cfg); err != nil {
			return err
		}
	}
	daemon, logPath, err := startDaemon(dir, o.Binary, cfg, sb)
	if err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- daemon.Wait() }()
	defer func() {
		daemon.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			daemon.Process.Kill()
		}
	}()

	client := api.NewClient(sock)
	var latest atomic.Pointer[api.Status]
	latest.Store(&api.Status{Health: api.Health{State: api.HealthStarting}})
	changed := make(chan struct{}, 1)
	go follow(ctx, client, &latest, changed)

	page, err := servePage(o.Listen, func() *api.Status { return latest.Load() })
	if err != nil {
		fmt.Fprintf(o.Out, "headnode sim: no status page on %s: %v\n", o.Listen, err)
	} else {
		defer page.Close()
	}

	v := &view{out: o.Out, tty: isTerminal(o.Out), socket: sock, log: logPath, self: o.Binary}
	if page != nil {
		v.page = "http://" + page.Addr().String() + "/"
	}
	if sb != nil {
		v.sandbox = sb.prefix
		v.topo = sb.topo
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		s := latest.Load()
		var nodes []nodeView
		if sb != nil {
			nodes = sb.follow(ctx, s, o.BootDelay)
		}
		v.draw(s, nodes)
		select {
		case <-ctx.Done():
			v.bye()
			return nil
		case err := <-exited:
			b, _ := os.ReadFile(logPath)
			return fmt.Errorf("the daemon exited (%v); its log:\n%s", err, b)
		case <-changed:
		case <-tick.C:
		}
	}
}

// writeConfig writes the daemon's configuration for the simulated machine.
func writeConfig(dir string, o Options, sb *sandboxNet) (path, socket string, err error) {
	socket = filepath.Join(dir, "control.sock")
	ctrl := make([]string, len(o.CTRL))
	for i, c := range o.CTRL {
		ctrl[i] = fmt.Sprintf("%q", c)
	}
	var network string
	if sb != nil {
		network = networkConfig(o.Topology) + `
[power]
# Quick enough to watch: nodes answer within seconds of power-on.
stagger = "1s"
probe_interval = "500ms"
boot_grace = "15s"
down_after = "2s"

[http]
listen = ["127.0.0.1:9180"]
`
	} else {
		uplink := defaultRouteInterface()
		network = fmt.Sprintf(`[network]
# No sandbox: follow this machine's own uplink, touch nothing.
cluster_interface = "lo"
cluster_address = ""
uplink_interface = %q
nat = false

[dhcp]
enabled = false

[power]
probe = "none"
stagger = "1s"

[http]
listen = []
`, uplink)
	}
	text := fmt.Sprintf(`# written by headnode sim
%s
[control]
socket = %q
# The simulator's socket is for whoever started it.
group = ""

[daemon]
state_dir = %q

[hardware]
backend = "sim"
i2c_trace = %q
hid_trace = %q

[hardware.sim]
board = %q
revision = %q
ctrl = [%s]
lcd_size = %q
lcd_pinmap = %q
led = %q
wp_link = %v
pi = %q

[lcd]
size = %q
`, network, socket, filepath.Join(dir, "state"), filepath.Join(dir, "i2c.jsonl"), filepath.Join(dir, "hid.jsonl"),
		o.Board, o.Revision, strings.Join(ctrl, ", "), o.LCDSize, o.PinMap, o.LED, o.WPLink, o.Pi, o.LCDSize)
	path = filepath.Join(dir, "config.toml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		return "", "", err
	}
	// Check it the way the daemon will, so a bad flag is one clear line.
	out, err := exec.Command(o.Binary, "config", "check", "--config", path).CombinedOutput()
	if err != nil {
		return "", "", errors.New(strings.TrimSpace(strings.ReplaceAll(string(out), path+":", "sim flags:")))
	}
	return path, socket, nil
}

// startDaemon runs `headnode daemon`, inside the head namespace when there
// is a sandbox. Its log goes to a file the view points at.
func startDaemon(dir, binary, cfg string, sb *sandboxNet) (*exec.Cmd, string, error) {
	logPath := filepath.Join(dir, "daemon.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, "", err
	}
	var cmd *exec.Cmd
	if sb != nil {
		cmd = sb.head.Command(binary, "daemon", "--config", cfg)
	} else {
		cmd = exec.Command(binary, "daemon", "--config", cfg)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, "", err
	}
	logf.Close() // the child holds its own descriptor
	return cmd, logPath, nil
}

// follow keeps latest up to date from the daemon's status stream, and
// reconnects while the daemon starts or restarts.
func follow(ctx context.Context, c *api.Client, latest *atomic.Pointer[api.Status], changed chan<- struct{}) {
	for ctx.Err() == nil {
		c.Watch(ctx, func(s *api.Status) bool {
			latest.Store(s)
			select {
			case changed <- struct{}{}:
			default:
			}
			return true
		})
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// servePage serves the daemon's read-only status page on this machine
// (the daemon's own listener is inside the sandbox).
func servePage(addr string, current func() *api.Status) (net.Listener, error) {
	if addr == "" {
		return nil, errors.New("turned off")
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	// The daemon's status page limits, for a browser on this machine.
	hosts := guard.NewHosts(guard.LocalNames(nil), "the page answers to this machine's addresses, localhost and its host name")
	gl, srv := guard.StatusPage.Server(l, hosts.Wrap(guard.NewRate(guard.StatusPageRate).Wrap(web.Handler(current))))
	go srv.Serve(gl)
	return l, nil
}

// defaultRouteInterface names the interface of this machine's default
// route (the uplink the LCD shows without a sandbox), or "eth0".
func defaultRouteInterface() string {
	b, err := os.ReadFile("/proc/net/route")
	if err != nil {
		return "eth0"
	}
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 2 && f[1] == "00000000" {
			return f[0]
		}
	}
	return "eth0"
}

// Self returns the path of the running executable, to start the daemon.
func Self() (string, error) {
	p, err := os.Executable()
	if err != nil {
		return "", err
	}
	return filepath.EvalSymlinks(p)
}
