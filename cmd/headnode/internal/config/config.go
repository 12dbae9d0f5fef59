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
	"net/netip"
	"os"
	"regexp"
	"strconv"
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

	// Path is the file this configuration came from; empty for built-in
	// defaults.
	Path string `toml:"-"`
}

// Network configures forwarding and NAT between the cluster and the uplink.
type Network struct {
	ClusterInterface string `toml:"cluster_interface"`
	// ClusterAddress is set on the cluster interface; "" leaves it alone.
	ClusterAddress  string `toml:"cluster_address"`
	UplinkInterface string `toml:"uplink_interface"`
	// IPTables selects the iptables backend: "auto" (whatever `iptables`
	// resolves to), "nft", "legacy", or an absolute path to a binary.
	IPTables string `toml:"iptables"`
}

// Power configures node power control.
type Power struct {
	Board   string   `toml:"board"`
	I2CBus  int      `toml:"i2c_bus"`
	Stagger Duration `toml:"stagger"`
	Boot    string   `toml:"boot"`
}

// Node names one cluster node and the address it is reached at.
type Node struct {
	Name    string `toml:"name"`
	Address string `toml:"address"`
}

// LCD configures the character display.
type LCD struct {
	Enabled bool `toml:"enabled"`
	// Address is "auto" or an I2C address, written as an integer (0x27) or
	// a string ("0x27").
	Address any    `toml:"address"`
	Size    string `toml:"size"`
	Charset string `toml:"charset"`
}

// LED configures the USB status LED.
type LED struct {
	Enabled    bool    `toml:"enabled"`
	Brightness float64 `toml:"brightness"`
}

// Control configures the local control socket used by the CLI.
type Control struct {
	Socket string `toml:"socket"`
}

// HTTP configures the read-only network listener.
type HTTP struct {
	Listen []string `toml:"listen"`
}

// Hardware selects real or emulated hardware and the debugging traces.
type Hardware struct {
	Backend  string `toml:"backend"`
	I2CTrace string `toml:"i2c_trace"`
	HIDTrace string `toml:"hid_trace"`
}

// Daemon holds paths the daemon owns.
type Daemon struct {
	// StateDir keeps what must survive restarts: what we changed on the
	// system (so `nat clear` can undo exactly that) and requested power
	// states.
	StateDir string `toml:"state_dir"`
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
			ClusterInterface: "eth0",
			ClusterAddress:   "192.168.50.1/24",
			UplinkInterface:  "eth1",
			IPTables:         "auto",
		},
		Power: Power{
			Board:   "auto",
			I2CBus:  1,
			Stagger: Duration{Duration: time.Second},
			Boot:    "restore",
		},
		LCD: LCD{
			Enabled: true,
			Address: "auto",
			Size:    "16x2",
			Charset: "A00",
		},
		LED: LED{
			Enabled:    true,
			Brightness: 0.3,
		},
		Control:  Control{Socket: "/run/headnode/control.sock"},
		HTTP:     HTTP{Listen: []string{"127.0.0.1:9180"}},
		Hardware: Hardware{Backend: "auto"},
		Daemon:   Daemon{StateDir: "/var/lib/headnode"},
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

var (
	ifaceName = regexp.MustCompile(`^[A-Za-z0-9_.@:-]{1,15}$`)
	nodeName  = regexp.MustCompile(`^p[1-9][0-9]{0,3}$`)
)

