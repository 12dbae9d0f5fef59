// Package snmp serves headnode's status to net-snmp's snmpd through its
// pass_persist protocol (snmpd.conf(5), "pass_persist"): snmpd starts
// `headnode snmp` once and asks it, on stdin, for the value at an OID
// ("get") or the one after it ("getnext"); the answer is three lines on
// stdout (OID, type, value) or NONE. The objects are those of
// HEADNODE-MIB.txt beside this file, under Base.
package snmp

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
	"github.com/headnode/headnode/power/nodename"
)

// Base is HEADNODE-MIB's headnodeMIB: { netSnmpPlaypen 4323 }, with
// netSnmpPlaypen 1.3.6.1.4.1.8072.9999.9999 from net-snmp's NET-SNMP-MIB.
const Base = ".1.3.6.1.4.1.8072.9999.9999.4323"

// OID is an object identifier as its arcs.
type OID []uint32

// ParseOID reads ".1.3.6..." (the leading dot is optional).
func ParseOID(s string) (OID, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), ".")
	if s == "" {
		return nil, fmt.Errorf("empty OID")
	}
	parts := strings.Split(s, ".")
	o := make(OID, len(parts))
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("%q is not an OID: arc %q", s, p)
		}
		o[i] = uint32(n)
	}
	return o, nil
}

func (o OID) String() string {
	var b strings.Builder
	for _, a := range o {
		b.WriteByte('.')
		b.WriteString(strconv.FormatUint(uint64(a), 10))
	}
	return b.String()
}

// Compare orders OIDs as SNMP does: arc by arc, a prefix first.
func (o OID) Compare(p OID) int { return slices.Compare(o, p) }

func (o OID) child(arcs ...uint32) OID { return append(slices.Clip(o), arcs...) }

// Var is one value of the subtree. Name is its MIB object name, for
// tests and for people.
type Var struct {
	OID   OID
	Name  string
	Type  string // pass_persist type: integer, gauge, counter, ipaddress, string
	Value string
}

var base, _ = ParseOID(Base)

// Objects of HEADNODE-MIB: headnodeObjects is { headnodeMIB 1 }.
var (
	objects   = base.child(1)
	nodeEntry = objects.child(9, 1)
)

// Enumerations, as HEADNODE-MIB numbers them.
var (
	healthNumber = map[string]int{api.HealthStarting: 1, api.HealthOK: 2, api.HealthDegraded: 3, api.HealthFailed: 4, api.HealthStopped: 5}
	natNumber    = map[string]int{api.NATOK: 1, api.NATApplying: 2, api.NATWaiting: 3, api.NATFailed: 4, api.NATCleared: 5, api.NATDisabled: 6}
	nodeNumber   = map[string]int{api.NodeOff: 1, api.NodeBooting: 2, api.NodeUp: 3, api.NodeUnreachable: 4, api.NodeUnknown: 5}
)

// noDaemon is hnHealth when the daemon does not answer.
const noDaemon = 6

