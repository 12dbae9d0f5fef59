package console

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Text renders a record's bytes as one line that is safe to print on a
// terminal or a page, whatever the node sent: the line end is dropped,
// terminal escape sequences (colours, cursor movement, window titles) are
// removed, a carriage return keeps only what follows it (what a terminal
// ends up showing after a progress counter), and every other control
// character or byte that is not UTF-8 is written as \xNN.
func Text(data []byte) string {
	data = trimLineEnd(data)
	if i := lastIndexCR(data); i >= 0 {
		data = data[i+1:]
	}
	var b strings.Builder
	for len(data) > 0 {
		c := data[0]
		if c == 0x1b {
			data = data[skipEscape(data):]
			continue
		}
		r, n := utf8.DecodeRune(data)
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, c)
		case r == '\t':
			b.WriteByte('\t')
		case r == '\\':
			b.WriteString(`\\`)
		case unicode.IsControl(r):
			for _, x := range data[:n] {
				fmt.Fprintf(&b, `\x%02x`, x)
			}
		default:
			b.Write(data[:n])
		}
		data = data[n:]
	}
	return b.String()
}

func trimLineEnd(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

func lastIndexCR(b []byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '\r' {
			return i
		}
	}
	return -1
}

// skipEscape returns the length of the escape sequence at the start of b
// (ECMA-48: CSI "ESC [" parameters and a final byte 0x40-0x7e; OSC "ESC ]"
// up to BEL or "ESC \"; otherwise ESC and one byte).
func skipEscape(b []byte) int {
	if len(b) < 2 {
		return len(b)
	}
	switch b[1] {
	case '[':
		for i := 2; i < len(b); i++ {
			if b[i] >= 0x40 && b[i] <= 0x7e {
				return i + 1
			}
		}
		return len(b)
	case ']', 'P', '_', '^':
		for i := 2; i < len(b); i++ {
			if b[i] == 0x07 {
				return i + 1
			}
			if b[i] == 0x1b && i+1 < len(b) && b[i+1] == '\\' {
				return i + 2
			}
		}
		return len(b)
	}
	return 2
}
