package sim

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
	"github.com/headnode/headnode/hw/machine"
)

// FaultRoutes adds the routes that break an emulated machine's hardware
// on purpose: what the soak test does to the daemon, and what a user of
// `headnode sim` can try. f is the machine's Faults, nil on real hardware,
// which gets no such routes. They belong on the control socket only.
//
//	POST /v1/sim/i2c {"bus": 1, "nack_rate": 0.01, "error_rate": 0.005,
//	                  "flip_rate": 0.01, "flip_addr": 32}
//	GET  /v1/sim/i2c?bus=1           transactions and injected faults
//	POST /v1/sim/lcd {"on": false}   the backpack loses power (true: back)
//	POST /v1/sim/led {"on": false}   the stick is unplugged (true: replugged)
func FaultRoutes(mux *http.ServeMux, f *machine.Faults, log *slog.Logger) {
	if f == nil {
		return
	}
	mux.HandleFunc("POST /v1/sim/i2c", func(w http.ResponseWriter, r *http.Request) {
		var req api.SimI2C
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			api.ReplyError(w, http.StatusBadRequest, fmt.Errorf("bad request body: %v; send {\"bus\": 1, \"nack_rate\": 0.01, \"error_rate\": 0.005}", err))
			return
		}
		if req.NACKRate < 0 || req.NACKRate > 1 || req.ErrorRate < 0 || req.ErrorRate > 1 || req.FlipRate < 0 || req.FlipRate > 1 {
			api.ReplyError(w, http.StatusBadRequest, fmt.Errorf("rates must be 0 to 1, got nack_rate %g, error_rate %g, flip_rate %g", req.NACKRate, req.ErrorRate, req.FlipRate))
			return
		}
		f.SetI2C(req.Bus, req.NACKRate, req.ErrorRate)
		f.SetFlips(req.Bus, req.FlipRate, req.FlipAddr)
		log.Warn("emulated I2C faults", "bus", req.Bus, "nack_rate", req.NACKRate, "error_rate", req.ErrorRate, "flip_rate", req.FlipRate, "flip_addr", req.FlipAddr)
		api.Reply(w, http.StatusOK, req)
	})
	mux.HandleFunc("GET /v1/sim/i2c", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.URL.Query().Get("bus"))
		if err != nil {
			api.ReplyError(w, http.StatusBadRequest, fmt.Errorf("bus %q is not a bus number; ask for /v1/sim/i2c?bus=1", r.URL.Query().Get("bus")))
			return
		}
		st := f.I2C(n)
		api.Reply(w, http.StatusOK, api.SimI2CStats{Transactions: st.Transactions, Injected: st.Injected, Flipped: st.Flipped})
	})
	mux.HandleFunc("POST /v1/sim/lcd", func(w http.ResponseWriter, r *http.Request) {
		faultSwitch(w, r, log, "LCD backpack power", f.SetLCDPower)
	})
	mux.HandleFunc("POST /v1/sim/led", func(w http.ResponseWriter, r *http.Request) {
		faultSwitch(w, r, log, "BlinkStick plugged in", f.SetLEDPlugged)
	})
}

func faultSwitch(w http.ResponseWriter, r *http.Request, log *slog.Logger, what string, set func(bool) error) {
	var req api.SimDevice
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		api.ReplyError(w, http.StatusBadRequest, fmt.Errorf("bad request body: %v; send {\"on\": false} or {\"on\": true}", err))
		return
	}
	if err := set(req.On); err != nil {
		api.ReplyError(w, http.StatusConflict, err)
		return
	}
	log.Warn("emulated fault", "what", what, "on", req.On)
	api.Reply(w, http.StatusOK, req)
}
