package nodename

import (
	"errors"
	"strconv"
	"testing"
)

func TestParse(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int // 0: refused
	}{
		{"p1", 1},
		{"p4", 4},
		{"p10", 10},
		{"p252", 252},
		{"p9999", 9999},
		{"p10000", 0},
		{"p0", 0},
		{"p00", 0},
		{"p01", 0},
		{"P1", 0},
		{"p", 0},
		{"", 0},
		{"1", 0},
		{"p1x", 0},
		{"px", 0},
		{"p+1", 0},
		{"p-1", 0},
		{" p1", 0},
		{"p1 ", 0},
		{"p 1", 0},
		{"p1\n", 0},
		{"pp1", 0},
		{"node1", 0},
		{"p١", 0}, // an Arabic-Indic digit one
	} {
		n, err := Parse(c.in)
		if c.want == 0 {
			var ie *InputError
			want := strconv.Quote(c.in) + " is not a node name: nodes are named p1, p2, ..."
			if err == nil || !errors.As(err, &ie) || err.Error() != want || n != 0 {
				t.Errorf("Parse(%q) = %d, %v; want the error %s", c.in, n, err, want)
			}
			continue
		}
		if err != nil || n != c.want {
			t.Errorf("Parse(%q) = %d, %v; want %d", c.in, n, err, c.want)
		}
		if Name(n) != c.in {
			t.Errorf("Name(%d) = %q, want %q", n, Name(n), c.in)
		}
	}
}
