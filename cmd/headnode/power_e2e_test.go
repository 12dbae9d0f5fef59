package main

// End-to-end tests of node power: the daemon on the emulated ClusterHAT of
// [hardware] backend = "sim", driven through the CLI as a user would.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
)

func powerConfig(tp *topo, t *testing.T, trace string, extra string) string {
	t.Helper()
	return tp.config(t, fmt.Sprintf(`
[power]
stagger = "300ms"
boot = "restore"
boot_grace = "1500ms"
probe_interval = "200ms"
down_after = "600ms"

[[nodes]]
name = "p1"
address = "192.168.50.2"
%s
[hardware]
backend = "sim"
i2c_trace = %q
`, extra, trace))
}

func nodeOf(s *api.Status, name string) api.Node {
	for _, n := range s.Power.Nodes {
		if n.Name == name {
			return n
		}
	}
	return api.Node{}
}

func powered(s *api.Status) string {
	var b strings.Builder
	for _, n := range s.Power.Nodes {
		if n.Powered != nil && *n.Powered {
			b.WriteByte('1')
		} else {
			b.WriteByte('0')
		}
	}
	return b.String()
}

// writesTo returns the trace lines that write an expander register (a
// transaction to 0x20 with more than the register byte).
func writesTo(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e struct {
			Addr int    `json:"addr"`
			W    string `json:"w"`
		}
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("trace line %q: %v", sc.Text(), err)
		}
		if e.Addr == 0x20 && len(e.W) > 2 {
			out = append(out, sc.Text())
		}
	}
	return out
}

