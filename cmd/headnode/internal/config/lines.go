package config

import (
	"fmt"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// keyLines maps every key path in the document to the line it is set on, so
// that validation errors (which only know the key) can point at the line.
// Paths use the validator's spelling: "power.stagger", "nodes[1].address",
// "http.listen[0]". The document has already decoded without error.
func keyLines(data []byte) map[string]int {
	lines := map[string]int{}
	p := unstable.Parser{KeepComments: false}
	p.Reset(data)
	var table string
	arrayCount := map[string]int{}
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table:
			table = joinKey(e.Key())
			lines[table] = lineOf(&p, e)
		case unstable.ArrayTable:
			name := joinKey(e.Key())
			idx := arrayCount[name]
			arrayCount[name]++
			table = fmt.Sprintf("%s[%d]", name, idx)
			lines[table] = lineOf(&p, e)
		case unstable.KeyValue:
			key := joinKey(e.Key())
			if table != "" {
				key = table + "." + key
			}
			line := lineOf(&p, e)
			lines[key] = line
			if v := e.Value(); v.Kind == unstable.Array {
				i := 0
				for it := v.Children(); it.Next(); i++ {
					lines[fmt.Sprintf("%s[%d]", key, i)] = lineOf(&p, it.Node())
				}
			}
		}
	}
	return lines
}

func joinKey(it unstable.Iterator) string {
	var parts []string
	for it.Next() {
		parts = append(parts, string(it.Node().Data))
	}
	return strings.Join(parts, ".")
}

// lineOf returns the line of a node, falling back to its first key part
// (table and key-value nodes carry no range of their own).
func lineOf(p *unstable.Parser, n *unstable.Node) int {
	if n.Raw.Length > 0 {
		return p.Shape(n.Raw).Start.Line
	}
	for it := n.Children(); it.Next(); {
		if c := it.Node(); c.Raw.Length > 0 {
			return p.Shape(c.Raw).Start.Line
		}
	}
	return 0
}
