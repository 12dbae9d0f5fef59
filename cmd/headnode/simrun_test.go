package main

import (
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/headnode/headnode/netcfg/sandbox/sandboxtest"
)

// simRun is a `headnode sim` started by a test, read through the pictures
// it draws.
type simRun struct {
	t       *testing.T
	cmd     *exec.Cmd
	out     *sandboxtest.Output
	name    string
	started time.Time
	exited  chan struct{}
	err     error  // Wait's, once exited is closed
	socket  string // the daemon's control socket, as the picture names it
}

var simSocket = regexp.MustCompile(`--socket (\S+) off p2`)

// startSim runs `headnode sim --name name args...` and returns once the
// daemon runs (the picture names its socket). At the test's end the sim
// is stopped with SIGTERM (killed with its process group, the daemon and
// node clients it started, if it does not stop within 15 s), its output
// logged if the test failed, and its namespaces checked gone.
func startSim(t *testing.T, name string, args ...string) *simRun {
	t.Helper()
	sandboxtest.Need(t)
	s := &simRun{t: t, out: &sandboxtest.Output{}, name: name, exited: make(chan struct{})}
	s.cmd = exec.Command(binary, append([]string{"sim", "--name", name}, args...)...)
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	must(t, s.cmd.Start())
	s.started = time.Now()
	go func() { s.err = s.cmd.Wait(); close(s.exited) }()
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("sim output (the last 80 lines):\n%s", tail(s.out.String(), 80))
		}
		s.checkNamespacesGone()
	})
	s.socket = simSocket.FindStringSubmatch(s.waitFor("the daemon running", simSocket))[1]
	return s
}

// stop sends SIGTERM and waits for the sim to end; one that does not stop
// within 15 s is killed, and that is the error.
func (s *simRun) stop() error {
	select {
	case <-s.exited:
		return nil
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		return nil
	case <-time.After(15 * time.Second):
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.exited
		return fmt.Errorf("sim did not stop within 15 s of SIGTERM; killed it")
	}
}

func (s *simRun) checkNamespacesGone() {
	if b, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(b), s.name+"-") {
		s.t.Errorf("sim left namespaces behind:\n%s", b)
	}
}

// picture is the last complete picture the sim drew.
func (s *simRun) picture() string {
	parts := strings.Split(s.out.String(), "\n--- ")
	if len(parts) < 2 {
		return ""
	}
	return parts[len(parts)-1]
}

// waitFor waits up to 30 s for a picture matching re and returns it.
func (s *simRun) waitFor(what string, re *regexp.Regexp) string {
	s.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		if p := s.picture(); re.MatchString(p) {
			s.t.Logf("%s after %v", what, time.Since(s.started).Round(time.Millisecond))
			return p
		}
		select {
		case <-s.exited:
			s.t.Fatalf("sim exited (%v) while waiting for %s", s.err, what)
		case <-time.After(50 * time.Millisecond):
		}
	}
	s.t.Fatalf("sim never showed %s; last picture:\n%s", what, s.picture())
	return ""
}

// headnode runs the CLI against the sim's daemon and returns its output
// and exit code.
func (s *simRun) headnode(args ...string) (string, int) {
	s.t.Helper()
	b, err := exec.Command(binary, append([]string{"--socket", s.socket}, args...)...).CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		s.t.Fatal(err)
	}
	return string(b), code
}

// mustHeadnode is headnode for a command that must succeed.
func (s *simRun) mustHeadnode(args ...string) {
	s.t.Helper()
	if out, code := s.headnode(args...); code != 0 {
		s.t.Fatalf("headnode %v: exit %d\n%s", args, code, out)
	}
}
