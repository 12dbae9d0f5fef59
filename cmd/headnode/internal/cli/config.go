package cli

import (
	"context"
	"fmt"

	"github.com/headnode/headnode/cmd/headnode/internal/config"
)

func runConfig(ctx context.Context, env *Env) error {
	_, pos, err := flags(env.Args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("config needs one of: check, default")
	}
	switch pos[0] {
	case "check":
		cfg, err := env.loadConfig()
		if err != nil {
			return err
		}
		if cfg.Path == "" {
			fmt.Fprintf(env.Stdout, "no file at %s: using built-in defaults (`headnode config default` prints them)\n", env.ConfigPath)
			return nil
		}
		fmt.Fprintf(env.Stdout, "%s: ok\n", cfg.Path)
		return nil
	case "default":
		_, err := env.Stdout.Write(config.DefaultText())
		return err
	default:
		return usagef("unknown config subcommand %q: use check or default", pos[0])
	}
}
