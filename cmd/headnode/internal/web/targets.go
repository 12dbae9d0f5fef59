package web

import (
	"encoding/json"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
	"github.com/headnode/headnode/power/nodename"
)

// TargetsPath is where the read-only listener serves Prometheus service
// discovery.
const TargetsPath = "/prometheus/targets"

// TargetGroup is one entry of Prometheus's HTTP service discovery format
// (http_sd_config): the targets and the labels they all carry. Labels
// starting with __meta_ are seen by relabeling only and then dropped.
type TargetGroup struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

// Labels of the discovered targets. node, board, slot, role and head name
// the machine and stay on every series scraped from it. Power and
// lifecycle state change while the target is the same machine, so they
// are __meta_ labels: as target labels every power cycle would start new
// series. The shipped scrape configuration drops targets whose power is
// off (a node powered off on request is not a failed scrape).
const (
	labelNode  = "node"
	labelHead  = "head"
	labelRole  = "role" // "node" or "head"
	labelBoard = "board"
	labelSlot  = "slot"
	metaPower  = "__meta_headnode_power" // on, off or unknown
	metaState  = "__meta_headnode_state" // the node lifecycle state
)

// Targets serves the node_exporter targets of the cluster in Prometheus's
// HTTP service discovery format: one per node that has an address (its
// address at port), and the head at its cluster address. head is the
// head's name (its host name).
func Targets(current func() *api.Status, port int, head string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		groups := TargetGroups(current(), port, head)
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(groups)
	})
}

// TargetGroups lists the targets of s, the head first, then the nodes in
// status order. It is never nil: Prometheus reads [] as "no targets".
func TargetGroups(s *api.Status, port int, head string) []TargetGroup {
	groups := []TargetGroup{}
	p := strconv.Itoa(port)
	if a, err := netip.ParsePrefix(s.Cluster.Address); err == nil {
		groups = append(groups, TargetGroup{
			Targets: []string{net.JoinHostPort(a.Addr().String(), p)},
			Labels:  map[string]string{labelNode: head, labelHead: head, labelRole: "head", metaPower: "on", metaState: api.NodeUp},
		})
	}
	for _, n := range s.Power.Nodes {
		if _, err := netip.ParseAddr(n.Address); err != nil {
			continue // nowhere to scrape
		}
		l := map[string]string{labelNode: n.Name, labelHead: head, labelRole: "node", metaPower: powerWord(n.Powered), metaState: n.State}
		if board, slot, ok := boardSlot(s.Power.Boards, n.Name); ok {
			l[labelBoard], l[labelSlot] = board, strconv.Itoa(slot)
		}
		groups = append(groups, TargetGroup{Targets: []string{net.JoinHostPort(n.Address, p)}, Labels: l})
	}
	return groups
}

func powerWord(p *bool) string {
	switch {
	case p == nil:
		return "unknown"
	case *p:
		return "on"
	}
	return "off"
}

// boardSlot finds the board that powers node and the node's position on
// it (1 for its first node), from the board's node range ("p1-p4", "p5").
func boardSlot(boards []api.PowerBoard, node string) (string, int, bool) {
	n, err := nodename.Parse(node)
	if err != nil {
		return "", 0, false
	}
	for _, b := range boards {
		first, last, ok := nodeRange(b.Nodes)
		if ok && n >= first && n <= last {
			return b.Model, n - first + 1, true
		}
	}
	return "", 0, false
}

// nodeRange parses what nodename.Range writes.
func nodeRange(s string) (first, last int, ok bool) {
	a, b, isRange := strings.Cut(s, "-")
	first, err := nodename.Parse(a)
	if err != nil {
		return 0, 0, false
	}
	if !isRange {
		return first, first, true
	}
	last, err = nodename.Parse(b)
	return first, last, err == nil && last >= first
}
