package i2cbus

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"periph.io/x/conn/v3/i2c/i2ctest"

	"github.com/headnode/headnode/hw/trace"
)

func TestTraceWritesOneLinePerTransaction(t *testing.T) {
	path := filepath.Join(t.TempDir(), "i2c.jsonl")
	log, err := trace.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	bus := &i2ctest.Playback{Ops: []i2ctest.IO{
		{Addr: 0x27, W: []byte{0x0c, 0x08}},
		{Addr: 0x20, W: []byte{0x00}, R: []byte{0xf0}},
	}, DontPanic: true}
	tr := NewTraced(bus, 1, log)
	if err := tr.Tx(0x27, []byte{0x0c, 0x08}, nil); err != nil {
		t.Fatal(err)
	}
	r := make([]byte, 1)
	if err := tr.Tx(0x20, []byte{0x00}, r); err != nil || r[0] != 0xf0 {
		t.Fatalf("read %x, %v", r, err)
	}
	// Playback has no more operations: this one fails, as a NACK would.
	if err := tr.Tx(0x3f, []byte{0x01}, nil); err == nil {
		t.Fatal("expected an error for an unexpected transaction")
	}
	log.Close()

	f, _ := os.Open(path)
	defer f.Close()
	var got []Entry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		if e.T == "" {
			t.Errorf("line %q has no time", sc.Text())
		}
		e.T = ""
		got = append(got, e)
	}
	want := []Entry{
		{Bus: 1, Addr: 0x27, W: "0c08"},
		{Bus: 1, Addr: 0x20, W: "00", R: "f0"},
		{Bus: 1, Addr: 0x3f, W: "01"},
	}
	if len(got) != 3 {
		t.Fatalf("got %d lines, want 3: %+v", len(got), got)
	}
	for i := range 2 {
		if got[i] != want[i] {
			t.Errorf("line %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if got[2].Err == "" || got[2].Addr != 0x3f {
		t.Errorf("failed transaction traced as %+v", got[2])
	}
	if tr.Errors() != 1 || tr.Transactions() != 3 {
		t.Errorf("errors %d, transactions %d", tr.Errors(), tr.Transactions())
	}
}

func TestOpenMissingBusSaysHowToEnable(t *testing.T) {
	if _, err := os.Stat("/dev/i2c-42"); err == nil {
		t.Skip("this machine has /dev/i2c-42")
	}
	_, err := Open(42)
	if err == nil {
		t.Fatal("opened a bus that does not exist")
	}
	if !strings.Contains(err.Error(), "dtparam=i2c_arm=on") {
		t.Errorf("error %q does not say how to enable I2C", err)
	}
}

// TestOpenMissingBusSaysHowToEnableIt: no /dev/i2c-N is one line naming the
// device and how to turn I2C on.
func TestOpenMissingBusSaysHowToEnableIt(t *testing.T) {
	_, err := Open(97)
	want := "i2c bus 97 not available: /dev/i2c-97 does not exist; enable I2C with dtparam=i2c_arm=on in config.txt and load i2c-dev"
	if err == nil || err.Error() != want {
		t.Errorf("Open(97): %v\nwant: %s", err, want)
	}
}
