package trace

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

type entry struct {
	N int    `json:"n"`
	P string `json:"p"`
}

// TestRotation: past the cap the file becomes PATH.1 (the one before it
// goes) and a new one starts, so the trace never takes more than twice
// the cap, and the newest lines are always there.
func TestRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "i2c.jsonl")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.max = 1000
	pad := strings.Repeat("x", 80)
	for i := range 100 { // about 9 KB: rotated several times
		l.Write(entry{N: i, P: pad})
	}
	cur, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	old, err := os.ReadFile(path + ".1")
	if err != nil {
		t.Fatal(err)
	}
	if len(cur) > 1000 || len(old) > 1000 {
		t.Errorf("sizes %d and %d, cap 1000", len(cur), len(old))
	}
	if !bytes.HasSuffix(cur, []byte(`{"n":99,"p":"`+pad+"\"}\n")) {
		t.Errorf("the newest line is not last in the file:\n%s", cur)
	}
	// No line is cut, and the two files hold consecutive lines.
	lines := strings.Split(strings.TrimSuffix(string(old)+string(cur), "\n"), "\n")
	for i, line := range lines {
		want := `{"n":` + strconv.Itoa(100-len(lines)+i) + `,"p":"` + pad + `"}`
		if line != want {
			t.Fatalf("line %d %q, want %q", i, line, want)
		}
	}
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 2 {
		t.Errorf("files: %v, want the trace and one rotated file", ents)
	}
}

// TestRotationCountsWhatWasThere: a trace reopened on an existing file
// counts what it holds against the cap.
func TestRotationCountsWhatWasThere(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.jsonl")
	os.WriteFile(path, bytes.Repeat([]byte("y"), 990), 0o644)
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.max = 1000
	l.Write(entry{N: 1})
	if b, _ := os.ReadFile(path + ".1"); len(b) != 990 {
		t.Errorf("the old content was not rotated out: PATH.1 has %d bytes", len(b))
	}
}

// TestSetPath: a trace turned on, moved and turned off while it is used.
func TestSetPath(t *testing.T) {
	dir := t.TempDir()
	l := New()
	if l.Enabled() {
		t.Error("a new Log is enabled")
	}
	l.Write(entry{N: 1}) // discarded
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	if err := l.SetPath(a); err != nil {
		t.Fatal(err)
	}
	l.Write(entry{N: 2})
	if err := l.SetPath(b); err != nil {
		t.Fatal(err)
	}
	l.Write(entry{N: 3})
	if err := l.SetPath(""); err != nil {
		t.Fatal(err)
	}
	l.Write(entry{N: 4})
	if l.Enabled() {
		t.Error("enabled after SetPath(\"\")")
	}
	ga, _ := os.ReadFile(a)
	gb, _ := os.ReadFile(b)
	if string(ga) != "{\"n\":2,\"p\":\"\"}\n" || string(gb) != "{\"n\":3,\"p\":\"\"}\n" {
		t.Errorf("a %q, b %q", ga, gb)
	}
	if err := l.SetPath(filepath.Join(dir, "missing", "c")); err == nil || l.Enabled() {
		t.Errorf("a path that cannot be opened: %v, enabled %v", err, l.Enabled())
	}
	var nilLog *Log
	nilLog.Write(entry{})
	if nilLog.Enabled() || nilLog.Now() != "" || nilLog.Close() != nil {
		t.Error("a nil Log does not discard")
	}
}
