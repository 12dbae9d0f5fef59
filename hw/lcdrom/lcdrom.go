package lcdrom

import "fmt"

// ROM is one character generator ROM.
type ROM struct {
	name  string
	glyph [256]rune
	// alias maps further runes onto codes that draw them acceptably
	// (a no-break space as a space, ° as A00's raised circle).
	alias map[rune]byte
	enc   map[rune]byte
}

// Codes 0x00-0x07 (mirrored at 0x08-0x0F) are the eight user-defined CGRAM
// characters; they render as CGRAMRune+n.
const CGRAMRune = '\uE000'

// Blank is what codes without a glyph render as.
const Blank = ' '

// Name is "A00" or "A02".
func (r *ROM) Name() string { return r.name }

// Glyph returns the character the controller draws for code c.
func (r *ROM) Glyph(c byte) rune {
	if c < 0x10 {
		return CGRAMRune + rune(c&7)
	}
	return r.glyph[c]
}

// Code returns the code that draws r, and false when this ROM has no such
// glyph. Codes for CGRAM characters are not returned: text never selects
// them by accident.
func (r *ROM) Code(c rune) (byte, bool) {
	b, ok := r.enc[c]
	return b, ok
}

// ByName returns the ROM called name ("A00" or "A02").
func ByName(name string) (*ROM, error) {
	switch name {
	case "A00":
		return A00, nil
	case "A02":
		return A02, nil
	}
	return nil, fmt.Errorf("character ROM %q is not known; use \"A00\" or \"A02\"", name)
}

func build(name string, rows map[byte]string, alias map[rune]byte) *ROM {
	r := &ROM{name: name, alias: alias, enc: map[rune]byte{}}
	for i := range r.glyph {
		r.glyph[i] = Blank
	}
	// ASCII 0x20-0x7D is common to both ROMs; each table overrides what
	// differs.
	for c := 0x20; c < 0x7e; c++ {
		r.glyph[c] = rune(c)
	}
	for start, s := range rows {
		i := int(start)
		for _, g := range s {
			if g != '\x00' {
				r.glyph[i] = g
			}
			i++
		}
	}
	for c := 0xff; c >= 0x10; c-- {
		if g := r.glyph[c]; g != Blank || c == 0x20 {
			r.enc[g] = byte(c)
		}
	}
	for g, c := range alias {
		r.enc[g] = c
	}
	return r
}

// In the tables below each string lists the glyphs of consecutive codes
// from the key on; '\x00' keeps a code blank.

// A00 is the Japanese standard ROM.
var A00 = build("A00", map[byte]string{
	0x5c: "¥",
	0x7e: "→←",
	0xa1: "｡｢｣､･ｦｧｨｩｪｫｬｭｮｯ",
	0xb0: "ｰｱｲｳｴｵｶｷｸｹｺｻｼｽｾｿ",
	0xc0: "ﾀﾁﾂﾃﾄﾅﾆﾇﾈﾉﾊﾋﾌﾍﾎﾏ",
	0xd0: "ﾐﾑﾒﾓﾔﾕﾖﾗﾘﾙﾚﾛﾜﾝﾞﾟ",
	// 0xE7, 0xEA, 0xF0, 0xF1 and 0xF9 are g, j, p, q and y drawn with
	// true descenders; 0xE9 (superscript -1) and 0xF8 (x-bar) have no
	// single-character equivalent and stay blank; 0xED is an L with two
	// bars, read as the pound sign.
	0xe0: "αäβεμσρg√\x00jˣ¢£ñö",
	0xf0: "pqθ∞ΩüΣπ\x00y千万円÷\x00█",
}, map[rune]byte{
	'\u00a0': 0x20, // no-break space
	'‐':      0x2d, '‑': 0x2d, '‒': 0x2d, '–': 0x2d, '—': 0x2d,
	'°': 0xdf, // the semi-voiced mark is the usual degree sign on A00
	'゜': 0xdf,
	'゛': 0xde,
	'Ω': 0xf4, // ohm sign
	'∑': 0xf6,
	'■': 0xff,
	'ϴ': 0xf2,
})

// A02 is the European standard ROM.
var A02 = build("A02", map[byte]string{
	0x10: "▶◀“”⏫⏬●↲↑↓→←≤≥▲▼",
	0x5c: "\\",
	0x7e: "~⌂",
	0x80: "БДЖЗИЙЛПУЦЧШЩЪЫЭ",
	0x90: "α♪ΓπΣσ♬τ🔔θΩδ∞♥ε∩",
	0xa0: "‖¡¢£¤¥¦\u00a7ƒ©ª«ЮЯ®‘", // 0xA7 is the section sign
	0xb0: "°±²³₧μ¶·ω¹º»¼½¾¿",      // 0xB4 is a "Pt" ligature: the peseta sign
	0xc0: "ÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏ",
	0xd0: "ÐÑÒÓÔÕÖ×ΦÙÚÛÜÝÞß",
	0xe0: "àáâãäåæçèéêëìíîï",
	0xf0: "ðñòóôõö÷øùúûüýþÿ",
}, map[rune]byte{
	'\u00a0': 0x20,
	'‐':      0x2d, '‑': 0x2d, '‒': 0x2d, '–': 0x2d, '—': 0x2d,
	'Ω': 0x9a,
	'∑': 0x94,
	'♡': 0x9d, '❤': 0x9d,
})
