package lcdrom

import "testing"

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
	if c, ok := A02.Code('°'); !ok || c != 0xb0 {
		t.Errorf("A02 degree sign: 0x%02x %v", c, ok)
	}
	if c, ok := A00.Code('g'); !ok || c != 'g' {
		t.Errorf("A00 g encodes to 0x%02x %v; want the ASCII code, not the descender form", c, ok)
	}
	if _, ok := A02.Code('ｱ'); ok {
		t.Error("A02 claims katakana")
	}
}
