package firewall

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// fakeIPTables is an in-memory iptables with the semantics IPTablesRunner
// relies on: built-in chains with policies, user chains that must exist
// before a jump to them, -X refused for referenced or non-empty chains,
// iptables-save output, iptables-restore --noflush input applied as one
// transaction per table (a failing line changes nothing in its table), and
// errors worded as iptables words them. Its other methods are what other
// programs do with the iptables command (tests tamper through them). The
// kernel tests (package nat) check the same golden rules against the real
// iptables, nft and legacy.
type fakeIPTables struct {
	mu     sync.Mutex
	tables map[string]*fakeTable
	// Canonical, when set, rewrites a rule spec the way a particular
	// iptables version prints it, to test that reconcile converges when the
	// listing differs from what was written.
	Canonical func(spec []string) []string
	// Fail, when set, is consulted before every call; a non-nil error is
	// returned instead of executing it. Restore consults it per line, with
	// the line's command ("append", "insert", ...) as op.
	Fail func(op, table, chain string) error
	// AfterRestore, when set, runs right after a successful Restore, as
	// another program acting the moment after our transaction would.
	AfterRestore func()
	execs        int
}

type fakeTable struct {
	order  []string // chain creation order, built-ins first
	chains map[string]*fakeChain
}

type fakeChain struct {
	policy string // "" for user chains
	rules  []string
}

// fakeError carries the message iptables prints for the same failure.
type fakeError struct {
	msg string
}

func (e *fakeError) Error() string { return e.msg }

var builtinChains = map[string][]string{
	"filter": {"INPUT", "FORWARD", "OUTPUT"},
	"nat":    {"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"},
	"mangle": {"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"},
}

// newFakeIPTables returns a fake with empty built-in chains, policy ACCEPT.
func newFakeIPTables() *fakeIPTables {
	f := &fakeIPTables{tables: map[string]*fakeTable{}}
	for name, chains := range builtinChains {
		t := &fakeTable{chains: map[string]*fakeChain{}}
		for _, c := range chains {
			t.order = append(t.order, c)
			t.chains[c] = &fakeChain{policy: "ACCEPT"}
		}
		f.tables[name] = t
	}
	return f
}

// Execs counts Save and Restore calls, as CountingIPTables counts
// processes; the other methods stand for other programs and are not
// counted.
func (f *fakeIPTables) Execs() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.execs
}

func (f *fakeIPTables) enter(op, table, chain string) (*fakeTable, error) {
	if f.Fail != nil {
		if err := f.Fail(op, table, chain); err != nil {
			return nil, err
		}
	}
	t, ok := f.tables[table]
	if !ok {
		return nil, &fakeError{msg: fmt.Sprintf("can't initialize iptables table `%s': Table does not exist", table)}
	}
	return t, nil
}

func noChain(chain string) error {
	return &fakeError{msg: fmt.Sprintf("iptables: No chain/target/match by that name (%s).", chain)}
}

func (f *fakeIPTables) List(table, chain string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, err := f.enter("list", table, chain)
	if err != nil {
		return nil, err
	}
	c, ok := t.chains[chain]
	if !ok {
		return nil, noChain(chain)
	}
	return c.listing(chain), nil
}

func (c *fakeChain) listing(name string) []string {
	var out []string
	if c.policy != "" {
		out = append(out, "-P "+name+" "+c.policy)
	} else {
		out = append(out, "-N "+name)
	}
	for _, r := range c.rules {
		out = append(out, "-A "+name+" "+r)
	}
	return out
}

func (f *fakeIPTables) ListChains(table string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, err := f.enter("listchains", table, "")
	if err != nil {
		return nil, err
	}
	return slices.Clone(t.order), nil
}

func (f *fakeIPTables) NewChain(table, chain string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, err := f.enter("newchain", table, chain)
	if err != nil {
		return err
	}
	if _, ok := t.chains[chain]; ok {
		return &fakeError{msg: "iptables: Chain already exists."}
	}
	t.order = append(t.order, chain)
	t.chains[chain] = &fakeChain{}
	return nil
}

func (f *fakeIPTables) ClearChain(table, chain string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, err := f.enter("clearchain", table, chain)
	if err != nil {
		return err
	}
	if c, ok := t.chains[chain]; ok {
		c.rules = nil
		return nil
	}
	t.order = append(t.order, chain)
	t.chains[chain] = &fakeChain{}
	return nil
}

func (f *fakeIPTables) DeleteChain(table, chain string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, err := f.enter("deletechain", table, chain)
	if err != nil {
		return err
	}
	return t.deleteChain(chain)
}

