package config

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
)

// Control configures the local control socket used by the CLI.
type Control struct {
	Socket string `toml:"socket"`
	// Group may use the socket besides root (it can change power and
	// NAT); "" keeps it root's alone.
	Group string `toml:"group"`
}

// HTTP configures the read-only network listener.
type HTTP struct {
	Listen []string `toml:"listen"`
	// Hosts are names, besides this machine's addresses, localhost and
	// its host name (also NAME.local), by which the page may be asked for
	// (a DNS name of the head on the user's network). Requests naming
	// any other host are refused: DNS rebinding.
	Hosts []string `toml:"hosts"`
}

// Hardware selects real or emulated hardware and the debugging traces.
type Hardware struct {
	Backend  string      `toml:"backend"`
	I2CTrace string      `toml:"i2c_trace"`
	HIDTrace string      `toml:"hid_trace"`
	Sim      HardwareSim `toml:"sim"`
}

// Daemon holds paths the daemon owns.
type Daemon struct {
	// StateDir keeps what must survive restarts: what we changed on the
	// system (so `nat clear` can undo exactly that) and requested power
	// states.
	StateDir string `toml:"state_dir"`
}

// ClusterListenHost in an [http] listen address stands for the head's
// cluster address, so the default needs no editing when the subnet does.
const ClusterListenHost = "cluster"

func validListen(l string) bool {
	if _, err := netip.ParseAddrPort(l); err == nil {
		return true
	}
	host, port, ok := strings.Cut(l, ":")
	if !ok || host != ClusterListenHost {
		return false
	}
	_, err := netip.ParseAddrPort("0.0.0.0:" + port)
	return err == nil
}

func (c *Config) validateDaemon(bad badFunc) {
	if c.Control.Socket == "" || !strings.HasPrefix(c.Control.Socket, "/") {
		bad("control.socket", "%q is not an absolute path, e.g. \"/run/headnode/control.sock\"", c.Control.Socket)
	}
	if g := c.Control.Group; g != "" && !validGroupName(g) {
		bad("control.group", "%q is not a group name (letters, digits, '_', '-', '.', not starting with '-'), e.g. \"headnode\", or \"\" for root only", g)
	}
	for i, l := range c.HTTP.Listen {
		if !validListen(l) {
			bad(fmt.Sprintf("http.listen[%d]", i), "%q is not an address:port, e.g. \"127.0.0.1:9180\", \"[::1]:9180\" or \"cluster:9180\" (the cluster address)", l)
		}
	}
	for i, h := range c.HTTP.Hosts {
		if !validHostName(h) {
			bad(fmt.Sprintf("http.hosts[%d]", i), "%q is not a host name (letters, digits, '-' and '.'), e.g. \"head.example.net\"; addresses need no entry", h)
		}
	}
	for _, tr := range []struct{ key, path string }{{"hardware.i2c_trace", c.Hardware.I2CTrace}, {"hardware.hid_trace", c.Hardware.HIDTrace}} {
		if tr.path != "" && !filepath.IsAbs(tr.path) {
			bad(tr.key, "%q is not an absolute path, e.g. \"/var/log/headnode/i2c.jsonl\", or \"\" for off", tr.path)
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
}

// validHostName accepts a DNS name (RFC 1123 labels), not an address.
func validHostName(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// validGroupName accepts what useradd/groupadd accept on Debian by default,
// which is also what /etc/group can hold.
func validGroupName(g string) bool {
	if len(g) > 32 || g[0] == '-' {
		return false
	}
	for _, r := range g {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.'
		if !ok {
			return false
		}
	}
	return true
}
