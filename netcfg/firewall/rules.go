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

// Spec is what the firewall must do: forward and masquerade Subnet from
// ClusterInterface out of UplinkInterface.
type Spec struct {
	ClusterInterface string
	UplinkInterface  string
	Subnet           netip.Prefix // masked, e.g. 192.168.50.0/24
}

func (s Spec) validate() error {
	if s.ClusterInterface == "" || s.UplinkInterface == "" || !s.Subnet.IsValid() || !s.Subnet.Addr().Is4() {
		return fmt.Errorf("incomplete NAT spec: cluster %q, uplink %q, subnet %v", s.ClusterInterface, s.UplinkInterface, s.Subnet)
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
// spelling `iptables -S` prints them (source/destination, then interfaces,
// then matches), so that a fresh listing compares equal without rewriting.
//
// Every interface match lives inside our own chains. The jumps into them
// carry no interface match, because iptables 1.8.11's -C ignores -i/-o and
// we never rely on -C anyway: chains are compared by listing.
func (s Spec) rules(chain string) [][]string {
	subnet := s.Subnet.String()
	tag := []string{"-m", "comment", "--comment", Comment}
	with := func(r ...string) []string {
		// Insert the comment before the target, where iptables prints it.
		n := len(r) - 2
		return append(append(slices.Clone(r[:n]), tag...), r[n:]...)
	}
	switch chain {
	case FilterChain:
		return [][]string{
			// The cluster may reach the uplink.
			with("-s", subnet, "-i", s.ClusterInterface, "-o", s.UplinkInterface, "-j", "ACCEPT"),
			// Replies may come back.
			with("-d", subnet, "-i", s.UplinkInterface, "-o", s.ClusterInterface, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"),
			// Nothing new from the uplink reaches a node, whatever the
			// FORWARD policy is. This touches only uplink→cluster traffic,
			// which is ours; all other traffic returns to the caller.
			with("-i", s.UplinkInterface, "-o", s.ClusterInterface, "-j", "DROP"),
		}
	case NATChain:
		return [][]string{
			with("-s", subnet, "-o", s.UplinkInterface, "-j", "MASQUERADE"),
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

// jumpRuleIDs returns the 1-based rule numbers in builtin that jump to
// chain, whatever else the rule says: a jump someone copied without our
// comment is still ours to count (and to remove on cleanup).
func jumpRuleIDs(lines []string, builtin, chain string) []int {
	var ids []int
	id := 0
	for _, l := range lines {
		if !strings.HasPrefix(l, "-A "+builtin+" ") {
			continue
		}
		id++
		if jumpTarget(l) == chain {
			ids = append(ids, id)
		}
	}
	return ids
}

// ourRuleIDs returns the rule numbers in chain that jump to one of our
// chains or carry our comment.
func ourRuleIDs(lines []string, chain string) []int {
	var ids []int
	id := 0
	for _, l := range lines {
		if !strings.HasPrefix(l, "-A "+chain+" ") {
			continue
		}
		id++
		t := jumpTarget(l)
		if t == FilterChain || t == NATChain || hasOurComment(l) {
			ids = append(ids, id)
		}
	}
	return ids
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
	FilterJump  bool   `json:"filter_jump"`  // FORWARD jumps to it
	NATJump     bool   `json:"nat_jump"`     // POSTROUTING jumps to it
	Policy      string `json:"forward_policy"`
}

// Present reports whether every piece is in place.
func (s Status) Present() bool {
	return s.FilterChain && s.NATChain && s.FilterJump && s.NATJump
}

// Missing lists what is not in place, for status lines.
func (s Status) Missing() []string {
	var m []string
	if !s.FilterChain {
		m = append(m, "filter chain "+FilterChain)
	}
	if !s.FilterJump {
		m = append(m, "FORWARD jump")
	}
	if !s.NATChain {
		m = append(m, "nat chain "+NATChain)
	}
	if !s.NATJump {
		m = append(m, "POSTROUTING jump")
	}
	return m
}
