package firewall

import (
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"sync/atomic"

	goipt "github.com/coreos/go-iptables/iptables"
)

// IPTables is the part of go-iptables' *iptables.IPTables that
// IPTablesRunner uses. It is declared here, at the consumer, so that tests
// can substitute an in-memory iptables and benchmarks can count executions.
type IPTables interface {
	List(table, chain string) ([]string, error)
	ListChains(table string) ([]string, error)
	NewChain(table, chain string) error
	ClearChain(table, chain string) error
	DeleteChain(table, chain string) error
	Append(table, chain string, rulespec ...string) error
	Insert(table, chain string, pos int, rulespec ...string) error
	DeleteById(table, chain string, id int) error
}

// Backend is the kernel interface an iptables binary drives.
type Backend string

// Backends as printed by `iptables --version`.
const (
	BackendNFTables Backend = "nf_tables"
	BackendLegacy   Backend = "legacy"
	BackendUnknown  Backend = "unknown"
)

// ErrNoIPTables is returned when no iptables binary can be found. Its text
// names the Debian package, since that is the fix on every supported system.
var ErrNoIPTables = errors.New(`iptables is not installed: install the Debian package "iptables" (apt install iptables)`)

// lockWaitSeconds bounds how long one iptables call waits for the xtables
// lock. go-iptables' default (0) waits forever, and a stuck holder would then
// hang reconcile and, with it, repair.
const lockWaitSeconds = 5

// OpenIPTables resolves the configured backend choice ("auto", "nft",
// "legacy" or an absolute path) to a binary, and returns a runner for it
// together with the backend that binary reports.
func OpenIPTables(choice string) (*CountingIPTables, Backend, error) {
	path, err := resolveIPTables(choice)
	if err != nil {
		return nil, BackendUnknown, err
	}
	backend, err := detectBackend(path)
	if err != nil {
		return nil, BackendUnknown, err
	}
	ipt, err := goipt.New(goipt.Path(path), goipt.Timeout(lockWaitSeconds))
	if err != nil {
		return nil, BackendUnknown, fmt.Errorf("iptables at %s: %w", path, err)
	}
	return &CountingIPTables{IPTables: ipt, path: path}, backend, nil
}

// searchPath is where iptables is looked for besides $PATH: /usr/sbin is not
// on a normal user's PATH on Debian, and the CLI is often run as one via sudo.
var searchPath = []string{"/usr/sbin", "/sbin", "/usr/local/sbin"}

func resolveIPTables(choice string) (string, error) {
	name := "iptables"
	switch choice {
	case "", "auto":
	case "nft":
		name = "iptables-nft"
	case "legacy":
		name = "iptables-legacy"
	default:
		if _, err := exec.LookPath(choice); err != nil {
			return "", fmt.Errorf("network.iptables = %q: %v; %w", choice, err, ErrNoIPTables)
		}
		return choice, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range searchPath {
		if p, err := exec.LookPath(dir + "/" + name); err == nil {
			return p, nil
		}
	}
	if name != "iptables" {
		return "", fmt.Errorf("%s not found: %w", name, ErrNoIPTables)
	}
	return "", ErrNoIPTables
}

var backendRE = regexp.MustCompile(`\((nf_tables|legacy)\)`)

// detectBackend runs `iptables --version`. go-iptables parses the same
// output but keeps the result unexported.
func detectBackend(path string) (Backend, error) {
	out, err := exec.Command(path, "--version").Output()
	if err != nil {
		return BackendUnknown, fmt.Errorf("%s --version: %v; %w", path, err, ErrNoIPTables)
	}
	if m := backendRE.FindSubmatch(out); m != nil {
		return Backend(m[1]), nil
	}
	// iptables before 1.8 has no nft variant and prints no backend.
	if strings.HasPrefix(string(out), "iptables v1.") {
		return BackendLegacy, nil
	}
	return BackendUnknown, nil
}

// CountingIPTables wraps go-iptables and counts the processes it runs: each
// call is one exec of iptables, the dominant cost of reconcile on a Pi.
type CountingIPTables struct {
	*goipt.IPTables
	path  string
	execs atomic.Int64
}

// Path is the iptables binary in use.
func (c *CountingIPTables) Path() string { return c.path }

// Execs returns how many iptables processes have been run.
func (c *CountingIPTables) Execs() int64 { return c.execs.Load() }

func (c *CountingIPTables) List(table, chain string) ([]string, error) {
	c.execs.Add(1)
	return c.IPTables.List(table, chain)
}

func (c *CountingIPTables) ListChains(table string) ([]string, error) {
	c.execs.Add(1)
	return c.IPTables.ListChains(table)
}

func (c *CountingIPTables) NewChain(table, chain string) error {
	c.execs.Add(1)
	return c.IPTables.NewChain(table, chain)
}

func (c *CountingIPTables) ClearChain(table, chain string) error {
	// go-iptables' ClearChain runs -N and, when the chain exists (the only
	// way IPTablesRunner calls it), -F.
	c.execs.Add(2)
	return c.IPTables.ClearChain(table, chain)
}

func (c *CountingIPTables) DeleteChain(table, chain string) error {
	c.execs.Add(1)
	return c.IPTables.DeleteChain(table, chain)
}

func (c *CountingIPTables) Append(table, chain string, rulespec ...string) error {
	c.execs.Add(1)
	return c.IPTables.Append(table, chain, rulespec...)
}

func (c *CountingIPTables) Insert(table, chain string, pos int, rulespec ...string) error {
	c.execs.Add(1)
	return c.IPTables.Insert(table, chain, pos, rulespec...)
}

func (c *CountingIPTables) DeleteById(table, chain string, id int) error {
	c.execs.Add(1)
	return c.IPTables.DeleteById(table, chain, id)
}

// IsLockBusy reports whether err is iptables giving up on the xtables lock
// (exit status 4, RESOURCE_PROBLEM in iptables' include/xtables.h), which
// is worth retrying later.
func IsLockBusy(err error) bool {
	var e *goipt.Error
	if errors.As(err, &e) {
		return e.ExitStatus() == 4 && strings.Contains(e.Error(), "xtables lock")
	}
	return false
}
