// Package grafana holds the Grafana dashboard the package ships
// (/usr/share/headnode/grafana/headnode-dashboard.json) and reads back
// what its panels query, so that tests can run every query on a real
// Prometheus and check that every metric it names exists.
package grafana

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"strings"
)

//go:embed headnode-dashboard.json
var dashboard []byte

// Dashboard returns the dashboard's JSON.
func Dashboard() []byte { return append([]byte(nil), dashboard...) }

// Query is one PromQL expression of a panel.
type Query struct {
	Panel string
	RefID string
	Expr  string
}

// Queries lists every panel's PromQL expressions, in panel order, and
// the template variables' queries.
func Queries(b []byte) ([]Query, error) {
	var d struct {
		Panels     []panel `json:"panels"`
		Templating struct {
			List []struct {
				Name  string          `json:"name"`
				Type  string          `json:"type"`
				Query json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, err
	}
	var out []Query
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, t := range p.Targets {
				out = append(out, Query{Panel: p.Title, RefID: t.RefID, Expr: t.Expr})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			return nil, fmt.Errorf("variable %s: %v", v.Name, err)
		}
		out = append(out, Query{Panel: "variable " + v.Name, Expr: q.Query})
	}
	return out, nil
}

type panel struct {
	Title   string `json:"title"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's
}

// Substitute puts in place of the dashboard's variables what Grafana does
// when every value is selected (regular expressions matching anything),
// and rateInterval for $__rate_interval.
func Substitute(expr, rateInterval string) string {
	return strings.NewReplacer(
		"$__rate_interval", rateInterval,
		"$instance", ".*",
		"$head", ".*",
	).Replace(expr)
}

// VariableQuery turns a variable's label_values(METRIC, LABEL) into the
// PromQL selector whose series it reads; ok is false for other forms.
func VariableQuery(q string) (selector, label string, ok bool) {
	inner, found := strings.CutPrefix(strings.TrimSpace(q), "label_values(")
	if !found || !strings.HasSuffix(inner, ")") {
		return "", "", false
	}
	inner = strings.TrimSuffix(inner, ")")
	i := strings.LastIndexByte(inner, ',')
	if i < 0 {
		return "", "", false
	}
	return strings.TrimSpace(inner[:i]), strings.TrimSpace(inner[i+1:]), true
}

// keywords of PromQL that look like names. The grouping ones take a label
// list in parentheses, which holds label names, not metrics; aggregation
// operators may be followed by one ("sum by (node) (...)") rather than by
// their parenthesis.
var (
	grouping = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}
	keywords = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true, "atan2": true, "inf": true, "nan": true,
		"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true, "count": true,
		"count_values": true, "bottomk": true, "topk": true, "quantile": true}
)

// MetricNames returns the metric names an expression selects, in order,
// each once. It reads the PromQL the dashboard uses: names followed by
// "(" are functions or aggregations, the lists after by, without, on,
// ignoring, group_left and group_right are labels, and strings, label
// matchers ({...}) and ranges ([...]) hold no metric names.
func MetricNames(expr string) []string {
	s := stripEnclosed(expr)
	var out []string
	seen := map[string]bool{}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case isNameStart(c):
			j := i
			for j < len(s) && isNameChar(s[j]) {
				j++
			}
			name := s[i:j]
			k := j
			for k < len(s) && (s[k] == ' ' || s[k] == '\n' || s[k] == '\t') {
				k++
			}
			paren := k < len(s) && s[k] == '('
			switch {
			case grouping[name] && paren:
				// Skip the label list.
				if e := strings.IndexByte(s[k:], ')'); e >= 0 {
					j = k + e + 1
				}
			case grouping[name], keywords[name], paren:
			default:
				if !seen[name] {
					seen[name] = true
					out = append(out, name)
				}
			}
			i = j
		case c >= '0' && c <= '9' || c == '.':
			// A number or a duration (5m, 1e3, 0.9).
			for i < len(s) && (isNameChar(s[i]) || s[i] == '.') {
				i++
			}
		default:
			i++
		}
	}
	return out
}

// stripEnclosed blanks out strings, label matchers and ranges.
func stripEnclosed(expr string) string {
	var b strings.Builder
	depthBrace, depthBracket := 0, 0
	var quote byte
	for i := 0; i < len(expr); i++ {
		c := expr[i]
		switch {
		case quote != 0:
			if c == '\\' && quote != '`' {
				i++
			} else if c == quote {
				quote = 0
			}
			continue
		case c == '"' || c == '\'' || c == '`':
			quote = c
			continue
		case c == '{':
			depthBrace++
			continue
		case c == '}':
			depthBrace--
			continue
		case c == '[':
			depthBracket++
			continue
		case c == ']':
			depthBracket--
			b.WriteByte(' ')
			continue
		}
		if depthBrace == 0 && depthBracket == 0 {
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isNameStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == ':'
}

func isNameChar(c byte) bool { return isNameStart(c) || c >= '0' && c <= '9' }
