package cli

import (
	"context"
	"flag"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/headnode/headnode/cmd/headnode/internal/sim"
)

func runSim(ctx context.Context, env *Env) error {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	nodes := fs.Int("nodes", 4, "cluster nodes p1..pN")
	duration := fs.Duration("duration", 0, "stop after this long (0: until Ctrl-C)")
	if err := fs.Parse(env.Args); err != nil {
		return usagef("sim: %v; flags are --nodes N (1-32) and --duration D (e.g. 30s)", err)
	}
	if fs.NArg() > 0 {
		return usagef("sim takes no arguments, got %q", fs.Arg(0))
	}
	if *nodes < 1 || *nodes > 32 {
		return usagef("--nodes %d is out of range: use 1-32", *nodes)
	}
	self, err := sim.Self()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	return sim.Run(ctx, sim.Options{Nodes: *nodes, Duration: *duration, Out: env.Stdout, Binary: self})
}