func (f *fakeIPTables) rule(t *fakeTable, spec []string) (string, error) {
	if f.Canonical != nil {
		spec = f.Canonical(spec)
	}
	r := strings.Join(spec, " ")
	if target := jumpTarget(r); target != "" && strings.ToUpper(target) == target {
		switch target {
		case "ACCEPT", "DROP", "RETURN", "REJECT", "MASQUERADE", "SNAT", "DNAT", "LOG", "TCPMSS", "MARK":
		default:
			if _, ok := t.chains[target]; !ok {
				return "", &fakeError{msg: fmt.Sprintf("iptables v1.8.9 (nf_tables): Chain '%s' does not exist", target)}
			}
		}
	}
	return r, nil
}

func (f *fakeIPTables) Append(table, chain string, spec ...string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, err := f.enter("append", table, chain)
	if err != nil {
		return err
	}
	c, ok := t.chains[chain]
	if !ok {
		return noChain(chain)
	}
	r, err := f.rule(t, spec)
	if err != nil {
		return err
	}
	c.rules = append(c.rules, r)
	return nil
}

func (f *fakeIPTables) Insert(table, chain string, pos int, spec ...string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, err := f.enter("insert", table, chain)
	if err != nil {
		return err
	}
	c, ok := t.chains[chain]
	if !ok {
		return noChain(chain)
	}
	if pos < 1 || pos > len(c.rules)+1 {
		return &fakeError{msg: "iptables: Index of insertion too big."}
	}
	r, err := f.rule(t, spec)
	if err != nil {
		return err
	}
	c.rules = slices.Insert(c.rules, pos-1, r)
	return nil
}

func (f *fakeIPTables) DeleteById(table, chain string, id int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, err := f.enter("deletebyid", table, chain)
	if err != nil {
		return err
	}
	c, ok := t.chains[chain]
	if !ok {
		return noChain(chain)
	}
	if id < 1 || id > len(c.rules) {
		return &fakeError{msg: "iptables: Index of deletion too big."}
	}
	c.rules = slices.Delete(c.rules, id-1, id)
	return nil
}

// Flush empties every chain of table, as `iptables -t table -F` does; the
// chains themselves stay.
func (f *fakeIPTables) Flush(table string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.tables[table].chains {
		c.rules = nil
	}
}

// SetPolicy sets a built-in chain's policy, as `iptables -P` does.
func (f *fakeIPTables) SetPolicy(table, chain, policy string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tables[table].chains[chain].policy = policy
}

// Dump returns every table in the format of `iptables -t TABLE -S`
// (policies, then user chains, then rules chain by chain), each table
// headed by "*TABLE", for golden comparisons with real iptables.
func (f *fakeIPTables) Dump() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	for _, name := range []string{"filter", "nat", "mangle"} {
		t := f.tables[name]
		fmt.Fprintf(&b, "*%s\n", name)
		for _, c := range t.order {
			if p := t.chains[c].policy; p != "" {
				fmt.Fprintf(&b, "-P %s %s\n", c, p)
			}
		}
		for _, c := range t.order {
			if t.chains[c].policy == "" {
				fmt.Fprintf(&b, "-N %s\n", c)
			}
		}
		for _, c := range t.order {
			for _, r := range t.chains[c].rules {
				fmt.Fprintf(&b, "-A %s %s\n", c, r)
			}
		}
	}
	return b.String()
}

// Save prints the ruleset as iptables-save does: per table, the chains
// with their policies ("-" for user chains), the rules, COMMIT.
func (f *fakeIPTables) Save() (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.execs++
	if f.Fail != nil {
		if err := f.Fail("save", "", ""); err != nil {
			return "", err
		}
	}
	var b strings.Builder
	b.WriteString("# Generated by fake iptables-save\n")
	for _, name := range []string{"filter", "nat", "mangle"} {
		t := f.tables[name]
		fmt.Fprintf(&b, "*%s\n", name)
		for _, c := range t.order {
			p := t.chains[c].policy
			if p == "" {
				p = "-"
			}
			fmt.Fprintf(&b, ":%s %s [0:0]\n", c, p)
		}
		for _, c := range t.order {
			for _, r := range t.chains[c].rules {
				fmt.Fprintf(&b, "-A %s %s\n", c, r)
			}
		}
		b.WriteString("COMMIT\n")
	}
	return b.String(), nil
}

// Restore applies input as iptables-restore --noflush does: each table's
// part between "*table" and COMMIT in one go, or not at all.
func (f *fakeIPTables) Restore(input string) error {
	f.mu.Lock()
	f.execs++
	err := f.restore(input)
	after := f.AfterRestore
	f.mu.Unlock()
	if err == nil && after != nil {
		after()
	}
	return err
}

