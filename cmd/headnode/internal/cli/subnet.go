package cli

import (
	"fmt"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
)

// subnetLine says how the cluster subnet was chosen, its layout and its
// last move, for `headnode status`; "" when the daemon does not say.
func subnetLine(v api.Subnet) string {
	if v.Mode == "" {
		return ""
	}
	line := v.Mode
	switch {
	case v.Problem != "":
		return line + ": " + v.Problem
	case v.Address == "":
		return line + ": the cluster interface's address is left alone"
	}
	line += fmt.Sprintf(": %s, pool %s", v.Address, v.Pool)
	if v.Nodes > 0 {
		line += fmt.Sprintf(", p1-p%d at host 10+N", v.Nodes)
	}
	switch {
	case v.Moving:
		line += fmt.Sprintf("; moving from %s (%s)", v.From, v.Why)
	case v.Moves > 0:
		line += fmt.Sprintf("; moved from %s at %s (%s)", v.From, v.LastMove.Format("15:04:05"), v.Why)
	}
	return line
}
