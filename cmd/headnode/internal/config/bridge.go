package config

import (
	"fmt"
	"path"
)

// Bridge configures ClusterHAT mode: each Pi Zero appears on the head node
// as a USB network interface (ethpiN, or ethupiN when it boots over USB)
// only once it has booted, and must join a bridge that holds the cluster
// address before it can reach anything.
type Bridge struct {
	Enabled bool   `toml:"enabled"`
	Name    string `toml:"name"`
	// Ports are the interfaces put into the bridge as they appear, as
	// names or shell patterns.
	Ports []string `toml:"ports"`
}

func defaultBridge() Bridge {
	return Bridge{Name: "br0", Ports: []string{"ethpi*", "ethupi*"}}
}

func (c *Config) validateBridge(bad badFunc) {
	b := &c.Bridge
	if !ifaceName.MatchString(b.Name) {
		bad("bridge.name", "%q is not an interface name (1-15 characters, e.g. \"br0\")", b.Name)
	} else if b.Enabled && b.Name != c.Network.ClusterInterface && c.Network.ClusterInterface != Auto {
		bad("bridge.enabled", "the bridge %s (bridge.name) is not the cluster interface (network.cluster_interface = %q); with the bridge enabled the nodes are on %s: set cluster_interface = %q", b.Name, c.Network.ClusterInterface, b.Name, b.Name)
	}
	for i, p := range b.Ports {
		key := fmt.Sprintf("bridge.ports[%d]", i)
		if _, err := path.Match(p, ""); err != nil || p == "" {
			bad(key, "%q is not a valid pattern; use names or * wildcards like \"ethpi*\"", p)
			continue
		}
		if ok, _ := path.Match(p, c.Network.UplinkInterface); ok && c.Network.UplinkInterface != Auto {
			bad(key, "%q matches the uplink %s (network.uplink_interface); the uplink must not join the cluster bridge", p, c.Network.UplinkInterface)
		}
		if ok, _ := path.Match(p, b.Name); ok {
			bad(key, "%q matches the bridge %s itself", p, b.Name)
		}
	}
}
