package main

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/headnode/headnode/netcfg/sandbox/sandboxtest"
)

// term is a terminal the tests type into: a pty whose slave is the
// headnode CLI's controlling terminal, stdin, stdout and stderr, as when a
// user runs it. The test holds the slave too, to read its settings.
type term struct {
	t             *testing.T
	master, slave *os.File
	cmd           *exec.Cmd
	out           *sandboxtest.Output
	before        unix.Termios
	exited        chan struct{}
	code          int
}

// openTerm starts the CLI with args on a new terminal, in the cooked mode
// a login shell leaves it in.
func openTerm(t *testing.T, args ...string) *term {
	t.Helper()
	m, s, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	tm := &term{t: t, master: m, slave: s, out: &sandboxtest.Output{}, exited: make(chan struct{})}
	tio, err := unix.IoctlGetTermios(int(s.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	tm.before = *tio
	tm.cmd = exec.Command(binary, args...)
	tm.cmd.Stdin, tm.cmd.Stdout, tm.cmd.Stderr = s, s, s
	tm.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := tm.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := m.Read(buf)
			tm.out.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	go func() {
		err := tm.cmd.Wait()
		tm.code = 0
		if ee, ok := err.(*exec.ExitError); ok {
			tm.code = ee.ExitCode()
		}
		close(tm.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-tm.exited:
		default:
			tm.cmd.Process.Kill()
			<-tm.exited
		}
		m.Close()
		s.Close()
		if t.Failed() {
			t.Logf("terminal of `headnode %s`:\n%s", strings.Join(args, " "), tm.out.String())
		}
	})
	return tm
}

// expect waits up to 10 s for the terminal to show re.
func (tm *term) expect(what string, re *regexp.Regexp) string {
	tm.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if m := re.FindString(tm.out.String()); m != "" {
			return m
		}
		time.Sleep(20 * time.Millisecond)
	}
	tm.t.Fatalf("the terminal never showed %s (%s); it shows:\n%s", what, re, tm.out.String())
	return ""
}

// expectText waits up to 10 s for the terminal to show s, byte for byte.
func (tm *term) expectText(what, s string) {
	tm.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(tm.out.String(), s) {
		if time.Now().After(deadline) {
			tm.t.Fatalf("the terminal never showed %s (%q); it shows:\n%q", what, s, tm.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (tm *term) typ(s string) {
	tm.t.Helper()
	if _, err := tm.master.Write([]byte(s)); err != nil {
		tm.t.Fatal(err)
	}
}

// mark returns how much the terminal has shown, for since.
func (tm *term) mark() int { return len(tm.out.String()) }

// since returns what the terminal showed after mark.
func (tm *term) since(mark int) string { return tm.out.String()[mark:] }

// settings returns the terminal's settings now.
func (tm *term) settings() unix.Termios {
	tio, err := unix.IoctlGetTermios(int(tm.slave.Fd()), unix.TCGETS)
	if err != nil {
		tm.t.Fatal(err)
	}
	return *tio
}

// raw reports whether the CLI put the terminal in raw mode.
func (tm *term) raw() bool {
	s := tm.settings()
	return s.Lflag&(unix.ICANON|unix.ECHO|unix.ISIG) == 0
}

// wait waits for the CLI to exit and checks the terminal's settings are
// those it had before the CLI started.
func (tm *term) wait(what string) int {
	tm.t.Helper()
	select {
	case <-tm.exited:
	case <-time.After(10 * time.Second):
		tm.t.Fatalf("the CLI did not exit after %s", what)
	}
	if after := tm.settings(); after != tm.before {
		tm.t.Errorf("after %s the terminal's settings are %+v, before they were %+v", what, after, tm.before)
	}
	return tm.code
}
