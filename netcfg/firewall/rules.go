package firewall

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Names of what we own in the firewall. Chain names avoid the substrings
// that other tools delete wholesale (KUBE-, CNI-, flannel, DOCKER, ts-).
const (
	FilterChain = "HEADNODE-FWD"
	NATChain    = "HEADNODE-POSTRT"
	// Comment tags every rule we add, so that cleanup and a human reading
	// `iptables -S` can find them.
	Comment = "headnode"
)

// Spec is what the firewall must do: let Subnet out of ClusterInterface to
// anywhere else, masquerading it on whatever interface it leaves by, and
// let nothing new into ClusterInterface from any other interface.
//
// The uplink is deliberately not part of it: with Wi-Fi beside Ethernet,
// or a USB adaptor plugged in later, IPv4 forwarding is on for every
// interface, so "closed from the uplink" would leave the cluster open from
// the others; and masquerading by "not the cluster side" keeps working when
// the default route moves, without a rule rewrite.
type Spec struct {
	ClusterInterface string
	Subnet           netip.Prefix // masked, e.g. 192.168.50.0/24
}

func (s Spec) validate() error {
	if s.ClusterInterface == "" || !s.Subnet.IsValid() || !s.Subnet.Addr().Is4() || s.Subnet != s.Subnet.Masked() {
		return fmt.Errorf("incomplete NAT spec: cluster interface %q, subnet %v", s.ClusterInterface, s.Subnet)
	}
	return nil
}

type ownedChain struct {
	table, chain string
	builtin      string // the built-in chain that jumps to it
}

var ownedChains = []ownedChain{
	{table: "filter", chain: FilterChain, builtin: "FORWARD"},
	{table: "nat", chain: NATChain, builtin: "POSTROUTING"},
}

// rules returns the rule specs of one of our chains, in the order and
// spelling `iptables -S` and iptables-save print them (negation and
// source/destination, then interfaces, then matches), so that a fresh
// listing compares equal without rewriting.
//
// Every interface match lives inside our own chains. The jumps into them
// carry no interface match, because iptables 1.8.11's -C ignores -i/-o and
// we never rely on -C anyway: chains are compared by listing.
//
// What the filter chain lets through and stops, for traffic that reaches
// FORWARD (the head's own traffic is INPUT/OUTPUT, not ours; traffic
// between other interfaces, Docker's or k3s' bridges, returns untouched):
//
//	node -> anywhere (other nodes included)   accepted
//	replies to the cluster, from anywhere     accepted
//	anything new into the cluster side        dropped, from every interface
func (s Spec) rules(chain string) [][]string {
	subnet := s.Subnet.String()
	cl := s.ClusterInterface
	tag := []string{"-m", "comment", "--comment", Comment}
	with := func(r ...string) []string {
		// Insert the comment before the target, where iptables prints it.
		n := len(r) - 2
		return append(append(slices.Clone(r[:n]), tag...), r[n:]...)
	}
	switch chain {
	case FilterChain:
		return [][]string{
			// The cluster may reach everything else.
			with("-s", subnet, "-i", cl, "-j", "ACCEPT"),
			// Replies may come back, whichever way they come.
			with("-o", cl, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"),
			// Nothing new reaches a node from any other interface,
			// whatever the FORWARD policy is.
			with("!", "-i", cl, "-o", cl, "-j", "DROP"),
		}
	case NATChain:
		return [][]string{
			with("-s", subnet, "!", "-o", cl, "-j", "MASQUERADE"),
		}
	}
	return nil
}

func jumpSpec(chain string) []string {
	return []string{"-m", "comment", "--comment", Comment, "-j", chain}
}

func listingLine(chain string, spec []string) string {
	return "-A " + chain + " " + strings.Join(spec, " ")
}

func ourListing(chain string, rules [][]string) []string {
	out := make([]string, len(rules))
	for i, r := range rules {
		out[i] = listingLine(chain, r)
	}
	return out
}

// jumpTarget returns the chain or target a rule jumps (-j) or goes (-g)
// to, "" if none.
func jumpTarget(rule string) string {
	f := strings.Fields(rule)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "-j" || f[i] == "-g" {
			return f[i+1]
		}
	}
	return ""
}

// jumpLines returns the rules of builtin (as listed, "-A builtin ...")
// that jump to chain, whatever else they say: a jump someone copied
// without our comment is still ours to count (and to remove on cleanup).
func jumpLines(lines []string, builtin, chain string) []string {
	var out []string
	for _, l := range lines {
		if strings.HasPrefix(l, "-A "+builtin+" ") && jumpTarget(l) == chain {
			out = append(out, l)
		}
	}
	return out
}

// ourLines returns the rules of chain that jump to one of our chains or
// carry our comment.
func ourLines(lines []string, chain string) []string {
	var out []string
	for _, l := range lines {
		if !strings.HasPrefix(l, "-A "+chain+" ") {
			continue
		}
		t := jumpTarget(l)
		if t == FilterChain || t == NATChain || hasOurComment(l) {
			out = append(out, l)
		}
	}
	return out
}

func hasOurComment(line string) bool {
	f := strings.Fields(line)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "--comment" && strings.Trim(f[i+1], `"`) == Comment {
			return true
		}
	}
	return false
}

// Status is a read-only view of our rules.
type Status struct {
	FilterChain bool   `json:"filter_chain"` // our filter chain has exactly our rules
	NATChain    bool   `json:"nat_chain"`    // our nat chain has exactly our rules
	FilterJump  bool   `json:"filter_jump"`  // FORWARD jumps to it (netlink: the chain is hooked)
	NATJump     bool   `json:"nat_jump"`     // POSTROUTING jumps to it (netlink: the chain is hooked)
	Policy      string `json:"forward_policy,omitempty"`
	// Where names our rules' home, for status lines: e.g. "filter
	// HEADNODE-FWD, nat HEADNODE-POSTRT" or "table ip headnode".
	Where string `json:"where"`
	names partNames
}

// partNames are a backend's names for the four parts a Status reports.
type partNames struct {
	filterChain, filterJump, natChain, natJump string
}

var iptablesNames = partNames{
	filterChain: "filter chain " + FilterChain,
	filterJump:  "FORWARD jump",
	natChain:    "nat chain " + NATChain,
	natJump:     "POSTROUTING jump",
}

// Present reports whether every piece is in place.
func (s Status) Present() bool {
	return s.FilterChain && s.NATChain && s.FilterJump && s.NATJump
}

// Missing lists what is not in place, for status lines.
func (s Status) Missing() []string {
	n := s.names
	if n == (partNames{}) {
		n = iptablesNames
	}
	var m []string
	if !s.FilterChain {
		m = append(m, n.filterChain)
	}
	if !s.FilterJump && n.filterJump != "" {
		m = append(m, n.filterJump)
	}
	if !s.NATChain {
		m = append(m, n.natChain)
	}
	if !s.NATJump && n.natJump != "" {
		m = append(m, n.natJump)
	}
	return m
}