// Vars returns the subtree for a status, sorted by OID. With err (the
// daemon did not answer) only hnHealth (noDaemon) and hnHealthReasons
// (why) are there.
func Vars(s *api.Status, err error) []Var {
	scalar := func(n uint32, name, typ, value string) Var {
		return Var{OID: objects.child(n, 0), Name: name, Type: typ, Value: value}
	}
	if err != nil {
		return []Var{
			scalar(1, "hnHealth", "integer", strconv.Itoa(noDaemon)),
			scalar(2, "hnHealthReasons", "string", text(err.Error())),
		}
	}
	up := s.Uplink
	addr, plen := "0.0.0.0", 0
	if p, err := netip.ParsePrefix(up.Address); err == nil && p.Addr().Is4() {
		addr, plen = p.Addr().String(), p.Bits()
	}
	vars := []Var{
		scalar(1, "hnHealth", "integer", strconv.Itoa(healthNumber[s.Health.State])),
		scalar(2, "hnHealthReasons", "string", text(strings.Join(s.Health.Reasons, "; "))),
		scalar(3, "hnUplinkInterface", "string", text(up.Interface)),
		scalar(4, "hnUplinkUp", "integer", truth(up.Exists && up.Carrier)),
		scalar(5, "hnUplinkAddress", "ipaddress", addr),
		scalar(6, "hnUplinkPrefixLength", "gauge", strconv.Itoa(plen)),
		scalar(7, "hnNATState", "integer", strconv.Itoa(natNumber[s.NAT.State])),
		scalar(8, "hnNATRepairs", "counter", strconv.FormatUint(uint64(uint32(s.NAT.Repairs)), 10)),
	}
	// The table, column by column, each in index order.
	type row struct {
		n    uint32
		node api.Node
	}
	var rows []row
	for _, nd := range s.Power.Nodes {
		if n, err := nodename.Parse(nd.Name); err == nil {
			rows = append(rows, row{uint32(n), nd})
		}
	}
	slices.SortFunc(rows, func(a, b row) int { return int(a.n) - int(b.n) })
	columns := []struct {
		col  uint32
		name string
		typ  string
		val  func(api.Node) string
	}{
		{2, "hnNodeName", "string", func(n api.Node) string { return text(n.Name) }},
		{3, "hnNodePower", "integer", func(n api.Node) string {
			switch {
			case n.Powered == nil:
				return "3"
			case *n.Powered:
				return "1"
			}
			return "2"
		}},
		{4, "hnNodeState", "integer", func(n api.Node) string { return strconv.Itoa(nodeNumber[n.State]) }},
		{5, "hnNodeAddress", "ipaddress", func(n api.Node) string {
			if a, err := netip.ParseAddr(n.Address); err == nil && a.Is4() {
				return a.String()
			}
			return "0.0.0.0"
		}},
	}
	for _, c := range columns {
		for _, r := range rows {
			vars = append(vars, Var{OID: nodeEntry.child(c.col, r.n), Name: c.name, Type: c.typ, Value: c.val(r.node)})
		}
	}
	return vars
}

func truth(b bool) string {
	if b {
		return "1"
	}
	return "2"
}

// text makes a DisplayString: one line, at most 255 characters.
func text(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
	if len(s) > 255 {
		s = s[:255]
	}
	return s
}

// Get returns the variable at oid.
func Get(vars []Var, oid OID) (Var, bool) {
	i, found := slices.BinarySearchFunc(vars, oid, func(v Var, o OID) int { return v.OID.Compare(o) })
	if !found {
		return Var{}, false
	}
	return vars[i], true
}

// Next returns the first variable after oid.
func Next(vars []Var, oid OID) (Var, bool) {
	i, found := slices.BinarySearchFunc(vars, oid, func(v Var, o OID) int { return v.OID.Compare(o) })
	if found {
		i++
	}
	if i >= len(vars) {
		return Var{}, false
	}
	return vars[i], true
}

// Serve speaks pass_persist on in and out until in ends. current returns
// the subtree now (it may cache); it is asked once per request.
func Serve(in io.Reader, out io.Writer, current func() []Var) error {
	r := bufio.NewScanner(in)
	w := bufio.NewWriter(out)
	line := func() (string, bool) {
		if !r.Scan() {
			return "", false
		}
		return strings.TrimSpace(r.Text()), true
	}
	for {
		cmd, ok := line()
		if !ok {
			return r.Err()
		}
		switch strings.ToLower(cmd) {
		case "":
			// snmpd ends the conversation by closing stdin; a blank
			// line between requests is ignored.
			continue
		case "ping":
			w.WriteString("PONG\n")
		case "get", "getnext":
			arg, ok := line()
			if !ok {
				return r.Err()
			}
			oid, err := ParseOID(arg)
			var v Var
			found := false
			if err == nil {
				if cmd == "get" {
					v, found = Get(current(), oid)
				} else {
					v, found = Next(current(), oid)
				}
			}
			if found {
				fmt.Fprintf(w, "%s\n%s\n%s\n", v.OID, v.Type, v.Value)
			} else {
				w.WriteString("NONE\n")
			}
		case "set":
			// The OID, then "TYPE VALUE".
			if _, ok := line(); !ok {
				return r.Err()
			}
			if _, ok := line(); !ok {
				return r.Err()
			}
			w.WriteString("not-writable\n")
		default:
			w.WriteString("NONE\n")
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
}
