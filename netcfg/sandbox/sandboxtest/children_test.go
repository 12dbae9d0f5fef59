package sandboxtest

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestMain(m *testing.M) { os.Exit(Run(m)) }

// leakEnv makes TestLeaves leave a process running; only the re-executed
// test binary of TestRunFailsAPackageThatLeavesAProcess sets it.
const leakEnv = "SANDBOXTEST_LEAK"

func TestLeaves(t *testing.T) {
	if os.Getenv(leakEnv) == "" {
		t.Skip("only run by TestRunFailsAPackageThatLeavesAProcess")
	}
	// Through a shell that exits at once: the sleep is orphaned and only
	// the subreaper keeps it ours.
	if err := exec.Command("sh", "-c", "sleep 61 & echo $! >"+os.Getenv(leakEnv)).Run(); err != nil {
		t.Fatal(err)
	}
}

// A test binary whose tests leave a process (here an orphaned one) exits 1
// after passing tests, names the process, and kills it.
func TestRunFailsAPackageThatLeavesAProcess(t *testing.T) {
	pidFile := t.TempDir() + "/pid"
	cmd := exec.Command(os.Args[0], "-test.run=^TestLeaves$", "-test.count=1")
	cmd.Env = append(os.Environ(), leakEnv+"="+pidFile)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("a package that leaves a process: %v, want exit 1:\n%s", err, out)
	}
	if !strings.Contains(string(out), "the tests left 1 processes running") || !strings.Contains(string(out), "sleep 61") {
		t.Errorf("the leftover is not named:\n%s", out)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	// Killed: gone, or a zombie of the exited test binary's until init
	// reaps it. SIGKILL is delivered when the process next runs, so on a
	// busy machine it may still be seen running for a moment.
	deadline := time.Now().Add(2 * time.Second)
	for {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil || strings.Contains(string(stat), ") Z ") {
			break
		}
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Errorf("the leftover sleep (pid %d) still runs 2 s after the test binary exited: %s", pid, stat)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestChildrenListsLiveChildrenOnly(t *testing.T) {
	cmd := exec.Command("sleep", "62")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	found := func() bool {
		for _, p := range children(os.Getpid()) {
			if p.pid == cmd.Process.Pid && p.cmdline == "sleep 62" {
				return true
			}
		}
		return false
	}
	if !found() {
		t.Errorf("a running child is not listed: %v", children(os.Getpid()))
	}
	cmd.Process.Kill()
	cmd.Wait()
	if found() {
		t.Error("a stopped child is still listed")
	}
}

// Every package whose tests build namespaces (and so run commands in
// them) checks for leftovers with Run: a new such package without the
// TestMain fails here.
func TestNamespacePackagesCheckForLeftovers(t *testing.T) {
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("no go.mod at %s: %v", root, err)
	}
	uses, checks := map[string]bool{}, map[string]bool{}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		dir, src := filepath.Dir(path), string(b)
		for _, call := range []string{"sandboxtest.Need(", "dhcptest.Need(", "probelab.New(", "sandbox.New("} {
			if strings.Contains(src, call) {
				uses[dir] = true
			}
		}
		if strings.Contains(src, "sandboxtest.Run(m)") {
			checks[dir] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(uses) < 5 {
		t.Fatalf("found only %d packages with namespace tests under %s: %v", len(uses), root, uses)
	}
	for dir := range uses {
		if !checks[dir] {
			rel, _ := filepath.Rel(root, dir)
			t.Errorf("%s: its tests build namespaces but do not check for leftover processes; add\n\tfunc TestMain(m *testing.M) { os.Exit(sandboxtest.Run(m)) }", rel)
		}
	}
}
