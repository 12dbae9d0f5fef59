// Package roles decides which interface is the uplink (the user's network)
// and which is the cluster side, from what the kernel says about links and
// IPv4 default routes and whether a ClusterHAT or ClusterCTRL is present.
// Decide is a pure function: the daemon feeds it every change and applies
// what comes out; it never touches the system itself.
//
// The rules, in the order they are applied:
//
//   - uplink "auto": the interface of the IPv4 default route with the
//     lowest metric (the route the kernel uses, see ip-route(8): among
//     routes to the same prefix the lowest metric wins). Before any default
//     route exists, with a board present, the first wired port with
//     carrier is taken as the uplink (a ClusterHAT's nodes are on USB
//     gadget links, so a wired port is the LAN); without a board nothing
//     is guessed.
//   - cluster "auto": with a board, the bridge of the nodes' gadget links
//     plus every wired port that is not the uplink; without one, the first
//     wired port that is not the uplink.
//   - never a LAN: an interface that carries a default route, carried one
//     since the daemon started, or on which another DHCP server answers is
//     never chosen as, or joined to, the cluster side. When the
//     configuration names it explicitly, the cluster is refused with a
//     Problem saying why and how to fix it.
//
// Interface names are those of Raspberry Pi OS and Ubuntu: eth* and end*
// (on-board Ethernet, predictable names on Ubuntu and Pi 5), enx* (USB
// Ethernet named by MAC), usb* (RNDIS/CDC adaptors) as wired ports, and
// wlan* as a possible uplink only. ethpi*/ethupi* are ClusterHAT gadget
// links (burtyb/clusterhat-image udev rules), never wired ports.
package roles

import (
	"cmp"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/headnode/headnode/netcfg/links"
)

// Auto is the configuration value that asks Decide to choose.
const Auto = "auto"

// Route is an IPv4 default route.
type Route struct {
	Interface string
	Metric    int
}

// Input is everything the decision depends on.
type Input struct {
	// Uplink and Cluster are the configured names, or Auto.
	Uplink, Cluster string
	// Bridge is the bridge name ([bridge] name) and BridgePorts its port
	// patterns; BridgeEnabled is an explicit [bridge] enabled = true.
	Bridge        string
	BridgePorts   []string
	BridgeEnabled bool
	// Board: a ClusterHAT or ClusterCTRL was detected, or a gadget link
	// exists.
	Board  bool
	Links  map[string]links.State
	Routes []Route
	// WasUplink names interfaces that carried a default route since the
	// daemon started: a LAN cable does not become a cluster port because
	// its DHCP lease ran out.
	WasUplink map[string]bool
	// OtherDHCP maps interfaces to the address of another DHCP server
	// seen answering there.
	OtherDHCP map[string]string
}

// Roles is the decision.
type Roles struct {
	// Uplink is "" when none is known yet.
	Uplink    string
	UplinkWhy string
	// Cluster is "" when none is known yet.
	Cluster    string
	ClusterWhy string
	// Bridge: Cluster is the bridge of gadget links that headnode keeps
	// (chosen automatically; an explicit [bridge] keeps its own ports).
	Bridge bool
	// Ports are the wired ports that join the automatic bridge.
	Ports []string
	// Refused names interfaces that must never be claimed (no address,
	// no DHCP, no bridge port), with the reason.
	Refused map[string]string
	// Problem is set when the configured cluster side is refused.
	Problem *Problem
}

// Problem is a configuration that would claim a LAN.
type Problem struct {
	Interface string
	// Short fits a 16-column LCD row, e.g. "eth0 is a LAN".
	Short string
	// Line says what is wrong and the fix, for status and the log.
	Line string
	// Port: the interface is a configured port of the cluster bridge
	// (bridge.ports), which stays the cluster side without it.
	Port bool
}

