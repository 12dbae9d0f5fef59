package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
	"github.com/headnode/headnode/cmd/headnode/internal/config"
	"github.com/headnode/headnode/display"
	"github.com/headnode/headnode/display/lcd"
	"github.com/headnode/headnode/display/led"
	"github.com/headnode/headnode/hw/hidraw"
	"github.com/headnode/headnode/hw/lcdrom"
	"github.com/headnode/headnode/hw/sysinfo"
	"github.com/headnode/headnode/hw/wake"
)

// The display part: it follows the published status and shows it on the
// LCD and the status LED (package display does the rendering and keeps
// the devices going); what it finds out about the devices comes back to
// the loop as events, into status.Display.

// displayHandles are what control handlers need from the running part.
type displayHandles struct {
	light atomic.Pointer[display.Light]
}

func displayChanged(old, new *config.Config) bool {
	return old.LCD != new.LCD || old.LED != new.LED
}

func (d *Daemon) startDisplay(parent context.Context, cfg *config.Config) (stop func()) {
	ctx, cancel := context.WithCancel(parent)
	var wg sync.WaitGroup
	cols, rows := cfg.LCD.Dimensions()
	lcdState, ledState := api.DeviceDisabled, api.DeviceDisabled
	if cfg.LCD.Enabled {
		lcdState = api.DeviceStarting
	}
	if cfg.LED.Enabled {
		ledState = api.DeviceStarting
	}
	d.send(ctx, func(st *state) {
		st.status.Display = api.Display{
			LCD: api.LCD{State: lcdState, Bus: cfg.LCD.I2CBus, Size: cfg.LCD.Size, Charset: cfg.LCD.Charset},
			LED: api.LED{State: ledState},
		}
	})
	// final tells the devices what to show as the part stops: "stopped"
	// when the daemon is stopping, nothing special on a reload.
	final := func() (display.Status, bool) {
		s, _ := d.current()
		return displayStatus(s, nil), s.Health.State == api.HealthStopped
	}

	var screen *display.Screen
	if cfg.LCD.Enabled {
		screen = display.NewScreen(display.ScreenOpts{
			Open:    func() (display.LCD, error) { return d.openLCD(cfg) },
			Cols:    cols,
			Rows:    rows,
			Refresh: cfg.LCD.Refresh.Duration,
			Report: func(r display.ScreenReport) {
				v := d.lcdView(r, cfg)
				d.send(ctx, func(st *state) { st.status.Display.LCD = v })
			},
		})
		wg.Go(func() { screen.Run(ctx, final) })
	}
	var light *display.Light
	if cfg.LED.Enabled {
		light = display.NewLight(display.LightOpts{
			Find:       d.ledFinder(cfg),
			Brightness: cfg.LED.Brightness,
			Report: func(r display.LightReport) {
				v := ledView(r, d.hw.Emulated())
				d.send(ctx, func(st *state) { st.status.Display.LED = v })
			},
		})
		d.display.light.Store(light)
		wg.Go(func() {
			light.Run(ctx, func() bool { _, stopping := final(); return stopping })
		})
	}
	if screen != nil || light != nil {
		wg.Go(func() { d.followStatus(ctx, screen, light, rows == 4) })
	}
	return func() {
		cancel()
		wg.Wait()
		d.display.light.Store(nil)
	}
}

// followStatus hands every published status to the devices as it
// arrives: an address change reaches the glass in the time it takes to
// write one row. 4-row panels also show the temperature, re-read every
// 10 s.
func (d *Daemon) followStatus(ctx context.Context, screen *display.Screen, light *display.Light, sys bool) {
	host, _ := os.Hostname()
	var tick <-chan time.Time
	if sys {
		t := wake.NewTicker(10 * time.Second)
		defer t.Stop()
		tick = t.C
	}
	for {
		s, changed := d.current()
		ds := displayStatus(s, nil)
		if sys {
			ds.Hostname = host
			ds.TempC, ds.HasTemp = sysinfo.Temperature(d.hw.SysRoot())
			ds.Throttled = sysinfo.Throttled(d.hw.SysRoot())
		}
		if screen != nil {
			screen.Show(ds)
		}
		if light != nil {
			light.Show(ds)
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-tick:
		}
	}
}

// displayStatus converts the published status for package display. nodes
// are the cluster nodes in order p1, p2, ...; see displayNodes.
func displayStatus(s *api.Status, nodes []display.Node) display.Status {
	if nodes == nil {
		nodes = displayNodes(s)
	}
	return display.Status{
		Uplink: display.Uplink{
			Interface: s.Uplink.Interface,
			Exists:    s.Uplink.Exists,
			Carrier:   s.Uplink.Carrier,
			IPv4:      s.Uplink.Address,
			IPv6:      s.Uplink.IPv6,
		},
		Health: display.Health{State: s.Health.State, Class: s.Health.Class, Reasons: s.Health.Reasons},
		NAT:    s.NAT.State,
		Nodes:  nodes,
	}
}

// displayNodes is where node states reach the per-node LEDs (LEDs 1..N of
// a multi-LED stick show p1..pN). It returns the nodes in order p1, p2,
// ..., each with one of display.NodeOff, NodeBooting, NodeUp,
// NodeUnreachable, NodeUnknown; nil (no node LEDs lit, "NAT ok" without a
// node count on the LCD) while the status carries no node power.
func displayNodes(s *api.Status) []display.Node {
	states := make([][2]string, 0, len(s.Power.Nodes))
	for _, n := range s.Power.Nodes {
		states = append(states, [2]string{n.Name, n.State})
	}
	return nodesFromStates(states)
}

