package power

import "strconv"

// Node names. The official clusterctrl tool names a cluster's nodes p1,
// p2, ... in the order the boards number them (see Cluster), and users
// know them by those names. Name and ParseName are headnode's one
// spelling of them: the configuration, the control API (and so the CLI),
// the status and DHCP all go through them.

// maxNameDigits bounds N to four digits, far above the 252 nodes a
// ClusterCTRL installation can number.
const maxNameDigits = 4

// Name returns node n's name, "pN".
func Name(n int) string { return "p" + strconv.Itoa(n) }

// ParseName returns N for the node name "pN": a lower-case p followed by
// N written in decimal, 1 to 9999, without leading zeros, and nothing
// else. Anything else ("p0", "p01", "P1", "p1x", "p+1", " p1") is an
// *InputError that names the bad value and the valid form.
func ParseName(s string) (int, error) {
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
