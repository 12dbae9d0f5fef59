package console

import (
	"testing"
	"unicode/utf8"
)

func TestText(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"plain line\r\n", "plain line"},
		{"tab\there\n", "tab\there"},
		{"\x1b[0;32m  OK  \x1b[0m] Started\r\n", "  OK  ] Started"},
		{"\x1b]0;title\x07prompt$ ", "prompt$ "},
		{"\x1b]8;;http://x\x1b\\link", "link"},
		{"10%\r20%\r30%\r\n", "30%"},
		{"bell\x07 nul\x00 del\x7f", `bell\x07 nul\x00 del\x7f`},
		{"bad \xff\xfe utf8", `bad \xff\xfe utf8`},
		{"c1 \u009b control", `c1 \xc2\x9b control`},
		{`back\slash`, `back\\slash`},
		{"ünïcødé ✓", "ünïcødé ✓"},
		{"\x1b", ""},
		{"\x1b[", ""},
	} {
		if got := Text([]byte(c.in)); got != c.want {
			t.Errorf("Text(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func FuzzText(f *testing.F) {
	f.Add([]byte("\x1b[1mhello\x1b[0m\r\n"))
	f.Add([]byte{0xff, 0, 0x1b, ']', 7})
	f.Fuzz(func(t *testing.T, b []byte) {
		s := Text(b)
		if !utf8.ValidString(s) {
			t.Fatalf("Text(%q) = %q is not UTF-8", b, s)
		}
		for _, r := range s {
			if r < 0x20 && r != '\t' || r == 0x7f || r >= 0x80 && r < 0xa0 {
				t.Fatalf("Text(%q) = %q holds control character %U", b, s, r)
			}
		}
	})
}
