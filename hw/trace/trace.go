// Package trace appends one JSON line per hardware transaction to a file:
// the I2C and HID traces users turn on with [hardware] i2c_trace and
// hid_trace to debug a garbled LCD or a silent LED, on real and emulated
// hardware alike.
//
// A trace is bounded: once its file reaches MaxSize it is renamed to
// PATH.1 (replacing the one before) and a new file is started, so a trace
// takes at most twice MaxSize on disk however long it runs, and always
// holds the most recent transactions.
package trace

import (
	"encoding/json"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// MaxSize is the size at which a trace file is rotated. An idle daemon
// traces about 40 MB of I2C a day (the LCD refresh and the power board's
// read-back), so this keeps the last few hours of it.
const MaxSize = 16 << 20

// Log is a trace file. Each Write appends one line and reaches the file
// before Write returns (one write(2) per line, no buffering), so a trace is
// complete up to the moment the daemon died. A nil *Log, or one without a
// file, discards.
type Log struct {
	mu   sync.Mutex
	f    *os.File
	path string
	size int64
	max  int64
	on   atomic.Bool
}

// Open opens path for appending, creating it (mode 0644) if needed.
func Open(path string) (*Log, error) {
	l := New()
	return l, l.SetPath(path)
}

// New returns a Log that discards until SetPath gives it a file.
func New() *Log { return &Log{max: MaxSize} }

// SetPath moves the trace to path ("" turns it off); the file before is
// closed. On an error the trace is off.
func (l *Log) SetPath(path string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil && path == l.path {
		return nil
	}
	l.closeLocked()
	if path == "" {
		return nil
	}
	f, size, err := openAppend(path)
	if err != nil {
		return err
	}
	l.f, l.path, l.size = f, path, size
	l.on.Store(true)
	return nil
}

func openAppend(path string) (*os.File, int64, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, fi.Size(), nil
}

// Enabled reports whether entries go anywhere; callers skip building them
// when not.
func (l *Log) Enabled() bool { return l != nil && l.on.Load() }

// Write appends v as one JSON line. Errors writing the trace are dropped:
// a full disk must not stop the hardware.
func (l *Log) Write(v any) {
	if !l.Enabled() {
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	b = append(b, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return
	}
	if l.size > 0 && l.size+int64(len(b)) > l.max {
		l.rotateLocked()
	}
	n, _ := l.f.Write(b)
	l.size += int64(n)
}

// rotateLocked renames the file to PATH.1 and starts a new one. When that
// fails (another program holds PATH.1, the directory became read-only),
// the file is emptied instead: the bound matters more than the history.
func (l *Log) rotateLocked() {
	if err := os.Rename(l.path, l.path+".1"); err == nil {
		if f, size, err := openAppend(l.path); err == nil {
			l.f.Close()
			l.f, l.size = f, size
			return
		}
	}
	if l.f.Truncate(0) == nil {
		l.size = 0
	}
}

// Now returns the time to stamp an entry with: RFC 3339 in UTC with
// nanoseconds ("2026-11-22T10:00:00.123456789Z").
func (l *Log) Now() string {
	if !l.Enabled() {
		return ""
	}
	return time.Now().UTC().Format(time.RFC3339Nano)
}

// Close closes the file.
func (l *Log) Close() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closeLocked()
}

func (l *Log) closeLocked() error {
	l.on.Store(false)
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f, l.path, l.size = nil, "", 0
	return err
}
