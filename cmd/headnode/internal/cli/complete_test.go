package cli

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The test binary is headnode when asked: the completion script is run
// against it by bash.
func TestMain(m *testing.M) {
	if os.Getenv("HEADNODE_CLI_TEST_MAIN") == "1" {
		os.Exit(Main(os.Args[1:], "test", os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

var testNodes = func() []string { return []string{"p1", "p2", "p3"} }

// Completion offers what the help says: each case's candidates, exactly.
func TestCompletions(t *testing.T) {
	all := append(slices.Clone(commandNames), "help")
	for _, c := range []struct {
		words []string
		want  []string
		files bool
	}{
		{[]string{""}, all, false},
		{[]string{"st"}, all, false}, // the shell filters by prefix
		{[]string{"-"}, []string{"--config", "--socket", "--help"}, false},
		{[]string{"--config", ""}, nil, true},
		{[]string{"--socket", "/run/x", ""}, all, false},
		{[]string{"help", ""}, commandNames, false},
		{[]string{"status", ""}, []string{"p1", "p2", "p3"}, false},
		{[]string{"status", "p1", ""}, nil, false},
		{[]string{"status", "--"}, []string{"--json", "--config", "--socket", "--help"}, false},
		{[]string{"on", "p1", "p2", ""}, []string{"p1", "p2", "p3"}, false},
		{[]string{"--config", "/etc/h.toml", "off", ""}, []string{"p1", "p2", "p3"}, false},
		{[]string{"alert", ""}, []string{"on", "off"}, false},
		{[]string{"alert", "on", ""}, []string{"p1", "p2", "p3"}, false},
		{[]string{"hub", ""}, []string{"on", "off", "reset"}, false},
		{[]string{"led", ""}, []string{"identify", "stopped", "auto"}, false},
		{[]string{"fan", "on", ""}, []string{"c"}, false},
		{[]string{"usbboot", "off", "p1", ""}, []string{"p1", "p2", "p3"}, false},
		{[]string{"save", "20", ""}, []string{"all", "order", "usbboot", "pos", "leds", "defaults"}, false},
		{[]string{"setorder", ""}, nil, false},
		{[]string{"console", ""}, []string{"p1", "p2", "p3"}, false},
		{[]string{"console", "p2", "-"}, []string{"--log", "--follow", "--read-only", "--take", "--config", "--socket", "--help"}, false},
		{[]string{"nat", ""}, []string{"status", "apply", "clear"}, false},
		{[]string{"nat", "--json", ""}, []string{"status", "apply", "clear"}, false},
		{[]string{"config", ""}, []string{"check", "default"}, false},
		{[]string{"config", "check", "--config", ""}, nil, true},
		{[]string{"snmp", "--url", ""}, nil, false},
		{[]string{"sim", "--board", ""}, nil, false},
		{[]string{"sim", "--wp-link", ""}, nil, false},
		{[]string{"version", ""}, nil, false},
		{[]string{"frobnicate", ""}, nil, false},
	} {
		got, files := completions(c.words, testNodes)
		if !slices.Equal(got, c.want) || files != c.files {
			t.Errorf("complete %q: %q files=%v, want %q files=%v", c.words, got, files, c.want, c.files)
		}
	}
}

// Every command's flags and words offered are in its help, and every flag
// and literal word of its help is offered: the two cannot drift apart.
func TestCompletionMatchesHelp(t *testing.T) {
	for _, name := range commandNames {
		u := commands[name].usage()
		got, _ := completions([]string{name, "-"}, testNodes)
		want := append(regexp.MustCompile(`--[a-z][a-z0-9-]*`).FindAllString(u, -1), "--help")
		for _, f := range want {
			if !slices.Contains(got, f) {
				t.Errorf("%s: flag %s is in the help but not completed", name, f)
			}
		}
		for _, f := range got {
			if !slices.Contains(want, f) {
				t.Errorf("%s: %s is completed but not in the help", name, f)
			}
		}
		first, _, _ := strings.Cut(u, "\n")
		pos, _ := synopsis(u)
		for i, p := range pos {
			words := append([]string{name}, slices.Repeat([]string{"x"}, i)...)
			got, _ := completions(append(words, ""), testNodes)
			for _, w := range p.words {
				if !regexp.MustCompile(`(^|[ \[|])` + regexp.QuoteMeta(w) + `($|[ \]|])`).MatchString(first) {
					t.Errorf("%s: position %d offers %q, which is not in %q", name, i, w, first)
				}
				if !slices.Contains(got, w) {
					t.Errorf("%s: position %d: %q not completed (%q)", name, i, w, got)
				}
			}
			if p.nodes != strings.Contains(first, "pN") && p.nodes {
				t.Errorf("%s: position %d completes nodes but the synopsis has no pN", name, i)
			}
		}
	}
}

// The bash script, run by bash as at a Tab: COMPREPLY holds the
// candidates with the typed prefix, from `headnode __complete` (the test
// binary standing in for headnode).
func TestBashCompletionScript(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "headnode.bash")
	var b bytes.Buffer
	if code := Main([]string{"__bash-completion"}, "test", &b, os.Stderr); code != ExitOK {
		t.Fatalf("__bash-completion: exit %d", code)
	}
	if err := os.WriteFile(script, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	// A configuration naming two nodes: with no daemon, the names come
	// from [[nodes]].
	cfg := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfg, []byte("[[nodes]]\nname = \"p1\"\n\n[[nodes]]\nname = \"p7\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	headnode := filepath.Join(dir, "headnode")
	if err := os.WriteFile(headnode, []byte("#!/bin/sh\nHEADNODE_CLI_TEST_MAIN=1 exec "+exe+" \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	touch := filepath.Join(dir, "configs.toml")
	if err := os.WriteFile(touch, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		line string // what was typed before Tab
		want string // COMPREPLY, one a line
	}{
		{"headnode st", "status"},
		{"headnode na", "nat"},
		{"headnode nat ", "status\napply\nclear"},
		{"headnode nat status --j", "--json"},
		{"headnode --socket /nonexistent --config " + cfg + " on p", "p1\np7"},
		{"headnode --socket /nonexistent --config " + cfg + " console p7 --f", "--follow"},
		{"headnode --config " + filepath.Join(dir, "config"), cfg + "\n" + touch},
		{"headnode save 20 u", "usbboot"},
	} {
		words := strings.Fields(c.line)
		if strings.HasSuffix(c.line, " ") {
			words = append(words, "")
		}
		words[0] = headnode
		var arr strings.Builder
		for _, w := range words {
			arr.WriteString("'" + strings.ReplaceAll(w, "'", `'\''`) + "' ")
		}
		prog := "source " + script + "\nCOMP_WORDS=(" + arr.String() + ")\nCOMP_CWORD=" + strconv.Itoa(len(words)-1) + "\n_headnode\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n"
		cmd := exec.Command(bash, "--norc", "--noprofile", "-c", prog)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("%q: %v\n%s", c.line, err, out)
			continue
		}
		got := strings.Join(slices.Sorted(slices.Values(strings.Fields(string(out)))), "\n")
		want := strings.Join(slices.Sorted(slices.Values(strings.Fields(c.want))), "\n")
		if got != want {
			t.Errorf("Tab after %q: COMPREPLY\n%s\nwant\n%s", c.line, got, want)
		}
	}
}
