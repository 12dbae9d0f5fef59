package display

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/headnode/headnode/display/lcd"
	"github.com/headnode/headnode/hw/emu"
	"github.com/headnode/headnode/hw/emu/hd44780"
	"github.com/headnode/headnode/hw/lcdrom"
)

// BenchmarkEventToLastByte measures the time from a new Status (an uplink
// address change) to the last byte of the LCD update being on the wire,
// on the real clock. The emulated bus blocks each transaction for its
// modelled time at 100 kHz, as a real I2C transfer would, so the figure
// is render + write + bus time.
func BenchmarkEventToLastByte(b *testing.B) {
	for _, size := range [][2]int{{16, 2}, {20, 4}} {
		cols, rows := size[0], size[1]
		b.Run(fmt.Sprintf("%dx%d", cols, rows), func(b *testing.B) {
			bus := emu.NewBus("emu-i2c-1")
			mod := hd44780.New(hd44780.Boards[0], &hd44780.Opts{Cols: cols, Rows: rows, ROM: lcdrom.A00})
			bus.Attach(0x27, mod)
			written := make(chan string, 16)
			s := NewScreen(ScreenOpts{
				Open: func() (LCD, error) {
					return lcd.New(bus, &lcd.Opts{Cols: cols, Rows: rows, ROM: lcdrom.A00, Backlight: true})
				},
				Cols: cols, Rows: rows,
				Report: func(r ScreenReport) {
					if r.Found && len(r.Rows) > 0 {
						written <- r.Rows[0]
					}
				},
			})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go s.Run(ctx, func() (Status, bool) { return Status{}, false })
			st := ok4()
			s.Show(st)
			for r := range written {
				if r == "192.168.1.194" {
					break
				}
			}
			var worst time.Duration
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				st.Uplink.IPv4 = fmt.Sprintf("10.0.%d.%d", i/250%250, i%250+1)
				start := time.Now()
				s.Show(st)
				for r := range written {
					if r == st.Uplink.IPv4 {
						break
					}
				}
				worst = max(worst, time.Since(start))
			}
			b.ReportMetric(float64(worst.Microseconds())/1000, "worst-ms")
			if got := mod.Screen()[0]; got != fmt.Sprintf("%-*s", cols, st.Uplink.IPv4) {
				b.Fatalf("glass shows %q", got)
			}
		})
	}
}
