// Package config reads and checks headnode's TOML configuration.
//
// Decoding is strict: an unknown key is an error, and every error names the
// key, the line it is on and what would be valid, because the person reading
// the message is typically on a Pi console with nano open in another window.
package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
)

// DefaultPath is where the daemon and the CLI look when --config is not given.
const DefaultPath = "/etc/headnode/config.toml"

// Config is the whole configuration file.
type Config struct {
	Network  Network  `toml:"network"`
	Power    Power    `toml:"power"`
	Nodes    []Node   `toml:"nodes"`
	LCD      LCD      `toml:"lcd"`
	LED      LED      `toml:"led"`
	Control  Control  `toml:"control"`
	HTTP     HTTP     `toml:"http"`
	Hardware Hardware `toml:"hardware"`
	Daemon   Daemon   `toml:"daemon"`
	DHCP     DHCP     `toml:"dhcp"`
	DNS      DNS      `toml:"dns"`
	Bridge   Bridge   `toml:"bridge"`
	Subnet   Subnet   `toml:"subnet"`
	Console  Console  `toml:"console"`
	// Prometheus and Notify are the monitoring sections (monitor.go).
	Prometheus Prometheus `toml:"prometheus"`
	Notify     Notify     `toml:"notify"`

	// Path is the file this configuration came from; empty for built-in
	// defaults.
	Path string `toml:"-"`
}

// Duration is a time.Duration written as a Go duration string ("1s").
type Duration struct {
	time.Duration
	// invalid holds text that is not a duration. Decoding does not fail
	// on it, so that validation can report it together with every other
	// problem in the file, each with its line.
	invalid string
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		d.invalid = string(b)
		return nil
	}
	d.Duration, d.invalid = v, ""
	return nil
}

// check returns the problem with d, or "".
func (d Duration) check(min, max time.Duration) string {
	if d.invalid != "" {
		return fmt.Sprintf("%q is not a duration; write it like \"1s\" or \"500ms\"", d.invalid)
	}
	if d.Duration < min || d.Duration > max {
		return fmt.Sprintf("%s is out of range; use %s to %s", d.Duration, min, max)
	}
	return ""
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Default returns the built-in configuration, used when the default file is
// absent. It is also what `headnode config default` prints.
func Default() *Config {
	return &Config{
		Network: Network{
			ClusterInterface: "auto",
			ClusterAddress:   AutoAddress,
			UplinkInterface:  "auto",
			Firewall:         "auto",
			IPTables:         "auto",
			NAT:              true,
		},
		Power:    defaultPower(),
		LCD:      defaultLCD(),
		LED:      defaultLED(),
		Control:  Control{Socket: "/run/headnode/control.sock", Group: "headnode"},
		HTTP:     HTTP{Listen: []string{"127.0.0.1:9180", ClusterListenHost + ":9180"}, Hosts: []string{}},
		Hardware: Hardware{Backend: "auto", Sim: defaultHardwareSim()},
		Daemon:   Daemon{StateDir: "/var/lib/headnode"},
		DHCP:     defaultDHCP(),
		DNS:      defaultDNS(),
		Bridge:   defaultBridge(),
		Subnet:   defaultSubnet(),
		Console:  defaultConsole(),

		Prometheus: defaultPrometheus(),
		Notify:     defaultNotify(),
	}
}

// Load reads path. When path is DefaultPath and the file does not exist, it
// returns the built-in defaults: a fresh install works without a file. Any
// other missing file is an error, since the user named it explicitly.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && path == DefaultPath {
			return Default(), nil
		}
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(data, path)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Parse decodes and validates a configuration document. Keys that are not
// set keep their defaults. name is used in error messages.
func Parse(data []byte, name string) (*Config, error) {
	c := Default()
	// [http] listen and [[nodes]] are lists: a value in the file replaces
	// the default list instead of appending to it.
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	if err := dec.Decode(c); err != nil {
		return nil, decodeError(name, err)
	}
	c.Path = name
	if err := c.validate(); err != nil {
		var verrs validationErrors
		errors.As(err, &verrs)
		lines := keyLines(data)
		return nil, verrs.located(name, lines)
	}
	return c, nil
}

