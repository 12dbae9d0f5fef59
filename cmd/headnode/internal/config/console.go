package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/headnode/headnode/hw/tty"
)

// Console configures the capture of the nodes' serial consoles.
type Console struct {
	Enabled bool `toml:"enabled"`
	// Find looks for the consoles of ClusterHAT and ClusterCTRL nodes on
	// USB (their serial gadget); [[nodes]] console names others.
	Find bool `toml:"find"`
	// Baud is the rate of found consoles and the default of named ones.
	Baud int `toml:"baud"`
	// BufferSize is each node's ring, as "256KiB", "1MiB" or bytes (a
	// bare integer too).
	BufferSize Size `toml:"buffer_size"`
	// PersistInterval is how often new output is written to state_dir.
	PersistInterval Duration `toml:"persist_interval"`
}

// ConsoleOff in [[nodes]] console leaves the node's console alone.
const ConsoleOff = "off"

func defaultConsole() Console {
	return Console{
		Enabled: true, Find: true, Baud: 115200,
		BufferSize:      Size{Bytes: 256 << 10},
		PersistInterval: Duration{Duration: time.Minute},
	}
}

// Size is a number of bytes, written as bytes or with a binary unit.
type Size struct {
	Bytes   int
	invalid string
}

// UnmarshalText implements encoding.TextUnmarshaler; bad text is kept
// for validation to report with its line.
func (s *Size) UnmarshalText(b []byte) error {
	n, ok := parseByteSize(string(b))
	if !ok {
		s.invalid = string(b)
		return nil
	}
	s.Bytes, s.invalid = n, ""
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (s Size) MarshalText() ([]byte, error) {
	switch {
	case s.Bytes%(1<<20) == 0 && s.Bytes > 0:
		return []byte(strconv.Itoa(s.Bytes>>20) + "MiB"), nil
	case s.Bytes%(1<<10) == 0 && s.Bytes > 0:
		return []byte(strconv.Itoa(s.Bytes>>10) + "KiB"), nil
	}
	return []byte(strconv.Itoa(s.Bytes)), nil
}

func parseByteSize(t string) (int, bool) {
	t = strings.TrimSpace(t)
	mult := 1
	for _, u := range []struct {
		suffix string
		mult   int
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"K", 1 << 10}, {"M", 1 << 20}, {"B", 1}} {
		if rest, ok := strings.CutSuffix(t, u.suffix); ok {
			t, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	n, err := strconv.Atoi(t)
	if err != nil || n < 0 || n > (1<<30)/mult {
		return 0, false
	}
	return n * mult, true
}

// Bounds of [console] buffer_size.
const (
	minConsoleBuffer = 4 << 10
	maxConsoleBuffer = 64 << 20
)

func (c *Config) validateConsole(bad badFunc) {
	k := &c.Console
	if err := tty.ValidSpeed(k.Baud); err != nil {
		bad("console.baud", "%v", err)
	}
	switch b := k.BufferSize; {
	case b.invalid != "":
		bad("console.buffer_size", "%q is not a size; write it like \"256KiB\" or \"1MiB\"", b.invalid)
	case b.Bytes < minConsoleBuffer || b.Bytes > maxConsoleBuffer:
		bad("console.buffer_size", "%d bytes is out of range; use 4KiB to 64MiB", b.Bytes)
	}
	if msg := k.PersistInterval.check(time.Second, 24*time.Hour); msg != "" {
		bad("console.persist_interval", "%s", msg)
	}
	for i, nd := range c.Nodes {
		key := fmt.Sprintf("nodes[%d]", i)
		if d := nd.Console; d != "" && d != ConsoleOff && !strings.HasPrefix(d, "/") {
			bad(key+".console", "%q is not a device path, e.g. \"/dev/ttyUSB0\" (\"\" finds it on USB, %q leaves it alone)", d, ConsoleOff)
		}
		if nd.Baud != 0 {
			if err := tty.ValidSpeed(nd.Baud); err != nil {
				bad(key+".baud", "%v", err)
			}
		}
	}
}