func (f *fakeIPTables) restore(input string) error {
	var name string
	var work *fakeTable
	for i, line := range strings.Split(input, "\n") {
		failed := func(err error) error {
			return &fakeError{msg: fmt.Sprintf("iptables-restore: line %d failed: %v", i+1, err)}
		}
		fields := strings.Fields(line)
		switch {
		case len(fields) == 0 || strings.HasPrefix(line, "#"):
			continue
		case strings.HasPrefix(line, "*"):
			name = line[1:]
			t, ok := f.tables[name]
			if !ok {
				return failed(fmt.Errorf("table %q does not exist", name))
			}
			work = t.clone()
			continue
		case work == nil:
			return failed(fmt.Errorf("no table given"))
		case line == "COMMIT":
			f.tables[name] = work
			work = nil
			continue
		}
		var err error
		if strings.HasPrefix(line, ":") {
			err = f.declare(work, name, fields)
		} else {
			err = f.command(work, name, fields)
		}
		if err != nil {
			return failed(err)
		}
	}
	if work != nil {
		return &fakeError{msg: "iptables-restore: COMMIT expected at line end"}
	}
	return nil
}

// declare handles ":CHAIN POLICY [counters]": a user chain is created, or
// flushed if it exists (--noflush); a built-in chain gets the policy.
func (f *fakeIPTables) declare(t *fakeTable, table string, fields []string) error {
	chain := fields[0][1:]
	if _, err := f.enter("declare", table, chain); err != nil {
		return err
	}
	c, ok := t.chains[chain]
	if !ok {
		t.order = append(t.order, chain)
		t.chains[chain] = &fakeChain{}
		return nil
	}
	if c.policy == "" {
		c.rules = nil
	} else if len(fields) > 1 && fields[1] != "-" {
		c.policy = fields[1]
	}
	return nil
}

// command handles one iptables command line inside a table.
func (f *fakeIPTables) command(t *fakeTable, table string, fields []string) error {
	if len(fields) < 2 {
		return fmt.Errorf("bad command %q", strings.Join(fields, " "))
	}
	op, chain, spec := fields[0], fields[1], fields[2:]
	ops := map[string]string{"-A": "append", "-I": "insert", "-D": "delete", "-F": "flush", "-X": "deletechain"}
	name, ok := ops[op]
	if !ok {
		return fmt.Errorf("unknown command %q", op)
	}
	if _, err := f.enter(name, table, chain); err != nil {
		return err
	}
	c, ok := t.chains[chain]
	if !ok {
		return noChain(chain)
	}
	switch op {
	case "-A", "-I":
		pos := len(c.rules) + 1
		if op == "-I" {
			pos = 1
			if len(spec) > 0 {
				if n, err := strconv.Atoi(spec[0]); err == nil {
					pos, spec = n, spec[1:]
				}
			}
			if pos < 1 || pos > len(c.rules)+1 {
				return &fakeError{msg: "iptables: Index of insertion too big."}
			}
		}
		r, err := f.rule(t, spec)
		if err != nil {
			return err
		}
		c.rules = slices.Insert(c.rules, pos-1, r)
	case "-D":
		r, err := f.rule(t, spec)
		if err != nil {
			return err
		}
		i := slices.Index(c.rules, r)
		if i < 0 {
			return &fakeError{msg: "iptables: Bad rule (does a matching rule exist in that chain?)."}
		}
		c.rules = slices.Delete(c.rules, i, i+1)
	case "-F":
		c.rules = nil
	case "-X":
		return t.deleteChain(chain)
	}
	return nil
}

func (t *fakeTable) clone() *fakeTable {
	c := &fakeTable{order: slices.Clone(t.order), chains: map[string]*fakeChain{}}
	for name, ch := range t.chains {
		c.chains[name] = &fakeChain{policy: ch.policy, rules: slices.Clone(ch.rules)}
	}
	return c
}

func (t *fakeTable) deleteChain(chain string) error {
	c, ok := t.chains[chain]
	if !ok {
		return noChain(chain)
	}
	if c.policy != "" {
		return &fakeError{msg: "iptables: Can't delete built-in chain."}
	}
	if len(c.rules) > 0 {
		return &fakeError{msg: "iptables: Directory not empty."}
	}
	for _, other := range t.chains {
		for _, r := range other.rules {
			if jumpTarget(r) == chain {
				return &fakeError{msg: "iptables v1.8.9 (nf_tables):  CHAIN_DEL failed (Device or resource busy): chain " + chain}
			}
		}
	}
	delete(t.chains, chain)
	t.order = slices.DeleteFunc(t.order, func(s string) bool { return s == chain })
	return nil
}
