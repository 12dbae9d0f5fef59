package lcd

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/headnode/headnode/hw/emu"
	"github.com/headnode/headnode/hw/emu/hd44780"
	"github.com/headnode/headnode/hw/lcdrom"
)

// busTime models the time a set of transactions occupies an I2C bus at hz:
// each transaction is a start, the address byte, its data bytes (9 SCL
// periods each, with the acknowledge) and a stop plus bus-free time (2).
func busTime(s emu.Stats, hz int) time.Duration {
	periods := 9*(s.Transactions+s.Written+s.Read) + 2*s.Transactions
	return time.Duration(periods) * time.Second / time.Duration(hz)
}

func diff(a, b emu.Stats) emu.Stats {
	return emu.Stats{Transactions: b.Transactions - a.Transactions, Written: b.Written - a.Written, Read: b.Read - a.Read}
}

// sixWritesPerChar is the strategy of Arduino's LiquidCrystal_I2C and of
// periph's hd44780 over pcf857x: every nibble is three single-byte writes
// (data, E high, E low).
type sixWritesPerChar struct {
	bus  *emu.Bus
	addr uint16
	pins PinMap
}

func (s sixWritesPerChar) byte(rs bool, c byte) {
	for _, n := range []byte{c >> 4, c & 0x0f} {
		v := s.pins.port(rs, n, true)
		for _, p := range []byte{v, v | s.pins.bit(s.pins.E), v} {
			s.bus.Tx(s.addr, []byte{p}, nil)
		}
	}
}

func (s sixWritesPerChar) rows(cols int, rows []string) {
	for r, text := range rows {
		s.byte(false, cmdSetDDRAM|rowOffset(r, cols))
		for _, c := range []byte(fmt.Sprintf("%-*s", cols, text)) {
			s.byte(true, c)
		}
	}
}

// BenchmarkFullRefresh models the bus time of rewriting every row at
// 100 kHz (the PCF8574's rating) from the emulator's transaction and byte
// counts, for this driver (one transaction per row) and for six
// single-byte writes per character, in the same run. The screen is checked
// after each, so both strategies are known to work.
func BenchmarkFullRefresh(b *testing.B) {
	for _, size := range [][2]int{{16, 2}, {20, 4}} {
		cols, rows := size[0], size[1]
		screens := [2][]string{}
		for i := range 2 {
			for r := range rows {
				screens[i] = append(screens[i], fmt.Sprintf("%d%s", i, strings.Repeat(string(rune('a'+r)), cols-1)))
			}
		}
		b.Run(fmt.Sprintf("%s/row-per-transaction", sizeName(cols, rows)), func(b *testing.B) {
			r := newRig(b, hd44780.Boards[0], 0x27, cols, rows, lcdrom.A00, Opts{})
			var total emu.Stats
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				before := r.bus.Stats()
				if err := r.dev.Write(screens[i%2]); err != nil {
					b.Fatal(err)
				}
				d := diff(before, r.bus.Stats())
				total.Transactions += d.Transactions
				total.Written += d.Written
				total.Read += d.Read
			}
			report(b, total, r.mod, screens[(b.N-1)%2], cols)
		})
		b.Run(fmt.Sprintf("%s/six-writes-per-char", sizeName(cols, rows)), func(b *testing.B) {
			r := newRig(b, hd44780.Boards[0], 0x27, cols, rows, lcdrom.A00, Opts{})
			s := sixWritesPerChar{bus: r.bus, addr: 0x27, pins: Standard}
			var total emu.Stats
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				before := r.bus.Stats()
				s.rows(cols, screens[i%2])
				d := diff(before, r.bus.Stats())
				total.Transactions += d.Transactions
				total.Written += d.Written
				total.Read += d.Read
			}
			report(b, total, r.mod, screens[(b.N-1)%2], cols)
		})
	}
}

func report(b *testing.B, total emu.Stats, mod *hd44780.Module, want []string, cols int) {
	b.Helper()
	got := mod.Screen()
	for i := range want {
		if got[i] != fmt.Sprintf("%-*s", cols, want[i]) {
			b.Fatalf("screen row %d = %q, want %q", i, got[i], want[i])
		}
	}
	n := int64(b.N)
	per := emu.Stats{Transactions: total.Transactions / n, Written: total.Written / n, Read: total.Read / n}
	b.ReportMetric(float64(busTime(per, 100_000).Microseconds())/1000, "bus-ms/refresh@100kHz")
	b.ReportMetric(float64(per.Transactions), "tx/refresh")
	b.ReportMetric(float64(per.Written), "bytes/refresh")
}
