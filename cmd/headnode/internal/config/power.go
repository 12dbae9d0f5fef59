package config

import (
	"fmt"
	"net/netip"
	"regexp"
	"time"
)

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

var nodeName = regexp.MustCompile(`^p[1-9][0-9]{0,3}$`)

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

}

// nodeHostOffset places node pN at host number 10+N of the cluster subnet
// by default (p1 = 192.168.50.11, as in design.md's example), leaving the
// low addresses for the head node and other infrastructure.
const nodeHostOffset = 10

// NodeAddress returns the address of node pN (n >= 1): the one configured
// in [[nodes]], else host number 10+N of the cluster subnet. ok is false
// when neither is known (no cluster_address and no [[nodes]] entry).
func (c *Config) NodeAddress(n int) (addr netip.Addr, ok bool) {
	name := fmt.Sprintf("p%d", n)
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
