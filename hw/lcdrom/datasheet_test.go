package lcdrom

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// readTable parses a transcription of the datasheet's Table 4 in
// testdata (the format is described at the top of each file) into the
// glyph every code 0x00-0xFF draws.
func readTable(t *testing.T, name string) [256]rune {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var table [256]rune
	var seen [256]bool
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "--")
		if strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 2 {
			t.Fatalf("%s:%d: %q has no glyph", name, n, line)
		}
		code, err := strconv.ParseUint(fields[0], 16, 8)
		if err != nil {
			t.Fatalf("%s:%d: code %q: %v", name, n, fields[0], err)
		}
		if seen[code] {
			t.Fatalf("%s:%d: code %02X listed twice", name, n, code)
		}
		seen[code] = true
		g := fields[1]
		switch {
		case strings.HasPrefix(g, "U+"):
			cp, err := strconv.ParseUint(g[2:], 16, 32)
			if err != nil {
				t.Fatalf("%s:%d: %q is not a code point", name, n, g)
			}
			table[code] = rune(cp)
		case strings.HasPrefix(g, "cgram"):
			i, err := strconv.Atoi(g[len("cgram"):])
			if err != nil || i < 0 || i > 7 || i != int(code&7) || code > 0x0f {
				t.Fatalf("%s:%d: %q is not CGRAM pattern %d", name, n, g, code&7)
			}
			table[code] = CGRAMRune + rune(i)
		case g == "blank", g == "none":
			table[code] = Blank
		default:
			t.Fatalf("%s:%d: glyph %q is none of U+XXXX, cgramN, blank, none", name, n, g)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for c, ok := range seen {
		if !ok {
			t.Fatalf("%s: code %02X is missing", name, c)
		}
	}
	return table
}

// Every one of the 256 codes of both ROMs draws what the datasheet's
// Table 4 shows, compared with a transcription kept apart from the
// tables the code uses.
func TestEveryCodeMatchesTheDatasheet(t *testing.T) {
	for _, tc := range []struct {
		rom  *ROM
		file string
	}{
		{A00, "hd44780u-a00.txt"},
		{A02, "hd44780u-a02.txt"},
	} {
		want := readTable(t, tc.file)
		for c := range 256 {
			if got := tc.rom.Glyph(byte(c)); got != want[c] {
				t.Errorf("%s code 0x%02X draws %q (U+%04X); Table 4 shows %q (U+%04X)",
					tc.rom.Name(), c, got, got, want[c], want[c])
			}
		}
	}
}
