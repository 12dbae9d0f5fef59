package sandboxtest

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Run runs m's tests and then fails the package (exit 1) when a process a
// test started is still running: every test stops what it starts, with
// t.Cleanup, so that a suite leaves no DHCP server, client or daemon
// behind on the machine. Leftovers are listed with their command lines
// (which usually name the test's temporary directory) and killed. A
// package whose tests start processes calls it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(sandboxtest.Run(m)) }
//
// The test binary becomes a child subreaper first, so a process whose
// parent went away (a daemon's child, a client a killed sim started) is
// reparented to the test binary and still counts.
func Run(m *testing.M) int {
	subreaper := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == nil
	code := m.Run()
	left := leftChildren(3 * time.Second)
	if len(left) == 0 {
		return code
	}
	fmt.Fprintf(os.Stderr, "sandboxtest: the tests left %d processes running (each test must stop what it starts, with t.Cleanup):\n", len(left))
	for _, p := range left {
		fmt.Fprintf(os.Stderr, "\tpid %d: %s\n", p.pid, p.cmdline)
		syscall.Kill(p.pid, syscall.SIGKILL)
	}
	if !subreaper {
		fmt.Fprintln(os.Stderr, "sandboxtest: (not a child subreaper: orphaned grandchildren are not listed)")
	}
	return 1
}

type process struct {
	pid     int
	cmdline string
}

// leftChildren returns this process's live (not zombie) children, waiting
// up to grace for those on their way out.
func leftChildren(grace time.Duration) []process {
	deadline := time.Now().Add(grace)
	for {
		left := children(os.Getpid())
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// children lists the live children of parent from /proc.
func children(parent int) []process {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []process
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 2 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		if ppid, _ := strconv.Atoi(f[1]); ppid != parent {
			continue
		}
		cmd, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		out = append(out, process{pid, strings.TrimSpace(string(bytes.ReplaceAll(cmd, []byte{0}, []byte{' '})))})
	}
	return out
}
