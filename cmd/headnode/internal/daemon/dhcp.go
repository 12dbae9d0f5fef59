package daemon

import (
	"context"
	"net/http"

	"github.com/headnode/headnode/cmd/headnode/internal/config"
	"github.com/headnode/headnode/netcfg"
)

// The dhcp part. Scaffolding: the issue that builds dhcp fills in these
// hooks; until then the part does nothing and contributes nothing.

// dhcpState is the dhcp part of the state (loop goroutine only).
type dhcpState struct{}

// dhcpHandles are what control handlers need from the running part.
type dhcpHandles struct{}

func dhcpChanged(old, new *config.Config) bool { return false }

func (d *Daemon) startDHCP(ctx context.Context, cfg *config.Config) (stop func()) {
	return func() {}
}

func (st *state) dhcpHealth(h *health) {}

func (d *Daemon) dhcpRoutes(mux *http.ServeMux) {}

// dhcpOnLinks is called on the loop with every interface snapshot.
func (d *Daemon) dhcpOnLinks(st *state, links map[string]netcfg.LinkState) {}
