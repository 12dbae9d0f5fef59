package firewall

import (
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
)

// IPTables is what IPTablesRunner needs from the iptables program: the
// whole ruleset as iptables-save prints it, and iptables-restore --noflush,
// which applies each table's part of its input as one transaction (one
// nf_tables batch, or one table replacement on x_tables). It is declared
// here, at the consumer, so that tests can substitute an in-memory iptables
// and benchmarks can count executions.
type IPTables interface {
	Save() (string, error)
	Restore(input string) error
}

// Backend names the firewall backend in use, as status reports it.
type Backend string

const (
	// BackendIPTablesNFT is the iptables program over nf_tables.
	BackendIPTablesNFT Backend = "iptables-nft"
	// BackendIPTablesLegacy is the iptables program over x_tables.
	BackendIPTablesLegacy Backend = "iptables-legacy"
	// BackendNetlink is nf_tables programmed directly over netlink.
	BackendNetlink Backend = "nftables-netlink"
	BackendUnknown Backend = "unknown"
)

// Events reports whether every change to this backend's rules, ours and
// anyone else's, is announced as an nf_tables event (WatchNFTables); the
// legacy x_tables interface announces nothing and has to be polled.
func (b Backend) Events() bool {
	return b == BackendIPTablesNFT || b == BackendNetlink
}

// ErrNoIPTables is returned when no iptables binary can be found. Its text
// names the Debian package, since that is the fix on every supported system.
var ErrNoIPTables = errors.New(`iptables is not installed: install the Debian package "iptables" (apt install iptables)`)

// lockWaitSeconds bounds how long one iptables-restore waits for the
// xtables lock (legacy only; nf_tables needs none). Without -w it gives up
// at once, and a stuck holder must not hang repair forever either.
const lockWaitSeconds = "5"

// IPTablesChoice resolves a choice of iptables program: "auto" (whatever
// `iptables` is), "nft", "legacy" or a path. It is how OpenIPTables finds
// the program, and how the automatic backend choice asks whether one is
// installed.
func IPTablesChoice(choice string) (string, error) { return resolveIPTables(choice) }

// OpenIPTables resolves the iptables choice ("auto", "nft", "legacy" or a
// path to a binary) and returns a runner for it together with the backend
// that binary reports.
func OpenIPTables(choice string) (*CountingIPTables, Backend, error) {
	path, err := resolveIPTables(choice)
	if err != nil {
		return nil, BackendUnknown, err
	}
	backend, err := detectBackend(path)
	if err != nil {
		return nil, BackendUnknown, err
	}
	c := &CountingIPTables{path: path, save: path + "-save", restore: path + "-restore"}
	for _, p := range []string{c.save, c.restore} {
		if _, err := exec.LookPath(p); err != nil {
			return nil, BackendUnknown, fmt.Errorf("%s has no %s beside it: %v; %w", path, filepath.Base(p), err, ErrNoIPTables)
		}
	}
	return c, backend, nil
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

// detectBackend tells the backend from the binary iptables is: since
// iptables 1.8 every iptables command is a link to xtables-nft-multi or
// xtables-legacy-multi (Debian: /usr/sbin/iptables -> /etc/alternatives/
// iptables -> /usr/sbin/iptables-nft -> xtables-nft-multi), which picks
// its backend by its own name. Reading the links takes microseconds; a
// binary that is neither (a copy, a wrapper, iptables before 1.8) is
// asked with `iptables --version`, a process and some milliseconds of
// start-up before READY.
func detectBackend(path string) (Backend, error) {
	if real, err := filepath.EvalSymlinks(path); err == nil {
		switch filepath.Base(real) {
		case "xtables-nft-multi":
			return BackendIPTablesNFT, nil
		case "xtables-legacy-multi":
			return BackendIPTablesLegacy, nil
		}
	}
	out, err := exec.Command(path, "--version").Output()
	if err != nil {
		return BackendUnknown, fmt.Errorf("%s --version: %v; %w", path, err, ErrNoIPTables)
	}
	if m := backendRE.FindSubmatch(out); m != nil {
		if string(m[1]) == "nf_tables" {
			return BackendIPTablesNFT, nil
		}
		return BackendIPTablesLegacy, nil
	}
	// iptables before 1.8 has no nft variant and prints no backend.
	if strings.HasPrefix(string(out), "iptables v1.") {
		return BackendIPTablesLegacy, nil
	}
	return BackendUnknown, nil
}

// CountingIPTables runs iptables-save and iptables-restore beside an
// iptables binary and counts the processes: each is one exec, the
// dominant cost of reconcile on a Pi.
type CountingIPTables struct {
	path, save, restore string
	execs               atomic.Int64
}

// Path is the iptables binary in use.
func (c *CountingIPTables) Path() string { return c.path }

// Execs returns how many iptables processes have been run.
func (c *CountingIPTables) Execs() int64 { return c.execs.Load() }

// Save runs iptables-save: every table, every chain, in one process.
func (c *CountingIPTables) Save() (string, error) {
	return c.run(c.save, nil)
}

// Restore runs iptables-restore --noflush with input.
func (c *CountingIPTables) Restore(input string) error {
	_, err := c.run(c.restore, strings.NewReader(input), "--noflush", "-w", lockWaitSeconds)
	return err
}

func (c *CountingIPTables) run(path string, stdin *strings.Reader, args ...string) (string, error) {
	c.execs.Add(1)
	cmd := exec.Command(path, args...)
	if stdin != nil {
		cmd.Stdin = stdin
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		e := &ExecError{Command: filepath.Base(path), Stderr: strings.TrimSpace(stderr.String()), Status: -1}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			e.Status = ee.ExitCode()
		} else {
			e.Stderr = err.Error()
		}
		return "", e
	}
	return stdout.String(), nil
}