func TestE2EPowerOnTheEmulatedClusterHAT(t *testing.T) {
	tp := newTopo(t, true)
	sock := filepath.Join(tp.dir, "control.sock")
	trace1 := filepath.Join(tp.dir, "i2c-1.jsonl")
	cfg := powerConfig(tp, t, trace1, "")
	d := tp.startDaemon(t, cfg)
	s, _ := d.waitFor(t, "the board", func(s *api.Status) bool { return len(s.Power.Boards) == 1 && len(s.Power.Nodes) == 4 })
	if s.Power.Board != "ClusterHAT v2.5" || s.Power.Boards[0].Address != "0x20" || s.Power.Boards[0].Chip != "XRA1200P" || powered(s) != "0000" {
		t.Fatalf("power at start: %+v", s.Power)
	}
	// First start on a board that came up reset: the init sequence.
	if w := writesTo(t, trace1); len(w) == 0 || !strings.Contains(w[len(w)-1], `"w":"0300"`) {
		t.Errorf("init did not end by making the pins outputs:\n%s", strings.Join(w, "\n"))
	}

	out, errOut, code := run(t, nil, "on", "p1", "p2", "--socket", sock)
	if code != 0 || out != "p1: on\np2: queued, powers on in 300ms\n" {
		t.Fatalf("on p1 p2: exit %d, %q %q", code, out, errOut)
	}
	_, at1 := d.waitFor(t, "p1 powered", func(s *api.Status) bool { return powered(s)[0] == '1' })
	_, at2 := d.waitFor(t, "p2 powered", func(s *api.Status) bool { return powered(s) == "1100" })
	if gap := at2.Sub(at1); gap < 250*time.Millisecond {
		t.Errorf("p2 came on %v after p1; the stagger is 300ms", gap)
	}
	// p1 answers pings (192.168.50.2 is in the inside namespace); p2 does
	// not, and goes from booting to unreachable after the grace period.
	s, _ = d.waitFor(t, "p1 up, p2 booting", func(s *api.Status) bool {
		return nodeOf(s, "p1").State == api.NodeUp && nodeOf(s, "p2").State == api.NodeBooting
	})
	if s.Health.State != api.HealthOK {
		t.Errorf("health while p2 boots: %+v", s.Health)
	}
	s, _ = d.waitFor(t, "p2 unreachable", func(s *api.Status) bool { return nodeOf(s, "p2").State == api.NodeUnreachable })
	if s.Health.State != api.HealthDegraded || !strings.Contains(strings.Join(s.Health.Reasons, "|"), "p2 unreachable") {
		t.Errorf("health with p2 unreachable: %+v", s.Health)
	}
	out, _, _ = run(t, nil, "status", "--socket", sock)
	for _, re := range []string{`board\s+ClusterHAT v2.5 \(I2C bus 1 0x20, XRA1200P\): p1-p4, hub on, alert off, leds on`, `p1\s+up\s+on\s+192.168.50.2`, `p2\s+unreachable\s+on\s+192.168.50.12`, `p3\s+off\s+off\s+192.168.50.13`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("status lacks %s:\n%s", re, out)
		}
	}
	// Off by request is not a fault.
	if _, _, code := run(t, nil, "off", "p2", "--socket", sock); code != 0 {
		t.Fatal("off p2 failed")
	}
	d.waitFor(t, "p2 off, health ok", func(s *api.Status) bool {
		return nodeOf(s, "p2").State == api.NodeOff && s.Health.State == api.HealthOK
	})
	if _, _, code := run(t, nil, "on", "p2", "--socket", sock); code != 0 {
		t.Fatal("on p2 failed")
	}

	// Bad input: one line naming what is valid, exit 2, nothing changed.
	before := len(writesTo(t, trace1))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"on", "p7"}, `headnode: unknown node "p7": this board has p1-p4` + "\n"},
		{[]string{"off", "p1", "node3"}, `headnode: "node3" is not a node name: nodes are named p1, p2, ...; this board has p1-p4` + "\n"},
		{[]string{"hub", "sideways"}, `headnode: hub "sideways": use on|off|reset` + "\n"},
		{[]string{"alert"}, "headnode: alert needs one of on|off\n"},
		{[]string{"leds", "dim"}, `headnode: leds "dim": use on|off` + "\n"},
	} {
		out, errOut, code := run(t, nil, append(tc.args, "--socket", sock)...)
		if code != 2 || errOut != tc.want || out != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 and %q", tc.args, code, out, errOut, tc.want)
		}
	}
	if after := len(writesTo(t, trace1)); after != before {
		t.Errorf("refused requests wrote to the board (%d -> %d writes)", before, after)
	}
	for _, args := range [][]string{{"alert", "on"}, {"leds", "off"}, {"hub", "reset"}} {
		if out, errOut, code := run(t, nil, append(args, "--socket", sock)...); code != 0 {
			t.Errorf("%v: exit %d %q %q", args, code, out, errOut)
		}
	}
	s, _ = d.waitFor(t, "alert on, leds off", func(s *api.Status) bool {
		b := s.Power.Boards[0]
		return b.Alert != nil && *b.Alert && b.LEDs != nil && !*b.LEDs && b.Hub != nil && *b.Hub
	})
	if powered(s) != "1100" {
		t.Errorf("alert/leds/hub changed node power: %s", powered(s))
	}
	out, _, _ = run(t, nil, "status", "--json", "--socket", sock)
	var js api.Status
	if err := json.Unmarshal([]byte(out), &js); err != nil || len(js.Power.Nodes) != 4 || js.Power.Nodes[0].State != api.NodeUp {
		t.Errorf("status --json: %v %+v", err, js.Power)
	}

	// A reload with new power settings restarts the power part on the
	// same emulated board: nothing is re-initialised.
	writes := len(writesTo(t, trace1))
	powerConfig(tp, t, trace1, "[[nodes]]\nname = \"p5\"\naddress = \"192.168.50.99\"\n")
	d.cmd.Process.Signal(syscall.SIGHUP)
	s, _ = d.waitFor(t, "p5 after the reload", func(s *api.Status) bool { return len(s.Power.Nodes) == 5 })
	if p5 := nodeOf(s, "p5"); p5.Powered != nil || (p5.State != api.NodeUnknown) {
		t.Errorf("p5 (no board powers it): %+v", p5)
	}
	time.Sleep(300 * time.Millisecond)
	if after := len(writesTo(t, trace1)); after != writes {
		t.Errorf("the reload wrote to the board (%d -> %d writes)", writes, after)
	}
	if s, _ := d.client.Status(t.Context()); powered(s)[:4] != "1100" {
		t.Errorf("nodes after reload %s", powered(s))
	}
	powerConfig(tp, t, trace1, "")

	// A plain daemon restart: the board is initialised, nothing at all is
	// written to it and the nodes keep their power.
	d.stop(t)
	trace2 := filepath.Join(tp.dir, "i2c-2.jsonl")
	d = tp.startDaemon(t, powerConfig(tp, t, trace2, ""))
	d.waitFor(t, "the board after restart", func(s *api.Status) bool { return len(s.Power.Boards) == 1 })
	time.Sleep(500 * time.Millisecond) // a few read-backs
	if b, _ := os.ReadFile(trace2); strings.Count(string(b), `"addr":32`) < 4 {
		t.Fatalf("the trace of the restarted daemon shows no reads of the expander:\n%s", b)
	}
	if w := writesTo(t, trace2); len(w) != 0 {
		t.Errorf("a daemon restart wrote to the expander:\n%s", strings.Join(w, "\n"))
	}
	if s, _ := d.client.Status(t.Context()); powered(s) != "1100" {
		t.Errorf("nodes after restart %s, want 1100", powered(s))
	}

	// The controller reboots: everything loses power (the saved emulated
	// state goes), then the daemon starts on a board that came up reset
	// and restores the requested states, staggered.
	d.stop(t)
	if err := os.Remove(filepath.Join(tp.dir, "state", "sim", "boards.json")); err != nil {
		t.Fatal(err)
	}
	d = tp.startDaemon(t, powerConfig(tp, t, trace2, ""))
	s, _ = d.waitFor(t, "p1 and p2 restored", func(s *api.Status) bool { return powered(s) == "1100" })
	if !strings.Contains(s.Power.BootNote, `boot policy "restore", powering on p1 p2`) || s.Power.BootApplied.IsZero() {
		t.Errorf("boot note %q", s.Power.BootNote)
	}
}

