// Package nodename is headnode's one spelling of node names. The official
// clusterctrl tool names a cluster's nodes p1, p2, ... in the order the
// boards number them (see power.Cluster), and users know them by those
// names. Name and Parse are the only place that spells them: the configuration, the control API (and so the CLI),
// the status and DHCP all go through them. It is a package of its own so
// that DHCP and the configuration can use it without the power drivers.
package nodename

import (
	"fmt"
	"strconv"
)

// maxNameDigits bounds N to four digits, far above the 252 nodes a
// ClusterCTRL installation can number.
const maxNameDigits = 4

// Name returns node n's name, "pN".
func Name(n int) string { return "p" + strconv.Itoa(n) }

// Parse returns N for the node name "pN": a lower-case p followed by
// N written in decimal, 1 to 9999, without leading zeros, and nothing
// else. Anything else ("p0", "p01", "P1", "p1x", "p+1", " p1") is an
// *InputError that names the bad value and the valid form.
func Parse(s string) (int, error) {
	if len(s) >= 2 && len(s) <= 1+maxNameDigits && s[0] == 'p' && s[1] != '0' {
		n := 0
		for _, c := range []byte(s[1:]) {
			if c < '0' || c > '9' {
				n = 0
				break
			}
			n = n*10 + int(c-'0')
		}
		if n > 0 {
			return n, nil
		}
	}
	return 0, inputErrorf("%q is not a node name: nodes are named p1, p2, ...", s)
}

// Range names n nodes from first on: "p5", "p1-p4"; "" for none.
func Range(first, n int) string {
	switch n {
	case 0:
		return ""
	case 1:
		return Name(first)
	}
	return Name(first) + "-" + Name(first+n-1)
}

// InputError is a request that was refused as invalid; nothing changed.
type InputError struct{ Msg string }

func (e *InputError) Error() string { return e.Msg }

func inputErrorf(format string, args ...any) error {
	return &InputError{Msg: fmt.Sprintf(format, args...)}
}
