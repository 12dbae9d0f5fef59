package config

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/headnode/headnode/hw/machine/simspec"
	"github.com/headnode/headnode/power"
	"github.com/headnode/headnode/power/nodename"
	"github.com/headnode/headnode/power/probe"
)

// Power configures node power control.
type Power struct {
	Board   string   `toml:"board"`
	I2CBus  int      `toml:"i2c_bus"`
	Stagger Duration `toml:"stagger"`
	Boot    string   `toml:"boot"`
	// HATAddress is the ClusterHAT expander's I2C address (XA0/XA1
	// jumpers move it from 0x20 up to 0x23).
	HATAddress int64 `toml:"hat_address"`
	// HATVersion forces a ClusterHAT version instead of reading its
	// EEPROM (the official tool's CLUSTERHAT_FORCE); "" reads it.
	HATVersion string `toml:"hat_version"`
	// HATSize is how many of the ClusterHAT's P1-P4 are counted (the
	// official tool's CLUSTERHAT_SIZE): ClusterCTRL nodes are numbered
	// after them.
	HATSize int `toml:"hat_size"`
	// HubPolarity is the ClusterHAT v2/v3 hub bit's sense: "auto" (the
	// official tool's first-run rule: a 1 switches the hub on on v2.0
	// only), "high" (1 = hub on) or "low" (0 = hub on).
	HubPolarity string `toml:"hub_polarity"`
	// HATUSBPath is where a ClusterHAT v1's hub is on USB, e.g. "1-1.2"
	// (the official tool's CLUSTERHATV1), for getpath; later HATs are
	// found.
	HATUSBPath string `toml:"hat_usb_path"`
	// FanGPIO is the BCM GPIO line of a fan on the head node, driven high
	// for on (the official tool's FANGPIO); -1 for none.
	FanGPIO int `toml:"fan_gpio"`
	// Probe is how reachability is checked: "icmp", "tcp:PORT", "none".
	Probe         string   `toml:"probe"`
	ProbeInterval Duration `toml:"probe_interval"`
	// BootGrace is how long a node may take from power-on to its first
	// answer; DownAfter is how long without an answer makes a node that
	// was up unreachable.
	BootGrace Duration `toml:"boot_grace"`
	DownAfter Duration `toml:"down_after"`
}

func defaultPower() Power {
	return Power{
		Board:         "auto",
		I2CBus:        1,
		Stagger:       Duration{Duration: time.Second},
		Boot:          "restore",
		HATAddress:    0x20,
		HATSize:       4,
		HubPolarity:   "auto",
		FanGPIO:       -1,
		Probe:         "icmp",
		ProbeInterval: Duration{Duration: time.Second},
		BootGrace:     Duration{Duration: 2 * time.Minute},
		DownAfter:     Duration{Duration: 3 * time.Second},
	}
}

// Node names one cluster node and the address it is reached at.
type Node struct {
	Name    string `toml:"name"`
	Address string `toml:"address"`
	// Console is the node's serial console device ("" finds it on USB,
	// "off" leaves it alone); Baud its rate (0: [console] baud).
	Console string `toml:"console"`
	Baud    int    `toml:"baud"`
}

