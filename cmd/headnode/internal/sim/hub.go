package sim

import (
	"path/filepath"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
	"github.com/headnode/headnode/hw/emu/boards"
	"github.com/headnode/headnode/power/nodename"
)

// hatHubGone names the ClusterHAT's nodes while its emulated USB hub is
// off (`headnode hub off`, a `hub reset`, the daemon moving the cluster to
// another subnet): a real hub takes its gadgets with it, so their links
// drop while the Zeros stay powered, and come back, asking DHCP again,
// when it returns.
func hatHubGone(s *api.Status, dir string) map[string]bool {
	// writeConfig puts the daemon's state, and the emulated machine's
	// sysfs with it, under dir/state.
	if boards.HATHubPresent(filepath.Join(dir, "state", "sim", "sys")) {
		return nil
	}
	gone := map[string]bool{}
	for _, b := range s.Power.Boards {
		if b.Kind != "clusterhat" {
			continue
		}
		for n := b.First; n < b.First+b.Count; n++ {
			gone[nodename.Name(n)] = true
		}
	}
	return gone
}
