package firewall

import (
	"fmt"
	"slices"
	"strings"
	"sync"
)

// fakeIPTables is an in-memory iptables with the semantics IPTablesRunner
// relies on: built-in chains with policies, user chains that must exist
// before a jump to them, -X refused for referenced or non-empty chains,
// listings in `-S` format, and errors worded as iptables words them. The
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
	// returned instead of executing it.
	Fail  func(op, table, chain string) error
	execs int
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

// Execs counts calls, as CountingIPTables counts processes.
func (f *fakeIPTables) Execs() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.execs
}

func (f *fakeIPTables) enter(op, table, chain string) (*fakeTable, error) {
	f.execs++
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

// Save returns every table in the format of `iptables -t TABLE -S`
// (policies, then user chains, then rules chain by chain), each table
// headed by "*TABLE", for golden comparisons with real iptables.
func (f *fakeIPTables) Save() string {
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
