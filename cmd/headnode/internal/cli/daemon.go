package cli

import (
	"context"

	"github.com/headnode/headnode/cmd/headnode/internal/daemon"
)

func runDaemon(ctx context.Context, env *Env) error {
	if _, pos, err := flags(env.Args); err != nil {
		return err
	} else if len(pos) > 0 {
		return usagef("daemon takes no arguments, got %q", pos[0])
	}
	return daemon.Run(ctx, daemon.Options{ConfigPath: env.ConfigPath, Version: env.Version})
}
