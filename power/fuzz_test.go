package power

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"periph.io/x/conn/v3/i2c"

	"github.com/headnode/headnode/hw/emu"
	"github.com/headnode/headnode/hw/emu/boards"
	"github.com/headnode/headnode/power/clusterhat"
)

// FuzzHATEEPROM reads whatever a HAT EEPROM's device-tree files hold (a
// different HAT, a corrupt or half-written EEPROM) with a real ClusterHAT
// v2.5 expander on the bus: detection must never panic, a problem is one
// line, and a board is only ever a ClusterHAT.
func FuzzHATEEPROM(f *testing.F) {
	f.Add([]byte("ZC4:ClusterHAT\x00"), []byte("0x0025\x00"), []byte("0x0004\x00"), []byte("uuid\x00"), []byte("8086 Consultancy\x00"))
	f.Add([]byte("ZC4:ClusterHAT"), []byte("0x0013"), []byte("0x1"), []byte(""), []byte(""))
	f.Add([]byte("Sense HAT\x00"), []byte("0x0001\x00"), []byte("0x0001\x00"), []byte("x\x00"), []byte("Raspberry Pi\x00"))
	f.Add([]byte("ZC4:ClusterHAT\x00"), []byte("banana"), []byte("-1"), []byte("\xff\xff"), []byte(""))
	f.Add([]byte("ZC4:ClusterHAT\x00"), []byte("0xffff\x00"), []byte("0x"), []byte(""), []byte(""))
	f.Fuzz(func(t *testing.T, product, ver, id, uuid, vendor []byte) {
		dir := t.TempDir()
		buses := map[int]*emu.Bus{}
		bus := func(n int) *emu.Bus {
			if buses[n] == nil {
				buses[n] = emu.NewBus("emu")
			}
			return buses[n]
		}
		m, err := boards.New(boards.Spec{HAT: "2.5", Chip: "xra1200p", HATBus: 1, HATAddress: 0x20, Dir: dir}, bus)
		if err != nil {
			t.Fatal(err)
		}
		for name, v := range map[string][]byte{"product": product, "product_ver": ver, "product_id": id, "uuid": uuid, "vendor": vendor} {
			if err := os.WriteFile(filepath.Join(m.HATDir, name), v, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		hw := Hardware{
			HATDir: m.HATDir, DevDir: m.DevDir,
			I2C: func(n int) (i2c.Bus, error) { return bus(n), nil },
			GPIO: func(n int) (clusterhat.Line, error) {
				p, err := m.GPIO(n)
				if err != nil {
					return nil, err
				}
				return p, nil
			},
		}
		c, problems := Detect(hw, DetectOptions{Board: "auto", HATBus: 1, HATAddress: 0x20})
		for _, p := range problems {
			if s := p.Error(); strings.Contains(s, "\n") {
				t.Fatalf("problem spans lines: %q", s)
			}
		}
		if c == nil {
			t.Fatal("Detect returned no cluster")
		}
		if strings.TrimRight(string(product), "\x00") != "ZC4:ClusterHAT" && c.Nodes() != 0 {
			t.Fatalf("a HAT that is not a ClusterHAT (%q) gave %d nodes", product, c.Nodes())
		}
	})
}
