package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/headnode/headnode/cmd/headnode/internal/config"
	"github.com/headnode/headnode/cmd/headnode/internal/sim"
)

// simFlags are sim's flags; their defaults are the [hardware.sim] keys'.
type simFlags struct {
	fs                                 *flag.FlagSet
	board, revision, ctrl, lcd, pinmap *string
	led, listen, name, pi, topology    *string
	wpLink                             *bool
	duration, boot                     *time.Duration
}

func newSimFlags() *simFlags {
	def := config.Default().Hardware.Sim
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return &simFlags{
		fs:       fs,
		board:    fs.String("board", def.Board, "power board: clusterhat, clusterctrl, clusterhat+clusterctrl or none"),
		revision: fs.String("revision", def.Revision, "ClusterHAT revision (1.x is the GPIO board)"),
		ctrl:     fs.String("ctrl", strings.Join(def.CTRL, ","), "ClusterCTRL boards, comma-separated: single, phat, triple, a+6, stack"),
		lcd:      fs.String("lcd", def.LCDSize, "LCD size: 16x2, 20x2, 16x4 or 20x4"),
		pinmap:   fs.String("pinmap", def.LCDPinMap, "the LCD backpack's pin map"),
		led:      fs.String("led", def.LED, "BlinkStick kind"),
		wpLink:   fs.Bool("wp-link", def.WPLink, "the ClusterHAT's write-protect solder link is bridged"),
		pi:       fs.String("pi", def.Pi, "the head node: 4 (a Pi 4 Model B) or 5"),
		duration: fs.Duration("duration", 0, "stop after this long (0: at Ctrl-C)"),
		listen:   fs.String("listen", "127.0.0.1:9180", "address of the status page"),
		name:     fs.String("name", "hnsim", "prefix of the network namespaces (1-8 letters or digits)"),
		boot:     fs.Duration("boot", 3*time.Second, "how long a node takes from power-on to its network link"),
		topology: fs.String("topology", "two-port", "the network around the head: "+strings.Join(sim.Topologies, ", ")),
	}
}

// simUsage is sim's help, its flags listed with their defaults.
func simUsage() string {
	var b strings.Builder
	b.WriteString(`usage: headnode sim [flags]

Runs the whole daemon on emulated hardware, with the LCD, the LED and the
node table live in the terminal and the status page on --listen. As root it
also builds a sandbox of network namespaces (the uplink, the head node and
one per node) with DHCP and NAT for real; without root it says what it
leaves out. Ctrl-C stops it and removes everything it made.

Flags:
`)
	newSimFlags().fs.VisitAll(func(f *flag.Flag) {
		fmt.Fprintf(&b, "  --%-10s %s (default %q)\n", f.Name, f.Usage, f.DefValue)
	})
	return b.String()
}

func runSim(ctx context.Context, env *Env) error {
	f := newSimFlags()
	if err := f.fs.Parse(env.Args); err != nil {
		return usagef("sim: %v; flags are --board, --revision, --ctrl, --lcd, --pinmap, --led, --wp-link, --pi (the [hardware.sim] keys), --duration, --listen, --boot, --name and --topology", err)
	}
	if f.fs.NArg() > 0 {
		return usagef("sim takes no arguments, got %q", f.fs.Arg(0))
	}
	if *f.duration < 0 || *f.boot < 0 {
		return usagef("--duration and --boot must not be negative")
	}
	if !slices.Contains(sim.Topologies, *f.topology) {
		return usagef("--topology %q: use one of %s", *f.topology, strings.Join(sim.Topologies, ", "))
	}
	if !validSimName(*f.name) {
		return usagef("--name %q: use 1-8 letters or digits (it prefixes the network namespaces)", *f.name)
	}
	var ctrls []string
	for _, c := range strings.Split(*f.ctrl, ",") {
		if c = strings.TrimSpace(c); c != "" {
			ctrls = append(ctrls, c)
		}
	}
	self, err := sim.Self()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	return sim.Run(ctx, sim.Options{
		Board: *f.board, Revision: *f.revision, CTRL: ctrls, LCDSize: *f.lcd, PinMap: *f.pinmap, LED: *f.led, WPLink: *f.wpLink, Pi: *f.pi,
		Duration: *f.duration, Listen: *f.listen, Name: *f.name, BootDelay: *f.boot, Topology: *f.topology,
		Out: env.Stdout, Binary: self,
	})
}

func validSimName(s string) bool {
	if len(s) < 1 || len(s) > 8 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}