// ExecError is a failed iptables-save or iptables-restore.
type ExecError struct {
	Command string
	Status  int // exit status; -1 when it did not run
	Stderr  string
}

func (e *ExecError) Error() string {
	return e.Command + " (exit status " + strconv.Itoa(e.Status) + "): " + e.Stderr
}

// IsLockBusy reports whether err is iptables giving up on the xtables lock
// (exit status 4, RESOURCE_PROBLEM in iptables' include/xtables.h), which
// is worth retrying later.
func IsLockBusy(err error) bool {
	var e *ExecError
	return errors.As(err, &e) && e.Status == 4 && strings.Contains(e.Stderr, "xtables lock")
}

// saved is one table of iptables-save output.
type saved struct {
	chains   []string          // declared chains, in order
	policies map[string]string // built-in chain -> policy
	lines    []string          // "-A CHAIN ..." lines, in order
}

// parseSave splits iptables-save output by table. Comments, counters and
// COMMIT lines are dropped.
func parseSave(out string) map[string]*saved {
	tables := map[string]*saved{}
	var cur *saved
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimRight(l, "\r")
		switch {
		case strings.HasPrefix(l, "*"):
			cur = &saved{policies: map[string]string{}}
			tables[strings.TrimPrefix(l, "*")] = cur
		case cur == nil:
		case strings.HasPrefix(l, ":"):
			f := strings.Fields(l[1:])
			if len(f) == 0 {
				continue
			}
			cur.chains = append(cur.chains, f[0])
			if len(f) > 1 && f[1] != "-" {
				cur.policies[f[0]] = f[1]
			}
		case strings.HasPrefix(l, "-A "):
			cur.lines = append(cur.lines, l)
		}
	}
	return tables
}

func (s *saved) has(chain string) bool {
	return s != nil && slices.Contains(s.chains, chain)
}

// chain returns the rules of chain, as listed.
func (s *saved) chain(chain string) []string {
	if s == nil {
		return nil
	}
	var out []string
	for _, l := range s.lines {
		if strings.HasPrefix(l, "-A "+chain+" ") {
			out = append(out, l)
		}
	}
	return out
}
