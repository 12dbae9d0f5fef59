package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
	"github.com/headnode/headnode/hw/emu"
)

// simRoutes inject faults into the emulated hardware: what the soak test
// does to the daemon, and what a user of `headnode sim` can try. They exist
// only with [hardware] backend = "sim", and only on the control socket.
//
//	POST /v1/sim/i2c {"bus": 1, "nack_rate": 0.01, "error_rate": 0.005}
//	GET  /v1/sim/i2c?bus=1           transactions and injected faults
//	POST /v1/sim/lcd {"on": false}   the backpack loses power (true: back)
//	POST /v1/sim/led {"on": false}   the stick is unplugged (true: replugged)
func (d *Daemon) simRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/sim/i2c", func(w http.ResponseWriter, r *http.Request) {
		var req api.SimI2C
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("bad request body: %v; send {\"bus\": 1, \"nack_rate\": 0.01, \"error_rate\": 0.005}", err))
			return
		}
		if req.NACKRate < 0 || req.NACKRate > 1 || req.ErrorRate < 0 || req.ErrorRate > 1 {
			writeError(w, http.StatusBadRequest, fmt.Errorf("rates must be 0 to 1, got nack_rate %g, error_rate %g", req.NACKRate, req.ErrorRate))
			return
		}
		bus := d.hw.SimBus(req.Bus)
		bus.SetNACKRate(req.NACKRate, 1)
		if req.ErrorRate > 0 {
			rng := rand.New(rand.NewPCG(2, 3))
			rate := req.ErrorRate
			// Called under the bus lock: the generator needs no other.
			bus.SetInject(func(uint16, []byte) error {
				if rng.Float64() < rate {
					return fmt.Errorf("emulated bus error: %w", emu.ErrBus)
				}
				return nil
			})
		} else {
			bus.SetInject(nil)
		}
		d.log.Warn("emulated I2C faults", "bus", req.Bus, "nack_rate", req.NACKRate, "error_rate", req.ErrorRate)
		writeJSON(w, http.StatusOK, req)
	})
	mux.HandleFunc("GET /v1/sim/i2c", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.URL.Query().Get("bus"))
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("bus %q is not a bus number; ask for /v1/sim/i2c?bus=1", r.URL.Query().Get("bus")))
			return
		}
		st := d.hw.SimBus(n).Stats()
		writeJSON(w, http.StatusOK, api.SimI2CStats{Transactions: st.Transactions, Injected: st.Injected})
	})
	mux.HandleFunc("POST /v1/sim/lcd", func(w http.ResponseWriter, r *http.Request) {
		d.simSwitch(w, r, "LCD backpack power", func(on bool) error {
			m := d.display.simLCD.Load()
			if m == nil {
				return errors.New("no emulated LCD (is [lcd] enabled?)")
			}
			if on {
				m.PowerOn()
			} else {
				m.PowerOff()
			}
			return nil
		})
	})
	mux.HandleFunc("POST /v1/sim/led", func(w http.ResponseWriter, r *http.Request) {
		d.simSwitch(w, r, "BlinkStick plugged in", func(on bool) error {
			s := d.display.simStick.Load()
			if s == nil {
				return errors.New("no emulated LED (is [led] enabled?)")
			}
			if on {
				s.Plug()
			} else {
				s.Unplug()
			}
			return nil
		})
	})
}

func (d *Daemon) simSwitch(w http.ResponseWriter, r *http.Request, what string, set func(bool) error) {
	var req api.SimDevice
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("bad request body: %v; send {\"on\": false} or {\"on\": true}", err))
		return
	}
	if err := set(req.On); err != nil {
		writeError(w, http.StatusConflict, err)
		return
	}
	d.log.Warn("emulated fault", "what", what, "on", req.On)
	writeJSON(w, http.StatusOK, req)
}
