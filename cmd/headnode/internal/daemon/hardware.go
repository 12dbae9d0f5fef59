package daemon

import (
	"fmt"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/headnode/headnode/cmd/headnode/internal/config"
	"github.com/headnode/headnode/hw/machine"
	"github.com/headnode/headnode/hw/trace"
)

// traces are the [hardware] i2c_trace and hid_trace files. They live as
// long as the machine that writes them, and a reload moves them (or turns
// them on or off) without touching the hardware.
type traces struct{ i2c, hid *trace.Log }

func newTraces() traces { return traces{i2c: trace.New(), hid: trace.New()} }

// apply points the traces at h's paths. One that cannot be opened is off
// and reported, one line per key; it never stops the daemon.
func (t traces) apply(h config.Hardware) (problems []string) {
	for _, tr := range []struct {
		key, path string
		log       *trace.Log
	}{{"hardware.i2c_trace", h.I2CTrace, t.i2c}, {"hardware.hid_trace", h.HIDTrace, t.hid}} {
		if err := tr.log.SetPath(tr.path); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v (the trace is off)", tr.key, err))
		}
	}
	return problems
}

func (t traces) close() {
	t.i2c.Close()
	t.hid.Close()
}

var (
	i2cTxDesc  = prometheus.NewDesc("headnode_i2c_transactions_total", "I2C transactions on the bus.", []string{"bus"}, nil)
	i2cErrDesc = prometheus.NewDesc("headnode_i2c_errors_total", "I2C transactions that failed (NACK, bus error).", []string{"bus"}, nil)
)

// busMetrics makes the counters of the machine's I2C buses Prometheus
// metrics.
type busMetrics struct{ m *machine.Machine }

func (busMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- i2cTxDesc
	ch <- i2cErrDesc
}

func (b busMetrics) Collect(ch chan<- prometheus.Metric) {
	for _, t := range b.m.OpenI2C() {
		bus := strconv.Itoa(t.N)
		ch <- prometheus.MustNewConstMetric(i2cTxDesc, prometheus.CounterValue, float64(t.Transactions()), bus)
		ch <- prometheus.MustNewConstMetric(i2cErrDesc, prometheus.CounterValue, float64(t.Errors()), bus)
	}
}
