package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
	"github.com/headnode/headnode/display"
	"github.com/headnode/headnode/display/led"
	"github.com/headnode/headnode/hw/hidraw"
	"github.com/headnode/headnode/hw/trace"
)

// runLED: `headnode led identify|stopped|auto`. identify and auto go to
// the daemon. stopped does too when a daemon runs; otherwise (systemd's
// ExecStopPost, after the daemon exited or crashed) it finds the light
// itself and sets the stopped colour, since the stick would keep showing
// its last colour.
func runLED(ctx context.Context, env *Env) error {
	_, pos, err := flags(env.Args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("led needs one of identify, stopped, auto (or on, off for the boards' node LEDs)")
	}
	mode := pos[0]
	if mode == "on" || mode == "off" {
		// The official clusterctrl's word for the boards' node LEDs.
		return powerRequest(ctx, env, "leds", api.PowerRequest{State: mode})
	}
	switch mode {
	case display.ModeIdentify, display.ModeStopped, display.ModeAuto:
	default:
		return usagef("unknown LED mode %q: use identify, stopped or auto (or on, off for the boards' node LEDs)", mode)
	}
	c, err := env.client()
	if err != nil {
		return err
	}
	var out api.Changes
	err = c.Do(ctx, http.MethodPost, "/v1/led", api.LEDRequest{Mode: mode}, &out)
	if errors.Is(err, api.ErrDaemonNotRunning) && mode == display.ModeStopped {
		return ledStoppedWithoutDaemon(env)
	}
	if err != nil {
		return err
	}
	for _, ch := range out.Changes {
		fmt.Fprintln(env.Stdout, ch)
	}
	return nil
}

func ledStoppedWithoutDaemon(env *Env) error {
	cfg, err := env.loadConfig()
	if err != nil {
		return err
	}
	switch {
	case !cfg.LED.Enabled:
		fmt.Fprintln(env.Stdout, "the status LED is turned off in the configuration; nothing to do")
		return nil
	case cfg.Hardware.Backend == "sim":
		fmt.Fprintln(env.Stdout, "backend = \"sim\": the emulated LED went away with the daemon; nothing to do")
		return nil
	}
	f := &led.Finder{Serial: cfg.LED.Serial}
	if p := cfg.Hardware.HIDTrace; p != "" {
		if log, err := trace.Open(p); err == nil {
			defer log.Close()
			f.Wrap = func(dev led.FeatureDevice, info hidraw.Info) led.FeatureDevice {
				return &hidraw.Traced{Feature: dev, Serial: info.Serial, Log: log}
			}
		}
	}
	dev, err := f.Find()
	if err != nil {
		return err
	}
	defer dev.Close()
	stopped := display.Legend{Brightness: cfg.LED.Brightness}.Stopped()
	if err := dev.Show([]led.RGB{stopped.Steps[0].Color}); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "status LED %s %s: stopped (no daemon running)\n", dev.Kind(), dev.Serial())
	return nil
}

// lcdLine and ledLine are the LCD and LED lines of `headnode status`.
func lcdLine(l api.LCD) string {
	switch l.State {
	case api.DeviceOK:
		s := fmt.Sprintf("%s %s at %s on i2c-%d (%s, %s)", l.Size, l.Charset, l.Address, l.Bus, l.Chip, l.PinMap)
		if l.Emulated {
			s += ", emulated"
		}
		return s
	case api.DeviceMissing:
		return "missing: " + l.Error
	}
	return l.State
}

func ledLine(l api.LED) string {
	switch l.State {
	case api.DeviceOK:
		s := fmt.Sprintf("%s %s, %s", l.Kind, l.Serial, l.Pattern)
		if l.Mode != display.ModeAuto {
			s += " (" + l.Mode + ")"
		}
		if l.Emulated {
			s += ", emulated"
		}
		return s
	case api.DeviceMissing:
		return "missing: " + l.Error
	}
	return l.State
}
