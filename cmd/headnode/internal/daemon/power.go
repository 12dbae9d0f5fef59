package daemon

import (
	"context"
	"net/http"

	"github.com/headnode/headnode/cmd/headnode/internal/config"
	"github.com/headnode/headnode/netcfg"
)

// The power part. Scaffolding: the issue that builds power fills in these
// hooks; until then the part does nothing and contributes nothing.

// powerState is the power part of the state (loop goroutine only).
type powerState struct{}

// powerHandles are what control handlers need from the running part.
type powerHandles struct{}

func powerChanged(old, new *config.Config) bool { return false }

func (d *Daemon) startPower(ctx context.Context, cfg *config.Config) (stop func()) {
	return func() {}
}

func (st *state) powerHealth(h *health) {}

func (d *Daemon) powerRoutes(mux *http.ServeMux) {}

// powerOnLinks is called on the loop with every interface snapshot.
func (d *Daemon) powerOnLinks(st *state, links map[string]netcfg.LinkState) {}
