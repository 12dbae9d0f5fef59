// Package cli is headnode's command line: argument parsing, dispatch to the
// daemon (over the control socket) or to local operations, and exit codes.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"syscall"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
	"github.com/headnode/headnode/cmd/headnode/internal/config"
)

// Exit codes, as documented in the README.
const (
	ExitOK          = 0
	ExitFailed      = 1 // the operation failed
	ExitUsage       = 2 // bad usage or bad input; nothing changed
	ExitNoDaemon    = 3 // the daemon is not reachable
	exitInterrupted = 130
)

const usage = `usage: headnode <command> [arguments]

  daemon  [--config FILE]            run the daemon (systemd ExecStart)
  sim     [flags]                    the whole daemon on emulated hardware
  status  [pN] [--json]              nodes, uplink, NAT, LCD, LED, board
  on      [pN ...]                   power nodes on (all when none named), staggered
  off     [pN ...]                   power nodes off (all when none named)
  alert   on|off [pN ...]            the board's alert LED (of the named nodes' boards)
  hub     on|off|reset               the board's USB hub
  leds    on|off                     the board's own node LEDs (also: led on|off)
  led     identify|stopped|auto      the status LED
  wp      on|off                     the ClusterHAT EEPROM's write protection
  fan     on|off [c|ORDER]           fans: the head node's (c) and the ClusterCTRL boards'
  act     on|off [ORDER]             the ClusterCTRL A+6's activity LED
  usbboot on|off pN ...              ClusterCTRL USBBOOT: boot these nodes from USB
  getpath [pN ...]                   the nodes' USB paths
  setorder OLD NEW                   renumber a ClusterCTRL board (until saved)
  save    ORDER [all|order|usbboot|pos|leds|defaults]
                                     save a ClusterCTRL board's settings to its EEPROM
  reset   ORDER                      restart a ClusterCTRL board's controller
  console pN [--log|--follow]        the node's serial console (Ctrl-] detaches)
  nat     status|apply|clear [--json]
  config  check [--config FILE] | default
  snmp    [--url URL]                snmpd pass_persist for HEADNODE-MIB
  version

Global flags (before or after the command):
  --config FILE    configuration file (default ` + config.DefaultPath + `)
  --socket PATH    control socket (default: [control] socket from the config)

Exit codes: 0 ok, 1 failed, 2 bad usage or input (nothing changed),
3 daemon not reachable.
`

// Env is what a command runs with.
type Env struct {
	Version string
	Stdout  io.Writer
	Stderr  io.Writer
	// Args are the command's arguments after global flags were removed.
	Args []string
	// ConfigPath is --config, or the default path.
	ConfigPath string
	// ConfigGiven is true when --config was given explicitly.
	ConfigGiven bool
	// Socket is --socket, or "" to use the config's.
	Socket string
}

// usageError is bad usage or bad input: exit 2, nothing changed.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

type command func(ctx context.Context, env *Env) error

// commandSpec is one of headnode's commands: what it does and its help,
// which `headnode CMD --help`, `-h` and `headnode help CMD` print.
type commandSpec struct {
	run   command
	usage func() string
}

// commandNames is every command, in the order the usage lists them.
var commandNames = []string{"daemon", "sim", "status", "on", "off", "alert", "hub", "leds", "led", "wp", "fan", "act", "usbboot", "getpath", "setorder", "save", "reset", "console", "nat", "config", "snmp", "version"}

var commands map[string]commandSpec

func init() {
	commands = map[string]commandSpec{
		"daemon":   {runDaemon, text(daemonUsage)},
		"sim":      {runSim, simUsage},
		"status":   {runStatus, text(statusUsage)},
		"on":       {runOn, text(onUsage)},
		"off":      {runOff, text(offUsage)},
		"alert":    {runAlert, text(alertUsage)},
		"hub":      {runHub, text(hubUsage)},
		"leds":     {runLEDs, text(ledsUsage)},
		"led":      {runLED, text(ledUsage)},
		"wp":       {runWP, text(wpUsage)},
		"fan":      {runFan, text(fanUsage)},
		"act":      {runACT, text(actUsage)},
		"usbboot":  {runUSBBoot, text(usbbootUsage)},
		"getpath":  {runGetPath, text(getpathUsage)},
		"setorder": {runSetOrder, text(setorderUsage)},
		"save":     {runSave, text(saveUsage)},
		"reset":    {runReset, text(resetUsage)},
		"console":  {runConsole, text(consoleUsage)},
		"nat":      {runNAT, text(natUsage)},
		"config":   {runConfig, text(configUsage)},
		"snmp":     {runSNMP, text(snmpUsage)},
		"version":  {runVersion, text(versionUsage)},
	}
}

func text(s string) func() string { return func() string { return s } }

// isHelp reports whether a is a request for help, as the flag package
// understands it.
func isHelp(a string) bool {
	switch a {
	case "-h", "--h", "-help", "--help":
		return true
	}
	return false
}