// validate checks every value and collects all problems, so that one run of
// `headnode config check` lists everything wrong with the file.
func (c *Config) validate() error {
	var errs validationErrors
	bad := func(key, format string, args ...any) {
		errs = append(errs, fieldError{key: key, msg: fmt.Sprintf(format, args...)})
	}

	n := &c.Network
	if !ifaceName.MatchString(n.ClusterInterface) {
		bad("network.cluster_interface", "%q is not an interface name (1-15 characters, e.g. \"eth0\")", n.ClusterInterface)
	}
	if !ifaceName.MatchString(n.UplinkInterface) {
		bad("network.uplink_interface", "%q is not an interface name (1-15 characters, e.g. \"eth1\")", n.UplinkInterface)
	}
	if n.ClusterInterface == n.UplinkInterface {
		bad("network.uplink_interface", "%q is also the cluster interface; the uplink must be a different interface", n.UplinkInterface)
	}
	if n.ClusterAddress != "" {
		p, err := netip.ParsePrefix(n.ClusterAddress)
		switch {
		case err != nil || !p.Addr().Is4():
			bad("network.cluster_address", "%q is not an IPv4 address with prefix length, e.g. \"192.168.50.1/24\" (or \"\" to leave the interface alone)", n.ClusterAddress)
		case p.Bits() > 30 || p.Bits() < 8:
			bad("network.cluster_address", "%q has prefix length /%d; use /8 to /30", n.ClusterAddress, p.Bits())
		case p.Addr() == p.Masked().Addr():
			bad("network.cluster_address", "%q is the network address itself; give the head node's own address, e.g. %s", n.ClusterAddress, netip.PrefixFrom(p.Addr().Next(), p.Bits()))
		}
	}
	switch n.IPTables {
	case "auto", "nft", "legacy":
	default:
		if !strings.HasPrefix(n.IPTables, "/") {
			bad("network.iptables", "%q is not valid; use \"auto\", \"nft\", \"legacy\" or an absolute path to an iptables binary", n.IPTables)
		}
	}

	p := &c.Power
	switch p.Board {
	case "auto", "clusterhat", "clusterctrl", "none":
	default:
		bad("power.board", "%q is not valid; use \"auto\", \"clusterhat\", \"clusterctrl\" or \"none\"", p.Board)
	}
	if p.I2CBus < 0 || p.I2CBus > 255 {
		bad("power.i2c_bus", "%d is out of range; use a bus number 0-255 (1 is /dev/i2c-1)", p.I2CBus)
	}
	if msg := p.Stagger.check(0, time.Minute); msg != "" {
		bad("power.stagger", "%s", msg)
	}
	switch p.Boot {
	case "off", "on", "restore":
	default:
		bad("power.boot", "%q is not valid; use \"off\", \"on\" or \"restore\"", p.Boot)
	}

	seenName := map[string]int{}
	seenAddr := map[string]int{}
	for i, nd := range c.Nodes {
		key := fmt.Sprintf("nodes[%d]", i)
		if !nodeName.MatchString(nd.Name) {
			bad(key+".name", "%q is not a node name; nodes are named p1, p2, ...", nd.Name)
		} else if j, dup := seenName[nd.Name]; dup {
			bad(key+".name", "%q is already used by nodes[%d]", nd.Name, j)
		} else {
			seenName[nd.Name] = i
		}
		if nd.Address != "" {
			if a, err := netip.ParseAddr(nd.Address); err != nil || !a.Is4() {
				bad(key+".address", "%q is not an IPv4 address, e.g. \"192.168.50.11\"", nd.Address)
			} else if j, dup := seenAddr[nd.Address]; dup {
				bad(key+".address", "%q is already used by nodes[%d]", nd.Address, j)
			} else {
				seenAddr[nd.Address] = i
			}
		}
	}

	if _, err := c.LCD.I2CAddress(); err != nil {
		bad("lcd.address", "%v", err)
	}
	switch c.LCD.Size {
	case "16x2", "20x2", "16x4", "20x4":
	default:
		bad("lcd.size", "%q is not valid; use \"16x2\", \"20x2\", \"16x4\" or \"20x4\"", c.LCD.Size)
	}
	switch c.LCD.Charset {
	case "A00", "A02":
	default:
		bad("lcd.charset", "%q is not valid; use \"A00\" (Japanese ROM, most modules) or \"A02\" (European ROM)", c.LCD.Charset)
	}
	if c.LED.Brightness < 0 || c.LED.Brightness > 1 {
		bad("led.brightness", "%g is out of range; use 0.0 to 1.0", c.LED.Brightness)
	}

	if c.Control.Socket == "" || !strings.HasPrefix(c.Control.Socket, "/") {
		bad("control.socket", "%q is not an absolute path, e.g. \"/run/headnode/control.sock\"", c.Control.Socket)
	}
	for i, l := range c.HTTP.Listen {
		if _, err := netip.ParseAddrPort(l); err != nil {
			bad(fmt.Sprintf("http.listen[%d]", i), "%q is not an address:port, e.g. \"127.0.0.1:9180\" or \"[::1]:9180\"", l)
		}
	}
	switch c.Hardware.Backend {
	case "auto", "sim":
	default:
		bad("hardware.backend", "%q is not valid; use \"auto\" (real hardware) or \"sim\" (emulated)", c.Hardware.Backend)
	}
	if c.Daemon.StateDir == "" || !strings.HasPrefix(c.Daemon.StateDir, "/") {
		bad("daemon.state_dir", "%q is not an absolute path, e.g. \"/var/lib/headnode\"", c.Daemon.StateDir)
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// I2CAddress returns the configured LCD address, or 0 for "auto".
func (l LCD) I2CAddress() (uint16, error) {
	var v int64
	switch a := l.Address.(type) {
	case nil:
		return 0, nil
	case int64:
		v = a
	case string:
		if a == "auto" {
			return 0, nil
		}
		n, err := strconv.ParseInt(a, 0, 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not valid; use \"auto\" or an I2C address such as 0x27", a)
		}
		v = n
	default:
		return 0, fmt.Errorf("%v is not valid; use \"auto\" or an I2C address such as 0x27", a)
	}
	if v < 0x03 || v > 0x77 {
		return 0, fmt.Errorf("0x%x is out of range; I2C addresses are 0x03-0x77 (typical LCDs: 0x27, 0x3f)", v)
	}
	return uint16(v), nil
}

// ClusterPrefix returns the cluster subnet (e.g. 192.168.50.0/24) and the
// head's own address on it. ok is false when no cluster address is configured.
func (n Network) ClusterPrefix() (addr netip.Prefix, ok bool) {
	if n.ClusterAddress == "" {
		return netip.Prefix{}, false
	}
	p, err := netip.ParsePrefix(n.ClusterAddress)
	if err != nil {
		return netip.Prefix{}, false
	}
	return p, true
}

//go:embed default.toml
var defaultText []byte

// DefaultText returns the commented default configuration file.
func DefaultText() []byte { return bytes.Clone(defaultText) }
