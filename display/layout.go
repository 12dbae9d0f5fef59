package display

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Layout returns what a cols x rows LCD shows for s, as pages of rows
// (usually one page; more when the address and health do not fit, and the
// Screen then turns the pages):
//
//	row 1  the uplink IPv4 address, or "no uplink" (interface missing or
//	       no carrier), or "waiting for DHCP"; on an IPv6-only uplink the
//	       IPv6 address, wrapped at its colons over as many rows as needed
//	row 2  "4/4 up  NAT ok" when all is well, else the most important fault
//	row 3  (4-row panels) the hostname
//	row 4  (4-row panels) NAT, temperature and throttling
func Layout(s Status, cols, rows int) [][]string {
	need := append(addressLines(s.Uplink, cols), cut(healthLine(s, cols), cols))
	if len(need) <= rows {
		page := need
		for _, extra := range []string{s.Hostname, systemLine(s)} {
			if len(page) < rows && extra != "" {
				page = append(page, cut(extra, cols))
			}
		}
		return [][]string{page}
	}
	var pages [][]string
	for len(need) > 0 {
		n := min(rows, len(need))
		pages = append(pages, need[:n])
		need = need[n:]
	}
	return pages
}

func addressLines(u Uplink, cols int) []string {
	if u.IPv4 != "" {
		a, _, _ := strings.Cut(u.IPv4, "/")
		return []string{a}
	}
	if !u.Exists || !u.Carrier {
		return []string{"no uplink"}
	}
	for _, v6 := range u.IPv6 {
		s, _, _ := strings.Cut(v6, "/")
		a, err := netip.ParseAddr(s)
		if err != nil || a.IsLinkLocalUnicast() || !a.Is6() {
			continue
		}
		return Wrap(a.String(), cols)
	}
	return []string{"waiting for DHCP"}
}

// Wrap breaks an IPv6 address into lines of at most cols characters, after
// a colon where possible, so that no group is split.
func Wrap(addr string, cols int) []string {
	var lines []string
	for len(addr) > cols {
		cutAt := strings.LastIndexByte(addr[:cols], ':') + 1
		if cutAt <= 0 {
			cutAt = cols
		}
		lines = append(lines, addr[:cutAt])
		addr = addr[cutAt:]
	}
	return append(lines, addr)
}

func healthLine(s Status, cols int) string {
	switch s.Health.State {
	case StateStarting:
		return "starting"
	case StateStopped:
		return "headnode stopped"
	case StateOK:
		// Healthy with NAT not ok can only mean NAT is not ours to run
		// ([network] nat = false); say so rather than "NAT ok".
		nat := "NAT ok"
		if s.NAT != "" && s.NAT != "ok" {
			nat = "NAT off"
		}
		if len(s.Nodes) == 0 {
			return nat
		}
		return nodesLine(s.Nodes, nat, cols)
	case StateDegraded:
		// Degraded because several nodes do not answer (the daemon's
		// "12 nodes unreachable: p8 p93 …"): the count says more than
		// the start of that list ("1012/1024 up"). One or two nodes are
		// named, as the reason does.
		if len(s.Health.Reasons) > 0 && strings.Contains(s.Health.Reasons[0], " nodes unreachable") && slices.ContainsFunc(s.Nodes, func(n Node) bool { return n.State == NodeUnreachable }) {
			return nodesLine(s.Nodes, "", cols)
		}
	}
	if len(s.Health.Reasons) > 0 {
		return s.Health.Reasons[0]
	}
	return s.Health.State
}

// nodesLine is "4/4 up  NAT ok", made to fit cols: on a 16-column panel
// "1012/1024 up  NAT ok" loses a space, then the "up" ("1012/1024 NAT ok"),
// before anything is cut.
func nodesLine(nodes []Node, nat string, cols int) string {
	up := 0
	for _, n := range nodes {
		if n.State == NodeUp {
			up++
		}
	}
	count := fmt.Sprintf("%d/%d", up, len(nodes))
	if nat == "" {
		return count + " up"
	}
	for _, line := range []string{count + " up  " + nat, count + " up " + nat, count + " " + nat} {
		if len([]rune(line)) <= cols {
			return line
		}
	}
	return count + " up"
}

func systemLine(s Status) string {
	nat := "NAT " + orDash(s.NAT)
	switch {
	case s.Throttled && s.HasTemp: // tighter, to fit 20 columns
		return fmt.Sprintf("%s %.0f° throttled", nat, s.TempC)
	case s.Throttled:
		return nat + "  throttled"
	case s.HasTemp:
		return fmt.Sprintf("%s  %.0f°C", nat, s.TempC)
	}
	return nat
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// cut shortens s to cols characters (runes).
func cut(s string, cols int) string {
	r := []rune(s)
	if len(r) > cols {
		return string(r[:cols])
	}
	return s
}
