package cli

import (
	"context"
	"flag"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/headnode/headnode/cmd/headnode/internal/config"
	"github.com/headnode/headnode/cmd/headnode/internal/sim"
)

func runSim(ctx context.Context, env *Env) error {
	def := config.Default().Hardware.Sim
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	board := fs.String("board", def.Board, "")
	revision := fs.String("revision", def.Revision, "")
	ctrl := fs.String("ctrl", strings.Join(def.CTRL, ","), "")
	lcd := fs.String("lcd", def.LCDSize, "")
	pinmap := fs.String("pinmap", def.LCDPinMap, "")
	led := fs.String("led", def.LED, "")
	duration := fs.Duration("duration", 0, "")
	listen := fs.String("listen", "127.0.0.1:9180", "")
	name := fs.String("name", "hnsim", "")
	boot := fs.Duration("boot", 3*time.Second, "")
	if err := fs.Parse(env.Args); err != nil {
		return usagef("sim: %v; flags are --board, --revision, --ctrl, --lcd, --pinmap, --led (the [hardware.sim] keys), --duration, --listen, --boot and --name", err)
	}
	if fs.NArg() > 0 {
		return usagef("sim takes no arguments, got %q", fs.Arg(0))
	}
	if *duration < 0 || *boot < 0 {
		return usagef("--duration and --boot must not be negative")
	}
	if !validSimName(*name) {
		return usagef("--name %q: use 1-8 letters or digits (it prefixes the network namespaces)", *name)
	}
	var ctrls []string
	for _, c := range strings.Split(*ctrl, ",") {
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
		Board: *board, Revision: *revision, CTRL: ctrls, LCDSize: *lcd, PinMap: *pinmap, LED: *led,
		Duration: *duration, Listen: *listen, Name: *name, BootDelay: *boot,
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
