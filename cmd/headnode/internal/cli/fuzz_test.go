package cli

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzArgs runs the command line with arbitrary arguments (one per line of
// the input) against a daemon that is not there. Commands that act on the
// machine without a daemon (daemon, sim, nat, led) and any path flags are
// left out: they would touch this machine. Whatever the input, the exit
// code is a documented one, and errors are single lines saying
// "headnode: ...".
func FuzzArgs(f *testing.F) {
	for _, s := range []string{"status\n--json", "on\np1\np3", "off\np7", "hub\nreset", "alert\nmaybe", "leds", "version\n-x", "status\n--jsn", "frobnicate", "", "on\n\x00\n--", "on\n-", "console\np1", "console\np0\n--log", "console\np2\n--follow\n--take", "status\np2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		args := strings.Split(in, "\n")
		for _, a := range args {
			if strings.Contains(a, "config") || strings.Contains(a, "socket") {
				return
			}
		}
		env := &Env{}
		rest, err := env.takeGlobalFlags(args)
		if err == nil && len(rest) > 0 {
			switch rest[0] {
			case "daemon", "sim", "nat", "led":
				return
			}
		}
		dir := t.TempDir()
		argv := append([]string{"--socket", filepath.Join(dir, "absent.sock"), "--config", filepath.Join(dir, "absent.toml")}, args...)
		var stdout, stderr bytes.Buffer
		code := Main(argv, "fuzz", &stdout, &stderr)
		if code < 0 || code > 3 {
			t.Fatalf("%q: exit %d", args, code)
		}
		if code == 0 {
			return
		}
		errText := stderr.String()
		if strings.HasPrefix(errText, "usage: headnode") {
			return
		}
		if errText == "" {
			t.Fatalf("%q: exit %d without a message", args, code)
		}
		for _, line := range strings.Split(strings.TrimSuffix(errText, "\n"), "\n") {
			if !strings.HasPrefix(line, "headnode: ") {
				t.Fatalf("%q: stderr line %q", args, line)
			}
		}
		if code == ExitUsage && strings.Count(errText, "\n") != 1 {
			t.Fatalf("%q: a usage error of %d lines:\n%s", args, strings.Count(errText, "\n"), errText)
		}
	})
}