// Equal reports whether two decisions are the same.
func (r Roles) Equal(o Roles) bool {
	samePtr := (r.Problem == nil) == (o.Problem == nil) && (r.Problem == nil || *r.Problem == *o.Problem)
	return r.Uplink == o.Uplink && r.UplinkWhy == o.UplinkWhy && r.Cluster == o.Cluster && r.ClusterWhy == o.ClusterWhy &&
		r.Bridge == o.Bridge && slices.Equal(r.Ports, o.Ports) && samePtr && mapsEqual(r.Refused, o.Refused)
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// IsGadget reports whether name is a ClusterHAT/ClusterCTRL USB gadget
// link of a node.
func IsGadget(name string) bool {
	return strings.HasPrefix(name, "ethpi") || strings.HasPrefix(name, "ethupi")
}

// IsWired reports whether name is a wired port by the naming of Raspberry
// Pi OS and Ubuntu.
func IsWired(name string) bool {
	if IsGadget(name) {
		return false
	}
	for _, p := range []string{"eth", "end", "enx", "usb"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// IsWireless reports whether name is a Wi-Fi interface.
func IsWireless(name string) bool { return strings.HasPrefix(name, "wlan") }

// rank orders candidate names: on-board Ethernet first, then USB adaptors,
// then Wi-Fi; by name within a kind.
func rank(name string) int {
	for i, p := range []string{"eth", "end", "enx", "usb", "wlan"} {
		if strings.HasPrefix(name, p) {
			return i
		}
	}
	return 9
}

func byRank(a, b string) int {
	return cmp.Or(cmp.Compare(rank(a), rank(b)), cmp.Compare(a, b))
}

// Decide applies the rules in the package comment.
func Decide(in Input) Roles {
	r := Roles{Refused: map[string]string{}}
	routed := map[string]bool{}
	for _, rt := range in.Routes {
		if in.Links[rt.Interface].Exists {
			routed[rt.Interface] = true
		}
	}
	for name := range routed {
		r.Refused[name] = "carries the default route"
	}
	for name, srv := range in.OtherDHCP {
		if _, ok := r.Refused[name]; !ok && srv != "" {
			r.Refused[name] = "has another DHCP server (" + srv + ") answering on it"
		}
	}
	for name := range in.WasUplink {
		if _, ok := r.Refused[name]; !ok {
			r.Refused[name] = "carried the default route earlier"
		}
	}
	decideUplink(&r, in)
	if in.Uplink != Auto && in.Uplink != "" {
		if _, ok := r.Refused[in.Uplink]; !ok {
			r.Refused[in.Uplink] = "is the uplink"
		}
	}
	decideCluster(&r, in)
	return r
}

func decideUplink(r *Roles, in Input) {
	if in.Uplink != Auto {
		r.Uplink, r.UplinkWhy = in.Uplink, "set in the configuration (network.uplink_interface)"
		return
	}
	var best *Route
	for i := range in.Routes {
		rt := &in.Routes[i]
		if !in.Links[rt.Interface].Exists || rt.Interface == in.Cluster {
			continue
		}
		if best == nil || rt.Metric < best.Metric || rt.Metric == best.Metric && byRank(rt.Interface, best.Interface) < 0 {
			best = rt
		}
	}
	if best != nil {
		r.Uplink = best.Interface
		r.UplinkWhy = fmt.Sprintf("carries the default route (metric %d)", best.Metric)
		if n := len(in.Routes); n > 1 {
			r.UplinkWhy = fmt.Sprintf("carries the default route with the lowest metric (%d, of %d default routes)", best.Metric, n)
		}
		return
	}
	if in.Board {
		for _, name := range sortedNames(in.Links) {
			l := in.Links[name]
			if IsWired(name) && l.Carrier && l.Master == 0 && name != in.Cluster {
				r.Uplink = name
				r.UplinkWhy = "no default route yet; the wired port with carrier beside the ClusterHAT's gadget links"
				return
			}
		}
	}
	r.UplinkWhy = "no default route yet"
}

func decideCluster(r *Roles, in Input) {
	eligible := func(name string) bool {
		_, refused := r.Refused[name]
		return IsWired(name) && name != r.Uplink && !refused && in.Links[name].Exists &&
			(in.Links[name].Master == 0 || in.Links[name].Master == in.Links[in.Bridge].Index && in.Links[in.Bridge].Exists)
	}
	switch {
	case in.Cluster != Auto:
		r.Cluster, r.ClusterWhy = in.Cluster, "set in the configuration (network.cluster_interface)"
		if why, ok := r.Refused[in.Cluster]; ok && why != "is the uplink" {
			r.Problem = lanProblem(in.Cluster, why)
			return
		}
		if in.BridgeEnabled && in.Cluster == in.Bridge {
			for _, name := range sortedNames(in.Links) {
				if why, ok := r.Refused[name]; ok && why != "is the uplink" && matchAny(in.BridgePorts, name) {
					r.Problem = &Problem{Interface: name, Short: name + " is a LAN", Port: true,
						Line: fmt.Sprintf("bridge port %s %s, so it is on a LAN and not bridged: swap the cables, or take it out of bridge.ports", name, why)}
					return
				}
			}
		}
		return
	case in.Board:
		r.Cluster, r.Bridge = in.Bridge, true
		for _, name := range sortedNames(in.Links) {
			if eligible(name) {
				r.Ports = append(r.Ports, name)
			}
		}
		r.ClusterWhy = "a ClusterHAT/ClusterCTRL is present: the bridge of the nodes' USB gadget links"
		if len(r.Ports) > 0 {
			r.ClusterWhy += " and " + strings.Join(r.Ports, ", ")
		}
		return
	case r.Uplink == "":
		r.ClusterWhy = "waiting for a default route to tell the uplink from the cluster side"
		return
	}
	for _, name := range sortedNames(in.Links) {
		if eligible(name) {
			r.Cluster = name
			r.ClusterWhy = "the wired port that is not the uplink (" + r.Uplink + ")"
			return
		}
	}
	r.ClusterWhy = "no wired port besides the uplink " + r.Uplink
}

func matchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

func lanProblem(name, why string) *Problem {
	return &Problem{
		Interface: name,
		Short:     name + " is a LAN",
		Line: fmt.Sprintf("cluster interface %s %s, so it is on a LAN and left alone (no address, no DHCP, no bridge): swap the cables, or set network.cluster_interface to the port the nodes are on (or \"auto\")",
			name, why),
	}
}

func sortedNames(m map[string]links.State) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.SortFunc(names, byRank)
	return names
}

// BridgePort reports whether name may be a port of the cluster bridge:
// it matches one of the patterns and is not refused.
func (r Roles) BridgePort(patterns []string, name string) bool {
	if _, refused := r.Refused[name]; refused {
		return false
	}
	if slices.Contains(r.Ports, name) {
		return true
	}
	for _, p := range patterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}
