package daemon

import (
	"fmt"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/headnode/headnode/cmd/headnode/internal/config"
	"github.com/headnode/headnode/hw/emu"
	"github.com/headnode/headnode/hw/i2cbus"
	"github.com/headnode/headnode/hw/trace"
)

// hardware hands the parts their buses: real ones opened through periph,
// or, with [hardware] backend = "sim", the emulated buses of one simulated
// machine that every part shares (the expander and the LCD sit on the same
// emulated bus 1, as on a real ClusterHAT with an LCD). Either way each bus
// is wrapped once with tracing ([hardware] i2c_trace) and error counting.
type hardware struct {
	sim      bool
	i2cTrace *trace.Log
	hidTrace *trace.Log

	mu    sync.Mutex
	buses map[int]*i2cbus.Traced
	emu   map[int]*emu.Bus
}

// newHardware opens the trace files named in cfg. A trace that cannot be
// opened is reported and left off; it never stops the daemon.
func newHardware(cfg *config.Config) (*hardware, []error) {
	h := &hardware{sim: cfg.Hardware.Backend == "sim", buses: map[int]*i2cbus.Traced{}, emu: map[int]*emu.Bus{}}
	var errs []error
	if p := cfg.Hardware.I2CTrace; p != "" {
		l, err := trace.Open(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("hardware.i2c_trace: %w", err))
		}
		h.i2cTrace = l
	}
	if p := cfg.Hardware.HIDTrace; p != "" {
		l, err := trace.Open(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("hardware.hid_trace: %w", err))
		}
		h.hidTrace = l
	}
	return h, errs
}

// I2C returns bus n, opening it on first use. Parts share the returned
// bus; its transactions are serialized by the kernel (or the emulation).
func (h *hardware) I2C(n int) (*i2cbus.Traced, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if b, ok := h.buses[n]; ok {
		return b, nil
	}
	var t *i2cbus.Traced
	if h.sim {
		t = i2cbus.NewTraced(h.simBusLocked(n), n, h.i2cTrace)
	} else {
		b, err := i2cbus.Open(n)
		if err != nil {
			return nil, err
		}
		t = i2cbus.NewTraced(b, n, h.i2cTrace)
	}
	h.buses[n] = t
	return t, nil
}

// SimBus returns emulated bus n for parts to attach their emulated chips
// to; nil when running on real hardware.
func (h *hardware) SimBus(n int) *emu.Bus {
	if !h.sim {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.simBusLocked(n)
}

func (h *hardware) simBusLocked(n int) *emu.Bus {
	b, ok := h.emu[n]
	if !ok {
		b = emu.NewBus(fmt.Sprintf("emu-i2c-%d", n))
		h.emu[n] = b
	}
	return b
}

// HIDTrace is the HID trace log, nil when off.
func (h *hardware) HIDTrace() *trace.Log { return h.hidTrace }

// Close closes the trace files.
func (h *hardware) Close() {
	h.i2cTrace.Close()
	h.hidTrace.Close()
}

var (
	i2cTxDesc  = prometheus.NewDesc("headnode_i2c_transactions_total", "I2C transactions on the bus.", []string{"bus"}, nil)
	i2cErrDesc = prometheus.NewDesc("headnode_i2c_errors_total", "I2C transactions that failed (NACK, bus error).", []string{"bus"}, nil)
)

// Describe and Collect make the buses' counters Prometheus metrics.
func (h *hardware) Describe(ch chan<- *prometheus.Desc) {
	ch <- i2cTxDesc
	ch <- i2cErrDesc
}

func (h *hardware) Collect(ch chan<- prometheus.Metric) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for n, b := range h.buses {
		bus := strconv.Itoa(n)
		ch <- prometheus.MustNewConstMetric(i2cTxDesc, prometheus.CounterValue, float64(b.Transactions()), bus)
		ch <- prometheus.MustNewConstMetric(i2cErrDesc, prometheus.CounterValue, float64(b.Errors()), bus)
	}
}