// nodesFromStates builds the node list from plain (name, state) pairs,
// e.g. the power part's nodes; states other than the five known ones
// count as unknown.
func nodesFromStates(states [][2]string) []display.Node {
	if len(states) == 0 {
		return nil
	}
	out := make([]display.Node, 0, len(states))
	for _, ns := range states {
		st := display.NodeState(ns[1])
		switch st {
		case display.NodeOff, display.NodeBooting, display.NodeUp, display.NodeUnreachable, display.NodeUnknown:
		default:
			st = display.NodeUnknown
		}
		out = append(out, display.Node{Name: ns[0], State: st})
	}
	return out
}

// openLCD finds and initialises the LCD on its bus.
func (d *Daemon) openLCD(cfg *config.Config) (display.LCD, error) {
	bus, err := d.hw.I2C(cfg.LCD.I2CBus)
	if err != nil {
		return nil, err
	}
	cols, rows := cfg.LCD.Dimensions()
	addr, _ := cfg.LCD.I2CAddress()
	rom, _ := lcdrom.ByName(cfg.LCD.Charset)
	o := &lcd.Opts{Addr: addr, Cols: cols, Rows: rows, ROM: rom, Backlight: cfg.LCD.Backlight}
	if cfg.LCD.PinMap != "auto" {
		pm, _ := lcd.ParsePinMap(cfg.LCD.PinMap)
		o.PinMap = &pm
	}
	return lcd.New(bus, o)
}

// ledFinder finds the status light, a BlinkStick or blink(1), among the
// machine's HID devices. Every feature report goes to [hardware] hid_trace.
func (d *Daemon) ledFinder(cfg *config.Config) func() (led.Device, error) {
	f := &led.Finder{
		Root:   d.hw.HIDRoot(),
		Serial: cfg.LED.Serial,
		Open:   func(path string) (led.FeatureDevice, error) { return d.hw.OpenHID(path) },
		Wrap: func(dev led.FeatureDevice, info hidraw.Info) led.FeatureDevice {
			return d.hw.TraceHID(dev, info.Serial)
		},
	}
	return f.Find
}

// lcdView is the LCD as users see it. Rows is what the driver last wrote,
// or the glass itself where the machine can read it back.
func (d *Daemon) lcdView(r display.ScreenReport, cfg *config.Config) api.LCD {
	v := api.LCD{State: api.DeviceMissing, Error: r.Err, Bus: cfg.LCD.I2CBus, Size: cfg.LCD.Size, Charset: cfg.LCD.Charset, Rows: r.Rows}
	if r.Found {
		v.State = api.DeviceOK
	}
	if r.Info.Addr != 0 {
		v.Address = fmt.Sprintf("0x%02x", r.Info.Addr)
		v.Chip, v.PinMap, v.PinMapDetected = r.Info.Chip, r.Info.PinMap, r.Info.Detected
	}
	if rows, ok := d.hw.Glass(); ok {
		v.Rows = rows
	}
	v.Emulated = d.hw.Emulated()
	return v
}

func ledView(r display.LightReport, emulated bool) api.LED {
	v := api.LED{State: api.DeviceMissing, Error: r.Err, Kind: r.Kind, Serial: r.Serial, LEDs: r.LEDs, Mode: r.Mode, Pattern: r.Pattern, Emulated: emulated}
	if r.Found {
		v.State = api.DeviceOK
	}
	for _, c := range r.Colors {
		v.Colors = append(v.Colors, c.String())
	}
	return v
}

// displayHealth: a missing LCD or LED degrades health, never fails it:
// the cluster works without them.
func (st *state) displayHealth(h *health) {
	ds := st.status.Display
	if ds.LCD.State == api.DeviceMissing {
		h.degrade("LCD missing: " + firstLine(ds.LCD.Error))
	}
	if ds.LED.State == api.DeviceMissing {
		h.degrade("status LED missing: " + firstLine(ds.LED.Error))
	}
}

// displayRoutes: POST /v1/led {"mode": "identify"|"stopped"|"auto"}.
func (d *Daemon) displayRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/led", d.handleLED)
}

func (d *Daemon) handleLED(w http.ResponseWriter, r *http.Request) {
	var req api.LEDRequest
	if !api.ReadRequest(w, r, &req, `send {"mode": "identify"}`) {
		return
	}
	switch req.Mode {
	case display.ModeIdentify, display.ModeStopped, display.ModeAuto:
	default:
		api.ReplyError(w, http.StatusBadRequest, fmt.Errorf("unknown LED mode %q: use identify, stopped or auto", req.Mode))
		return
	}
	light := d.display.light.Load()
	if light == nil {
		api.ReplyError(w, http.StatusServiceUnavailable, errors.New("the status LED is turned off in the configuration ([led] enabled = false)"))
		return
	}
	s, _ := d.current()
	if req.Mode == display.ModeIdentify && s.Display.LED.State != api.DeviceOK {
		api.ReplyError(w, http.StatusServiceUnavailable, fmt.Errorf("no status LED to identify: %s", s.Display.LED.Error))
		return
	}
	if err := light.SetMode(req.Mode); err != nil {
		api.ReplyError(w, http.StatusBadRequest, err)
		return
	}
	change := map[string]string{
		display.ModeIdentify: fmt.Sprintf("status LED: identify (white blinking) for %s, then auto", display.IdentifyFor),
		display.ModeStopped:  "status LED: stopped (until `headnode led auto`)",
		display.ModeAuto:     "status LED: auto (follows health)",
	}[req.Mode]
	api.Reply(w, http.StatusOK, api.Changes{Changes: []string{change}})
}