func TestE2EPowerWithoutBoardOrDaemon(t *testing.T) {
	_, errOut, code := run(t, nil, "on", "p1", "--socket", filepath.Join(t.TempDir(), "none.sock"))
	if code != 3 || !strings.Contains(errOut, "the headnode daemon is not running") {
		t.Errorf("no daemon: exit %d %q", code, errOut)
	}
	tp := newTopo(t, true)
	cfg := tp.config(t, "\n[hardware]\nbackend = \"sim\"\n[hardware.sim]\nboard = \"none\"\n")
	d := tp.startDaemon(t, cfg)
	s, _ := d.waitFor(t, "board none", func(s *api.Status) bool { return s.Power.Board == "none" && s.NAT.State == api.NATOK })
	if s.Health.State != api.HealthOK {
		t.Errorf("no board is not a fault when none is expected: %+v", s.Health)
	}
	_, errOut, code = run(t, nil, "on", "p1", "--socket", filepath.Join(tp.dir, "control.sock"))
	if code != 2 || errOut != "headnode: unknown node \"p1\": no board with node power control was found\n" {
		t.Errorf("on p1 without a board: exit %d %q", code, errOut)
	}
	// A board that is expected and missing degrades health and says so.
	d.stop(t)
	cfg = tp.config(t, "[power]\nboard = \"clusterhat\"\n[hardware]\nbackend = \"sim\"\n[hardware.sim]\nboard = \"none\"\n")
	d = tp.startDaemon(t, cfg)
	s, _ = d.waitFor(t, "board missing", func(s *api.Status) bool { return s.Health.State == api.HealthDegraded })
	if !strings.Contains(strings.Join(s.Health.Reasons, "|"), "power board missing: ClusterHAT: no HAT EEPROM") {
		t.Errorf("reasons %q", s.Health.Reasons)
	}
}
