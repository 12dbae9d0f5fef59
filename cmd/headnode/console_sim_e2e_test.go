package main

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

func (s *simRun) console(args ...string) *term {
	return openTerm(s.t, append([]string{"--socket", s.socket, "console"}, args...)...)
}

var logLine = regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}  `)

// `headnode console p1` in `headnode sim`, as a user drives it from a
// terminal: it lands in a shell in p1's network namespace, several watch
// and one writes, --log has the boot since power-on, and powering p1 off
// ends the session with a message and the terminal as it was. Powered on
// again, p1's console is captured again by itself.
func TestE2EConsoleSim(t *testing.T) {
	s := startSim(t, fmt.Sprintf("hc%d", os.Getpid()%100000), "--listen", "127.0.0.1:0", "--duration", "3m", "--boot", "1s")
	if out, code := s.headnode("on", "p1"); code != 0 {
		t.Fatalf("on p1: %s", out)
	}
	s.waitFor("p1 up with its address", regexp.MustCompile(`(?m)^  p1 +up +on +ethpi1 +192\.168\.50\.11 `))

	w := s.console("p1")
	w.expect("the banner", regexp.MustCompile(`Connected to p1's console \(\S+/ttyACM\d\)\. Ctrl-\] detaches\.`))
	if !w.raw() {
		t.Errorf("the terminal is not in raw mode during the session: %+v", w.settings())
	}
	w.typ("\r")
	w.expect("p1's prompt", regexp.MustCompile(`root@p1:~# `))
	// The shell is in p1's namespace: it sees p1's address and the same
	// network namespace `ip netns exec` enters.
	nsID, err := exec.Command("ip", "netns", "exec", s.name+"-p1", "readlink", "/proc/self/ns/net").Output()
	if err != nil {
		t.Fatal(err)
	}
	m := w.mark()
	w.typ("ip -4 -o addr show dev eth0; readlink /proc/self/ns/net\r")
	w.expect("p1's address", regexp.MustCompile(`inet 192\.168\.50\.11/24`))
	w.expect("p1's namespace", regexp.MustCompile(regexp.QuoteMeta(strings.TrimSpace(string(nsID)))+`\r\n`))
	if got := w.since(m); strings.Contains(got, "192.168.50.12") {
		t.Errorf("p1's shell shows p2's address:\n%s", got)
	}

	// A second writer is refused, clearly; a watcher sees the writer's
	// session and what it types is not sent.
	out, code := s.headnode("console", "p1")
	if code != 1 || !strings.Contains(out, "p1's console already has a writer") || !strings.Contains(out, "--read-only") {
		t.Errorf("a second writer: exit %d, %q", code, out)
	}
	v := s.console("p1", "--read-only")
	v.expect("the read-only banner", regexp.MustCompile(`Connected to p1's console \(\S+, read-only\)`))
	w.typ("echo hello-from-the-writer\r")
	v.expect("the writer's output", regexp.MustCompile(`hello-from-the-writer\r\n`))
	v.typ("echo from-the-watcher\r")
	v.expect("the refusal", regexp.MustCompile(`\[headnode: this session is read-only: what you type is not sent\]`))
	v.typ("\x1d")
	if code := v.wait("Ctrl-]"); code != 0 {
		t.Errorf("detaching with Ctrl-] exits %d", code)
	}
	v.expect("the goodbye", regexp.MustCompile(`Detached from p1's console\.`))
	if strings.Contains(w.out.String(), "from-the-watcher") {
		t.Error("the watcher's input reached the node")
	}

	out, _ = s.headnode("console", "p1", "--log")
	for _, want := range []string{"[    0.000000] Booting Linux on physical CPU 0x0", "Raspbian GNU/Linux 12 p1 ttyGS0", "/ttyACM0 opened --", "hello-from-the-writer"} {
		if !strings.Contains(out, want) {
			t.Errorf("--log lacks %q:\n%s", want, out)
		}
	}
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(logLine.FindAllString(out, -1)) != len(lines) {
		t.Errorf("--log lines without their time:\n%s", out)
	}
	out, _ = s.headnode("status", "p1")
	for _, want := range []string{"state    up", "console  ", "open (USB gadget of node 1 at ", "last console lines", "Booting Linux"} {
		if !strings.Contains(out, want) {
			t.Errorf("status p1 lacks %q:\n%s", want, out)
		}
	}

	// Powering p1 off ends the session, says so and restores the terminal.
	if out, code := s.headnode("off", "p1"); code != 0 {
		t.Fatalf("off p1: %s", out)
	}
	w.expect("the end", regexp.MustCompile(`headnode: p1 was powered off; console session ended`))
	if code := w.wait("off p1"); code != 1 {
		t.Errorf("a session ended by power-off exits %d, want 1", code)
	}

	// Power-cycled, p1's console is captured again by itself.
	s.headnode("on", "p1")
	s.waitFor("p1 up again", regexp.MustCompile(`(?m)^  p1 +up +on +ethpi1 +192\.168\.50\.11 `))
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _ = s.headnode("console", "p1", "--log")
		if strings.Count(out, "Booting Linux on physical CPU") == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if strings.Count(out, "Booting Linux on physical CPU") != 2 || strings.Count(out, "opened --") != 2 || !strings.Contains(out, "went away --") {
		t.Errorf("after a power cycle --log does not show two boots:\n%s", out)
	}

	// Signals restore the terminal too.
	k := s.console("p1")
	k.expect("the banner", regexp.MustCompile(`Connected to p1's console`))
	if !k.raw() {
		t.Error("not raw")
	}
	k.cmd.Process.Signal(syscall.SIGTERM)
	k.expect("the reason", regexp.MustCompile(`detached from p1's console on terminated`))
	if code := k.wait("SIGTERM"); code == 0 {
		t.Error("a session ended by SIGTERM exits 0")
	}
}
