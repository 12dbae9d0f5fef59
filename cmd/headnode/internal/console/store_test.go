package console

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func diskBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		st, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		n += st.Size()
	}
	return n
}

// What a console captured is there again after a restart, and its files
// never take more than twice the ring, however much is written and
// however it is batched: a trickle, or floods of more than a ring between
// two flushes.
func TestLogFilesBoundedAndReloaded(t *testing.T) {
	dir := t.TempDir()
	const size = 16 << 10
	c := newConsole("p1", size, dir, nullLog)
	n := 0
	write := func(lines int) {
		for range lines {
			c.output(fmt.Appendf(nil, "line %06d %s\n", n, strings.Repeat("z", n%50)), t0.Add(time.Duration(n)*time.Millisecond))
			n++
		}
	}
	var maxDisk int64
	for round := range 60 {
		lines := 20 // a trickle
		if round%7 == 3 {
			lines = 2000 // a flood: far more than a ring between flushes
		}
		write(lines)
		if err := c.flush(); err != nil {
			t.Fatal(err)
		}
		maxDisk = max(maxDisk, diskBytes(t, dir))
	}
	if maxDisk > 2*size {
		t.Errorf("the log files took up to %d bytes for a %d-byte ring", maxDisk, size)
	}
	t.Logf("%d lines written; at most %d bytes on disk for a %d-byte ring", n, maxDisk, size)

	want := texts(c.Tail(0))
	again := newConsole("p1", size, dir, nullLog)
	if got := texts(again.Tail(0)); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after a restart the ring holds %d records (last %q), before it %d (last %q)", len(got), got[len(got)-1], len(want), want[len(want)-1])
	}
	// Nothing new: nothing is written.
	st, _ := os.Stat(filepath.Join(dir, "p1.log"))
	if err := again.flush(); err != nil {
		t.Fatal(err)
	}
	st2, _ := os.Stat(filepath.Join(dir, "p1.log"))
	if !st2.ModTime().Equal(st.ModTime()) || st2.Size() != st.Size() {
		t.Error("a flush with nothing new wrote to disk")
	}
}

// A log file cut short by a crash loses its last record only.
func TestLogFileTornRecord(t *testing.T) {
	dir := t.TempDir()
	c := newConsole("p2", 8<<10, dir, nullLog)
	c.output([]byte("one\ntwo\nthree\n"), t0)
	if err := c.flush(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "p2.log")
	b, _ := os.ReadFile(p)
	os.WriteFile(p, b[:len(b)-3], 0o640)
	again := newConsole("p2", 8<<10, dir, nullLog)
	if got := texts(again.Tail(0)); fmt.Sprint(got) != fmt.Sprint([]string{"one\n", "two\n"}) {
		t.Errorf("after a torn write: %q", got)
	}
}
