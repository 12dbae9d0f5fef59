package daemon

import (
	"context"
	"net/http"

	"github.com/headnode/headnode/cmd/headnode/internal/config"
)

// The display part. Scaffolding: the issue that builds display fills in these
// hooks; until then the part does nothing and contributes nothing.

// displayState is the display part of the state (loop goroutine only).
type displayState struct{}

// displayHandles are what control handlers need from the running part.
type displayHandles struct{}

func displayChanged(old, new *config.Config) bool { return false }

func (d *Daemon) startDisplay(ctx context.Context, cfg *config.Config) (stop func()) {
	return func() {}
}

func (st *state) displayHealth(h *health) {}

func (d *Daemon) displayRoutes(mux *http.ServeMux) {}