func (c *Config) validatePower(bad badFunc) {
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
	if p.HATAddress < 0x20 || p.HATAddress > 0x23 {
		bad("power.hat_address", "0x%x is out of range; the ClusterHAT expander is at 0x20-0x23 (XA0/XA1 jumpers)", p.HATAddress)
	}
	if p.HATVersion != "" {
		if _, _, err := power.ParseHATVersion(p.HATVersion); err != nil {
			bad("power.hat_version", "%v (or \"\" to read the HAT EEPROM)", err)
		}
	}
	if p.HATSize < 1 || p.HATSize > 4 {
		bad("power.hat_size", "%d is out of range; a ClusterHAT has 1-4 nodes", p.HATSize)
	}
	switch p.HubPolarity {
	case "auto", "high", "low":
	default:
		bad("power.hub_polarity", "%q is not valid; use \"auto\" (the official tool's rule), \"high\" (1 = hub on) or \"low\" (0 = hub on)", p.HubPolarity)
	}
	if p.HATUSBPath != "" && !usbPath.MatchString(p.HATUSBPath) {
		bad("power.hat_usb_path", "%q is not a USB path; write it as the kernel names the port, e.g. \"1-1.2\"", p.HATUSBPath)
	}
	if p.FanGPIO < -1 || p.FanGPIO > 27 {
		bad("power.fan_gpio", "%d is out of range; use a BCM GPIO line 0-27, or -1 for no fan", p.FanGPIO)
	}
	if _, _, err := probe.Parse(p.Probe); err != nil {
		bad("power.probe", "%v", err)
	}
	if msg := p.ProbeInterval.check(100*time.Millisecond, time.Minute); msg != "" {
		bad("power.probe_interval", "%s", msg)
	}
	if msg := p.BootGrace.check(0, time.Hour); msg != "" {
		bad("power.boot_grace", "%s", msg)
	}
	if msg := p.DownAfter.check(100*time.Millisecond, time.Hour); msg != "" {
		bad("power.down_after", "%s", msg)
	} else if p.DownAfter.Duration < p.ProbeInterval.Duration {
		bad("power.down_after", "%s is shorter than power.probe_interval (%s); a node would count as unreachable between two probes", p.DownAfter.Duration, p.ProbeInterval.Duration)
	}
	c.validateSimBoard(bad)

	seenName := map[string]int{}
	seenAddr := map[string]int{}
	for i, nd := range c.Nodes {
		key := fmt.Sprintf("nodes[%d]", i)
		if _, err := nodename.Parse(nd.Name); err != nil {
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

}

// usbPath is a USB device's name in sysfs: bus, then ports ("1-1.2.3").
var usbPath = regexp.MustCompile(`^[0-9]+-[0-9]+(\.[0-9]+)*$`)

func (c *Config) validateSimBoard(bad badFunc) {
	s := &c.Hardware.Sim
	if s.Pi != "4" && s.Pi != "5" {
		bad("hardware.sim.pi", "%q is not valid; use \"4\" (a Pi 4 Model B) or \"5\"", s.Pi)
	}
	if !slices.Contains(simspec.Boards, s.Board) {
		bad("hardware.sim.board", "%q is not valid; use %s", s.Board, quoteList(simspec.Boards))
	}
	if _, _, err := power.ParseHATVersion(s.Revision); err != nil {
		bad("hardware.sim.revision", "%v", err)
	}
	if !slices.Contains(simspec.HATChips, s.Chip) {
		bad("hardware.sim.chip", "%q is not valid; use %s", s.Chip, quoteList(simspec.HATChips))
	}
	if len(s.CTRL) > 8 {
		bad("hardware.sim.ctrl", "%d boards is too many; use at most 8", len(s.CTRL))
	}
	for i, v := range s.CTRL {
		if !slices.Contains(simspec.CTRLs, v) {
			bad(fmt.Sprintf("hardware.sim.ctrl[%d]", i), "%q is not valid; use %s", v, quoteList(simspec.CTRLs))
		}
	}
}

func quoteList(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

// nodeHostOffset places node pN at host number 10+N of the cluster subnet
// by default (p1 = 192.168.50.11 with the default cluster_address
// 192.168.50.1/24), leaving the low addresses for the head node and other
// infrastructure.
const nodeHostOffset = 10

// NodeAddress returns the address of node pN (n >= 1): the one configured
// in [[nodes]], else host number 10+N of the cluster subnet. ok is false
// when neither is known (no cluster_address and no [[nodes]] entry).
func (c *Config) NodeAddress(n int) (addr netip.Addr, ok bool) {
	name := nodename.Name(n)
	for _, nd := range c.Nodes {
		if nd.Name == name && nd.Address != "" {
			a, err := netip.ParseAddr(nd.Address)
			return a, err == nil
		}
	}
	p, ok := c.Network.ClusterPrefix()
	if !ok {
		return netip.Addr{}, false
	}
	a := p.Masked().Addr().As4()
	host := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	host += uint32(nodeHostOffset + n)
	out := netip.AddrFrom4([4]byte{byte(host >> 24), byte(host >> 16), byte(host >> 8), byte(host)})
	if !p.Masked().Contains(out) || out == p.Addr() {
		return netip.Addr{}, false
	}
	return out, true
}