// Main runs the command line and returns the exit code.
func Main(args []string, version string, stdout, stderr io.Writer) int {
	// Hidden commands for the package: the manual, the completion script
	// and its candidates (before the global flags are taken, as the words
	// being completed may be an unfinished --config).
	if len(args) > 0 {
		switch args[0] {
		case "__man":
			fmt.Fprint(stdout, manPage(version))
			return ExitOK
		case "__bash-completion":
			fmt.Fprint(stdout, bashCompletion)
			return ExitOK
		case "__complete":
			return runComplete(args[1:], stdout)
		}
	}
	env := &Env{Version: version, Stdout: stdout, Stderr: stderr, ConfigPath: config.DefaultPath}
	rest, err := env.takeGlobalFlags(args)
	if err != nil {
		fmt.Fprintf(stderr, "headnode: %v\n", err)
		return ExitUsage
	}
	if len(rest) == 0 {
		fmt.Fprint(stderr, usage)
		return ExitUsage
	}
	name := rest[0]
	help := false
	switch {
	case name == "help" && len(rest) > 1:
		name, help = rest[1], true
	case name == "help", isHelp(name):
		fmt.Fprint(stdout, usage)
		return ExitOK
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "headnode: unknown command %q: valid commands are %s\n", name, strings.Join(commandNames, ", "))
		return ExitUsage
	}
	env.Args = rest[1:]
	// Help anywhere among the arguments ("headnode nat apply --help")
	// prints the command's usage and does nothing else.
	if help || slices.ContainsFunc(env.Args, isHelp) {
		fmt.Fprint(stdout, cmd.usage())
		return ExitOK
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if name == "daemon" || name == "sim" {
		// These handle signals themselves (SIGHUP reloads, SIGTERM stops).
		stop()
		ctx = context.Background()
	}
	return exitCode(stderr, cmd.run(ctx, env))
}

// exitCode prints err as one line (per problem) and maps it to an exit code.
func exitCode(stderr io.Writer, err error) int {
	if err == nil {
		return ExitOK
	}
	var ue *usageError
	var ce *config.Error
	var re *api.RequestError
	code := ExitFailed
	switch {
	case errors.As(err, &ce):
		for _, p := range ce.Problems() {
			fmt.Fprintf(stderr, "headnode: %s\n", p)
		}
		return ExitUsage
	case errors.As(err, &ue):
		code = ExitUsage
	case errors.Is(err, api.ErrDaemonNotRunning):
		code = ExitNoDaemon
	case errors.As(err, &re) && re.BadInput():
		code = ExitUsage
	case errors.Is(err, context.Canceled):
		code = exitInterrupted
	}
	fmt.Fprintf(stderr, "headnode: %v\n", err)
	return code
}

// takeGlobalFlags removes --config and --socket wherever they appear.
func (env *Env) takeGlobalFlags(args []string) ([]string, error) {
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || (name != "config" && name != "socket") {
			rest = append(rest, a)
			continue
		}
		if !hasValue {
			if i+1 >= len(args) {
				return nil, usagef("flag --%s needs a value", name)
			}
			i++
			value = args[i]
		}
		if value == "" {
			return nil, usagef("flag --%s needs a non-empty value", name)
		}
		switch name {
		case "config":
			env.ConfigPath, env.ConfigGiven = value, true
		case "socket":
			env.Socket = value
		}
	}
	return rest, nil
}

// flags splits a command's arguments into boolean flags it knows and
// positional arguments; an unknown flag is a usage error.
func flags(args []string, known ...string) (set map[string]bool, pos []string, err error) {
	set = map[string]bool{}
	for _, a := range args {
		if !strings.HasPrefix(a, "-") || a == "-" {
			pos = append(pos, a)
			continue
		}
		name := strings.TrimLeft(a, "-")
		ok := false
		for _, k := range known {
			if name == k {
				ok = true
			}
		}
		if !ok {
			if len(known) == 0 {
				return nil, nil, usagef("unknown flag %q: this command takes no flags", a)
			}
			return nil, nil, usagef("unknown flag %q: valid flags here are --%s", a, strings.Join(known, ", --"))
		}
		set[name] = true
	}
	return set, pos, nil
}

// loadConfig loads the configuration named on the command line.
func (env *Env) loadConfig() (*config.Config, error) {
	return config.Load(env.ConfigPath)
}

// client returns a control-socket client, taking the socket from --socket
// or the configuration.
func (env *Env) client() (*api.Client, error) {
	if env.Socket != "" {
		return api.NewClient(env.Socket), nil
	}
	cfg, err := env.loadConfig()
	if err != nil {
		return nil, err
	}
	return api.NewClient(cfg.Control.Socket), nil
}

func runVersion(ctx context.Context, env *Env) error {
	if _, _, err := flags(env.Args); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "headnode %s (%s, %s/%s)\n", env.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
