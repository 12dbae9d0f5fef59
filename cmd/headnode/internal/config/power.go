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
