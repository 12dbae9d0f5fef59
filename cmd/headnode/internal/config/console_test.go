package config

import (
	"slices"
	"testing"
	"time"
)

func TestConsoleKeys(t *testing.T) {
	c, err := Parse([]byte(`[console]
buffer_size = "1MiB"
persist_interval = "5m"
baud = 9600
[[nodes]]
name = "p5"
console = "/dev/ttyUSB0"
baud = 921600
[[nodes]]
name = "p6"
console = "off"
`), "c.toml")
	if err != nil {
		t.Fatal(err)
	}
	k := c.Console
	if k.BufferSize.Bytes != 1<<20 || k.PersistInterval.Duration != 5*time.Minute || k.Baud != 9600 || !k.Enabled || !k.Find {
		t.Errorf("console %+v", k)
	}
	if c.Nodes[0].Console != "/dev/ttyUSB0" || c.Nodes[0].Baud != 921600 || c.Nodes[1].Console != ConsoleOff {
		t.Errorf("nodes %+v", c.Nodes)
	}
	if c, err := Parse([]byte("[console]\nbuffer_size = 65536\n"), "c.toml"); err != nil || c.Console.BufferSize.Bytes != 65536 {
		t.Errorf("a size in bytes without quotes: %v", err)
	}
	for text, want := range map[string]int{"4096": 4096, "64K": 64 << 10, "256KiB": 256 << 10, "2 MiB": 2 << 20, "8192B": 8192} {
		if n, ok := parseByteSize(text); !ok || n != want {
			t.Errorf("parseByteSize(%q) = %d, %v; want %d", text, n, ok, want)
		}
	}
}

func TestConsoleKeyErrors(t *testing.T) {
	for _, tc := range []struct {
		doc  string
		want []string
	}{
		{"[console]\nbuffer_size = \"lots\"\n", []string{`c.toml:2: console.buffer_size: "lots" is not a size; write it like "256KiB" or "1MiB"`}},
		{"[console]\nbuffer_size = \"1K\"\n", []string{`c.toml:2: console.buffer_size: 1024 bytes is out of range; use 4KiB to 64MiB`}},
		{"[console]\npersist_interval = \"100ms\"\n", []string{`c.toml:2: console.persist_interval: 100ms is out of range; use 1s to 24h0m0s`}},
		{"[console]\nbaud = 115201\n", []string{`c.toml:2: console.baud: 115201 is not a standard baud rate; use one of 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 500000, 576000, 921600, 1000000, 1152000, 1500000, 2000000, 2500000, 3000000, 3500000, 4000000 (115200 for a Raspberry Pi console)`}},
		{"[[nodes]]\nname = \"p1\"\nconsole = \"ttyUSB0\"\nbaud = 7\n", []string{
			`c.toml:3: nodes[0].console: "ttyUSB0" is not a device path, e.g. "/dev/ttyUSB0" ("" finds it on USB, "off" leaves it alone)`,
			`c.toml:4: nodes[0].baud: 7 is not a standard baud rate; use one of 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 500000, 576000, 921600, 1000000, 1152000, 1500000, 2000000, 2500000, 3000000, 3500000, 4000000 (115200 for a Raspberry Pi console)`,
		}},
	} {
		if got := problems(t, tc.doc); !slices.Equal(got, tc.want) {
			t.Errorf("%q:\n got %q\nwant %q", tc.doc, got, tc.want)
		}
	}
}
