package lcd

import (
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/headnode/headnode/hw/lcdrom"
)

// FuzzEncode transcodes arbitrary text (host names, interface names, fault
// messages and addresses all end up on the glass): one code per rune,
// never a CGRAM code by accident, and every code draws the rune it stands
// for, or is the '?' for what the ROM cannot draw.
func FuzzEncode(f *testing.F) {
	for _, s := range []string{"192.168.1.194", "4/4 up  NAT ok", "Zürich ° µs ←→", "日本語", "ｱｲｳ", "\x00\x07\x1b[2J", "\xff\xfe", "2a02:810d::1", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, rom := range []*lcdrom.ROM{lcdrom.A00, lcdrom.A02} {
			out := Encode(rom, s)
			if len(out) != utf8.RuneCountInString(s) {
				t.Fatalf("%s: %d codes for %d runes of %q", rom.Name(), len(out), utf8.RuneCountInString(s), s)
			}
			i := 0
			for _, r := range s {
				c := out[i]
				i++
				if c < 0x10 {
					t.Fatalf("%s: %q became CGRAM code %#x", rom.Name(), r, c)
				}
				if c == Unmappable && r != Unmappable {
					if code, ok := rom.Code(r); ok && r != utf8.RuneError {
						t.Fatalf("%s: %q is drawable (code %#x) but became '?'", rom.Name(), r, code)
					}
					continue
				}
				if g := rom.Glyph(c); g != r {
					// Aliases (e.g. a look-alike) must still draw
					// something printable, never a blank for a letter.
					if g == lcdrom.Blank && !unicode.IsSpace(r) {
						t.Fatalf("%s: %q encoded as %#x, which draws a blank", rom.Name(), r, c)
					}
				}
			}
		}
	})
}