// decodeError turns go-toml's errors into one line per problem:
// "file:line: key: message".
func decodeError(name string, err error) error {
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) {
		var errs []error
		for _, e := range strict.Errors {
			row, _ := e.Position()
			key := strings.Join(e.Key(), ".")
			errs = append(errs, fmt.Errorf("%s:%d: unknown key %q; valid keys are listed by `headnode config default`", name, row, key))
		}
		return &Error{errs: errs}
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, _ := de.Position()
		msg := friendlyTypeError(strings.TrimPrefix(de.Error(), "toml: "))
		if k := strings.Join(de.Key(), "."); k != "" {
			return &Error{errs: []error{fmt.Errorf("%s:%d: %s: %s", name, row, k, msg)}}
		}
		return &Error{errs: []error{fmt.Errorf("%s:%d: %s", name, row, msg)}}
	}
	return &Error{errs: []error{fmt.Errorf("%s: %v", name, err)}}
}

var typeErrorRE = regexp.MustCompile(`^cannot decode TOML (\w+) into .*?(?:of )?type (\S+)$`)

// friendlyTypeError rewrites go-toml's type mismatch ("cannot decode TOML
// string into struct field config.Power.I2CBus of type int") in the user's
// terms.
func friendlyTypeError(msg string) string {
	m := typeErrorRE.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	want := map[string]string{
		"int": "a whole number", "int64": "a whole number", "uint16": "a whole number",
		"float64": "a number", "bool": "true or false", "string": "a quoted string",
		"[]string": `a list of quoted strings, e.g. ["a", "b"]`,
	}[m[2]]
	if want == "" {
		want = m[2]
	}
	return fmt.Sprintf("expected %s, got a TOML %s", want, m[1])
}

// Error is a configuration error: one or more problems, one per line.
type Error struct{ errs []error }

func (e *Error) Error() string {
	var b strings.Builder
	for i, err := range e.errs {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(err.Error())
	}
	return b.String()
}

// Problems returns the individual problems, one line each.
func (e *Error) Problems() []string {
	out := make([]string, len(e.errs))
	for i, err := range e.errs {
		out[i] = err.Error()
	}
	return out
}

type fieldError struct {
	key string // dotted path, e.g. "nodes[1].address"
	msg string
}

type validationErrors []fieldError

func (v validationErrors) Error() string {
	var b strings.Builder
	for i, e := range v {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%s: %s", e.key, e.msg)
	}
	return b.String()
}

func (v validationErrors) located(name string, lines map[string]int) error {
	errs := make([]error, 0, len(v))
	for _, e := range v {
		if line, ok := lines[e.key]; ok {
			errs = append(errs, fmt.Errorf("%s:%d: %s: %s", name, line, e.key, e.msg))
		} else {
			errs = append(errs, fmt.Errorf("%s: %s: %s", name, e.key, e.msg))
		}
	}
	return &Error{errs: errs}
}

// validate checks every value and collects all problems, so that one run of
// `headnode config check` lists everything wrong with the file.
func (c *Config) validate() error {
	var errs validationErrors
	bad := func(key, format string, args ...any) {
		errs = append(errs, fieldError{key: key, msg: fmt.Sprintf(format, args...)})
	}
	// Each section checks itself, in its own file.

	c.validateNetwork(bad)
	c.validatePower(bad)
	c.validateDisplay(bad)
	c.validateDaemon(bad)
	c.validateDHCP(bad)
	c.validateDNS(bad)
	c.validateBridge(bad)
	c.validateConsole(bad)
	c.validateMonitor(bad)
	if len(errs) > 0 {
		return errs
	}
	return nil
}

//go:embed default.toml
var defaultText []byte

// DefaultText returns the commented default configuration file.
func DefaultText() []byte { return bytes.Clone(defaultText) }
