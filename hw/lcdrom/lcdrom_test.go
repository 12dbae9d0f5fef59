package lcdrom

import "testing"

// Positions from the datasheet tables that matter to users: the ones where
// the two ROMs differ from ASCII and from each other.
func TestKnownGlyphPositions(t *testing.T) {
	for _, tc := range []struct {
		rom  *ROM
		code byte
		want rune
	}{
		{A00, 0x41, 'A'}, {A00, 0x5c, '¥'}, {A00, 0x7e, '→'}, {A00, 0x7f, '←'},
		{A00, 0xb1, 'ｱ'}, {A00, 0xdf, 'ﾟ'}, {A00, 0xe0, 'α'}, {A00, 0xe4, 'μ'},
		{A00, 0xee, 'ñ'}, {A00, 0xef, 'ö'}, {A00, 0xf4, 'Ω'}, {A00, 0xf5, 'ü'}, {A00, 0xff, '█'},
		{A00, 0x80, ' '}, {A00, 0x03, CGRAMRune + 3}, {A00, 0x0b, CGRAMRune + 3},
		{A02, 0x5c, '\\'}, {A02, 0x7e, '~'}, {A02, 0x7f, '⌂'}, {A02, 0x10, '▶'},
		{A02, 0x80, 'Б'}, {A02, 0xa3, '£'}, {A02, 0xa7, '§'}, {A02, 0xc4, 'Ä'},
		{A02, 0xd6, 'Ö'}, {A02, 0xdc, 'Ü'}, {A02, 0xdf, 'ß'}, {A02, 0xe4, 'ä'}, {A02, 0xf6, 'ö'}, {A02, 0xfc, 'ü'},
	} {
		if got := tc.rom.Glyph(tc.code); got != tc.want {
			t.Errorf("%s code 0x%02x draws %q, want %q", tc.rom.Name(), tc.code, got, tc.want)
		}
	}
}

func TestCodeIsTheInverseOfGlyph(t *testing.T) {
	for _, rom := range []*ROM{A00, A02} {
		for c := 0x10; c < 0x100; c++ {
			g := rom.Glyph(byte(c))
			if g == Blank {
				continue
			}
			back, ok := rom.Code(g)
			if !ok || rom.Glyph(back) != g {
				t.Errorf("%s: %q at 0x%02x encodes to 0x%02x %v", rom.Name(), g, c, back, ok)
			}
		}
	}
	if _, ok := A00.Code('\\'); ok {
		t.Error("A00 claims a backslash; it draws ¥ there")
	}
	if c, ok := A00.Code('°'); !ok || c != 0xdf {
		t.Errorf("A00 degree sign: 0x%02x %v", c, ok)
	}
	if _, ok := A02.Code('ｱ'); ok {
		t.Error("A02 claims katakana")
	}
}
