// Package trace appends one JSON line per hardware transaction to a file:
// the I2C and HID traces users turn on with [hardware] i2c_trace and
// hid_trace to debug a garbled LCD or a silent LED, on real and emulated
// hardware alike.
package trace

import (
	"encoding/json"
	"os"
	"sync"
	"time"
)

// Log is a trace file. Each Write appends one line and reaches the file
// before Write returns (one write(2) per line, no buffering), so a trace is
// complete up to the moment the daemon died. A nil *Log discards.
type Log struct {
	mu sync.Mutex
	f  *os.File
}

// Open opens path for appending, creating it (mode 0644) if needed.
func Open(path string) (*Log, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	return &Log{f: f}, nil
}

// Write appends v as one JSON line after setting its time field through
// stamp. Errors writing the trace are dropped: a full disk must not stop
// the hardware.
func (l *Log) Write(v any) {
	if l == nil {
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	b = append(b, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = l.f.Write(b)
}

// Now returns the time to stamp an entry with: RFC 3339 in UTC with
// nanoseconds ("2026-11-22T10:00:00.123456789Z").
func (l *Log) Now() string {
	if l == nil {
		return ""
	}
	return time.Now().UTC().Format(time.RFC3339Nano)
}

// Close closes the file.
func (l *Log) Close() error {
	if l == nil {
		return nil
	}
	return l.f.Close()
}
