package daemon

import (
	"testing"
	"time"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
	"github.com/headnode/headnode/cmd/headnode/internal/config"
	"github.com/headnode/headnode/cmd/headnode/internal/console"
)

// The status page shows a console's last lines for a node that is not
// coming up: unreachable (unless switched off), or booting for longer than
// half its boot grace.
func TestConsoleAttention(t *testing.T) {
	cfg := config.Default() // boot_grace 2m
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	devs := map[string]console.Device{}
	for _, n := range []string{"p1", "p2", "p3", "p4", "p5", "p6"} {
		devs[n] = console.Device{Path: "/nonexistent/" + n}
	}
	m := console.NewManager(console.Options{Size: 4096, Devices: devs})
	s := &api.Status{Power: api.Power{Nodes: []api.Node{
		{Name: "p1", State: api.NodeUp, Since: now.Add(-time.Hour)},
		{Name: "p2", State: api.NodeBooting, Since: now.Add(-30 * time.Second)},
		{Name: "p3", State: api.NodeBooting, Since: now.Add(-61 * time.Second)},
		{Name: "p4", State: api.NodeUnreachable, Since: now.Add(-time.Minute)},
		{Name: "p5", State: api.NodeUnreachable, Requested: "off", Since: now.Add(-time.Minute)},
		{Name: "p6", State: api.NodeOff, Since: now.Add(-time.Minute)},
	}}}
	got := map[string]bool{}
	for _, nc := range consoleStatus(m, s, cfg, now).Nodes {
		got[nc.Name] = nc.Attention
	}
	want := map[string]bool{"p1": false, "p2": false, "p3": true, "p4": true, "p5": false, "p6": false}
	for n, w := range want {
		if got[n] != w {
			t.Errorf("%s: attention %v, want %v", n, got[n], w)
		}
	}
}
