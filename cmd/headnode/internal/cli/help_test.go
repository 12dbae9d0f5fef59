package cli

import (
	"bytes"
	"flag"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Help is asked for in every way on every command: it prints that
// command's usage on stdout, nothing on stderr, exits 0, and runs nothing
// (daemon and sim would start; the others would look for a daemon). A
// command added to the table without help, or left out of the list the
// usage is checked against, fails here.
func TestEveryCommandHasHelp(t *testing.T) {
	if got, want := slices.Sorted(maps.Keys(commands)), slices.Sorted(slices.Values(commandNames)); !slices.Equal(got, want) {
		t.Fatalf("commands %v, commandNames %v: every command must be in both", got, want)
	}
	run := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := Main(args, "test", &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}, {"--socket", "/nonexistent", "--help"}} {
		if code, out, errText := run(args...); code != ExitOK || out != usage || errText != "" {
			t.Errorf("headnode %s: exit %d, stdout %q, stderr %q; want 0 and the usage on stdout", strings.Join(args, " "), code, out, errText)
		}
	}
	for _, name := range commandNames {
		if !slices.ContainsFunc(strings.Split(usage, "\n"), func(l string) bool {
			f := strings.Fields(l)
			return strings.HasPrefix(l, "  ") && len(f) > 0 && f[0] == name
		}) {
			t.Errorf("the usage does not list %q", name)
		}
		want := "usage: headnode " + name
		for _, args := range [][]string{
			{name, "--help"}, {name, "-h"}, {name, "-help"}, {"help", name},
			{name, "p1", "--help"}, {"--config", "/nonexistent.toml", name, "-h"},
		} {
			code, out, errText := run(args...)
			if code != ExitOK || errText != "" || !strings.HasPrefix(out, want+" ") && !strings.HasPrefix(out, want+"\n") {
				t.Errorf("headnode %s: exit %d, stderr %q, stdout:\n%s\nwant exit 0 and stdout starting %q", strings.Join(args, " "), code, errText, out, want)
			}
		}
	}
	// Help on an unknown command is a usage error.
	if code, out, errText := run("help", "frobnicate"); code != ExitUsage || out != "" || !strings.Contains(errText, `unknown command "frobnicate"`) {
		t.Errorf("headnode help frobnicate: exit %d, stdout %q, stderr %q", code, out, errText)
	}
}

// sim's help lists every flag it takes, with the default.
func TestSimHelpListsItsFlags(t *testing.T) {
	help := simUsage()
	n := 0
	newSimFlags().fs.VisitAll(func(f *flag.Flag) {
		n++
		if !strings.Contains(help, "--"+f.Name+" ") || !strings.Contains(help, "(default "+strconv.Quote(f.DefValue)+")") {
			t.Errorf("sim help does not list --%s with its default %q:\n%s", f.Name, f.DefValue, help)
		}
	})
	if n < 10 {
		t.Errorf("only %d sim flags", n)
	}
}
