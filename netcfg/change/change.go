// Package change is the record every part of netcfg returns of what it
// changed on the system: one line of text for the log and the CLI, and a
// kind, so that the NAT keeper can tell a repair (something we had put in
// place was gone) from a consequence (a conntrack flush) or a first install.
package change

import "fmt"

// Change describes one thing an Apply, Clear or Remove did.
type Change struct {
	Kind Kind
	Text string // in words, for the log
}

func (c Change) String() string { return c.Text }

// Kind sorts changes for counting repairs: conntrack flushes are a
// consequence, not something that was missing.
type Kind int

const (
	Rules Kind = iota
	Forwarding
	Address
	Conntrack
	Bridge
)

// Rulesf is a Rules change with a formatted text.
func Rulesf(format string, args ...any) Change {
	return Change{Kind: Rules, Text: fmt.Sprintf(format, args...)}
}
