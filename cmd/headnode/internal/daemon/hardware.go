package daemon

import (
	"fmt"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/headnode/headnode/cmd/headnode/internal/config"
	"github.com/headnode/headnode/hw/machine"
	"github.com/headnode/headnode/hw/trace"
)

// openTraces opens the trace files [hardware] names. One that cannot be
// opened is reported and left off; it never stops the daemon.
func openTraces(h config.Hardware) (i2c, hid *trace.Log, errs []error) {
	open := func(key, path string) *trace.Log {
		if path == "" {
			return nil
		}
		l, err := trace.Open(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
		}
		return l
	}
	return open("hardware.i2c_trace", h.I2CTrace), open("hardware.hid_trace", h.HIDTrace), errs
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
