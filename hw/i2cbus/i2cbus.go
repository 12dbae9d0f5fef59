// Package i2cbus opens I2C buses through periph.io and wraps them with
// tracing and error counting.
package i2cbus

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2creg"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/host/v3"

	"github.com/headnode/headnode/hw/trace"
)

var initOnce = sync.OnceValue(func() error {
	_, err := host.Init()
	return err
})

// Open opens /dev/i2c-<n> through periph. A missing bus (I2C not enabled in
// config.txt, or not a Pi) is an error that says how to enable it.
func Open(n int) (i2c.BusCloser, error) {
	if err := initOnce(); err != nil {
		return nil, fmt.Errorf("i2c: periph init: %w", err)
	}
	const enable = "enable I2C with dtparam=i2c_arm=on in config.txt and load i2c-dev"
	// periph's own message for a missing bus asks whether Init was called,
	// which misleads a user: name the missing device instead.
	dev := fmt.Sprintf("/dev/i2c-%d", n)
	if _, err := os.Stat(dev); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("i2c bus %d not available: %s does not exist; %s", n, dev, enable)
	}
	b, err := i2creg.Open(fmt.Sprint(n))
	if err != nil {
		return nil, fmt.Errorf("i2c bus %d (%s) not available: %v; %s", n, dev, err, enable)
	}
	return b, nil
}

// Entry is one line of the I2C trace ([hardware] i2c_trace), e.g.
// {"t":"...","bus":1,"addr":39,"w":"0c08","r":"","err":""}
type Entry struct {
	T    string `json:"t"`
	Bus  int    `json:"bus"`
	Addr uint16 `json:"addr"`
	W    string `json:"w"`
	R    string `json:"r"`
	Err  string `json:"err"`
}

// Traced wraps a bus: every transaction is appended to the trace log (if
// any) and failed transactions are counted.
type Traced struct {
	i2c.Bus
	N      int        // bus number, for the trace
	Log    *trace.Log // nil: no trace
	errors atomic.Int64
	txs    atomic.Int64
}

// NewTraced wraps bus number n.
func NewTraced(b i2c.Bus, n int, log *trace.Log) *Traced {
	return &Traced{Bus: b, N: n, Log: log}
}

// Tx implements i2c.Bus.
func (t *Traced) Tx(addr uint16, w, r []byte) error {
	err := t.Bus.Tx(addr, w, r)
	t.txs.Add(1)
	if err != nil {
		t.errors.Add(1)
	}
	if t.Log.Enabled() {
		e := Entry{T: t.Log.Now(), Bus: t.N, Addr: addr, W: hex.EncodeToString(w), R: hex.EncodeToString(r)}
		if err != nil {
			e.Err = err.Error()
			e.R = ""
		}
		t.Log.Write(e)
	}
	return err
}

// SetSpeed implements i2c.Bus.
func (t *Traced) SetSpeed(f physic.Frequency) error { return t.Bus.SetSpeed(f) }

// Errors counts failed transactions.
func (t *Traced) Errors() int64 { return t.errors.Load() }

// Transactions counts all transactions.
func (t *Traced) Transactions() int64 { return t.txs.Load() }
