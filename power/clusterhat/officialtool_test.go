package clusterhat

import (
	"fmt"
	"testing"

	"periph.io/x/conn/v3/i2c/i2ctest"

	"github.com/headnode/headnode/hw/emu/expander"
)

// regWrite is one SMBus byte-data write: register, value.
type regWrite struct{ reg, v byte }

func (w regWrite) String() string { return fmt.Sprintf("[%02x]=%02x", w.reg, w.v) }

// Register writes as the official tool makes them on a HAT whose expander
// has just powered up (every pin an input), written out by hand from
// burtyb/clusterhat-image files/usr/sbin/clusterctrl at commit
// dd66f59ffe9e6e981288c9a49b0affbb7ca0c751, lines 464-507, with
// files/usr/share/clusterctrl/python/xra1200.py: on() and off() read the
// output register (0x01) and write it back with one bit changed;
// set_pur() writes 0x04, set_dir() writes 0x03. The output latch starts
// at its reset value 0xFF.
const (
	pur     = 0x04
	ocr     = 0x01
	gcr     = 0x03
	posLink = "pos-link" // power-on-state link in place (the default): nodes off
	posCut  = "pos-cut"  // link cut: nodes on
	wpOpen  = "wp-open"  // write-protect link open (the default)
	wpLink  = "wp-link"  // write-protect link soldered
)

func TestFirstInitWritesInTheOfficialToolsOrder(t *testing.T) {
	for _, tc := range []struct {
		chip         expander.Chip
		major, minor int
		pos, wp      string
		tool         []regWrite
	}{
		{expander.XRA1200P, 2, 0, posLink, wpOpen, []regWrite{
			{pur, 0x7f}, // hat.set_pur(0x7F): WP pin without pull-up; input bit 7 reads 0
			{ocr, 0xff}, // wp.on()
			{ocr, 0xfe}, // p1.off(): POS link holds bits 0-3 low
			{ocr, 0xfc}, // p2.off()
			{ocr, 0xf8}, // p3.off()
			{ocr, 0xf0}, // p4.off()
			{ocr, 0xb0}, // alert.off()
			{ocr, 0xb0}, // led.on() (version 2 only)
			{ocr, 0xb0}, // hub.on(): v2.0 switches the hub on with a 1
			{gcr, 0x00}, // hat.set_dir(0x00): only now do the pins drive
		}},
		{expander.XRA1200P, 2, 2, posLink, wpOpen, []regWrite{
			{pur, 0x7f}, {ocr, 0xff},
			{ocr, 0xfe}, {ocr, 0xfc}, {ocr, 0xf8}, {ocr, 0xf0},
			{ocr, 0xb0}, {ocr, 0xb0},
			{ocr, 0x90}, // hub.off(): from v2.1 on a 0 is hub on
			{gcr, 0x00},
		}},
		{expander.XRA1200P, 2, 5, posLink, wpLink, []regWrite{
			{pur, 0x7f},
			{pur, 0xff}, // bit 7 read 1: link soldered, pull-up back on, WP left alone
			{ocr, 0xfe}, {ocr, 0xfc}, {ocr, 0xf8}, {ocr, 0xf0},
			{ocr, 0xb0}, {ocr, 0xb0}, {ocr, 0x90},
			{gcr, 0x00},
		}},
		{expander.XRA1200P, 2, 5, posCut, wpOpen, []regWrite{
			{pur, 0x7f}, {ocr, 0xff},
			{ocr, 0xff}, {ocr, 0xff}, {ocr, 0xff}, {ocr, 0xff}, // p1.on() .. p4.on()
			{ocr, 0xbf}, {ocr, 0xbf}, {ocr, 0x9f},
			{gcr, 0x00},
		}},
		{expander.PCA9554, 2, 5, posLink, wpOpen, []regWrite{
			// get_pur() failed: no pull-up register, so no link test.
			{ocr, 0xff}, // wp.on()
			{ocr, 0xfe}, {ocr, 0xfc}, {ocr, 0xf8}, {ocr, 0xf0},
			{ocr, 0xb0}, {ocr, 0xb0}, {ocr, 0x90},
			{gcr, 0x00},
		}},
		{expander.XRA1200P, 3, 1, posLink, wpOpen, []regWrite{
			{pur, 0x7f}, {ocr, 0xff},
			{ocr, 0xfe}, {ocr, 0xfc}, {ocr, 0xf8}, {ocr, 0xf0},
			{ocr, 0xb0}, // alert.off(); v3 has no LED bit, so no led.on()
			{ocr, 0x90}, // hub.off()
			{gcr, 0x00},
		}},
		{expander.PCA9554, 3, 0, posCut, wpOpen, []regWrite{
			{ocr, 0xff},
			{ocr, 0xff}, {ocr, 0xff}, {ocr, 0xff}, {ocr, 0xff},
			{ocr, 0xbf},
			{ocr, 0x9f}, // init tests version 2 and minor 0 for the hub: v3.0 is active low
			{gcr, 0x00},
		}},
	} {
		name := fmt.Sprintf("%s-v%d.%d-%s-%s", tc.chip, tc.major, tc.minor, tc.pos, tc.wp)
		t.Run(name, func(t *testing.T) {
			h := newHAT(t, tc.chip, tc.major, tc.minor)
			if tc.pos == posCut {
				for pin := range 4 {
					h.chip.SetExternal(pin, expander.Float)
				}
			}
			if tc.wp == wpLink {
				h.chip.SetExternal(7, expander.High)
			}
			rec := &i2ctest.Record{Bus: h.bus}
			o := DefaultOpts
			o.Major, o.Minor = tc.major, tc.minor
			d, err := NewI2C(rec, 1, o)
			if err != nil {
				t.Fatal(err)
			}
			if fresh, err := d.Init(); err != nil || !fresh {
				t.Fatalf("Init = %v, %v; want a first init", fresh, err)
			}
			var got []regWrite
			for _, op := range rec.Ops {
				if len(op.W) == 2 {
					got = append(got, regWrite{op.W[0], op.W[1]})
				}
			}
			if g, w := foldNodeWrites(got), foldNodeWrites(tc.tool); fmt.Sprint(g) != fmt.Sprint(w) {
				t.Errorf("Init writes %v\nthe official tool writes %v\n(compared as %v and %v)", got, tc.tool, g, w)
			}
		})
	}
}

// foldNodeWrites keeps only the last of consecutive output-register
// writes that differ from the previous one in bits 0-3 alone (or not at
// all: a write of the value already latched changes nothing). The tool
// switches P1-P4 with one read-modify-write each; the driver does the four
// bits in one. Until the configuration register makes the pins outputs
// nothing reaches a pin, so the two are the same to the board; every other
// difference in order or value still shows.
func foldNodeWrites(ws []regWrite) []regWrite {
	var out []regWrite
	for _, w := range ws {
		if n := len(out); n > 0 && w.reg == ocr && out[n-1].reg == ocr && (w.v^out[n-1].v)&0xf0 == 0 {
			out[n-1] = w
			continue
		}
		out = append(out, w)
	}
	return out
}
