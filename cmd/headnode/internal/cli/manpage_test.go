package cli

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// headnode(8) carries every command's help: each synopsis is a section
// heading and each line of its text is in the page; groff formats it
// without a warning (lintian's check of man pages).
func TestManPageIsTheHelp(t *testing.T) {
	page := manPage("1.2.3")
	if !strings.HasPrefix(page, ".TH HEADNODE 8 ") || !strings.Contains(page, `"headnode 1.2.3"`) {
		t.Errorf("man page header: %q", page[:min(len(page), 80)])
	}
	for _, name := range commandNames {
		text := strings.TrimSuffix(commands[name].usage(), globalFlagsUsage)
		first, body, _ := strings.Cut(text, "\n")
		if !strings.Contains(page, "\n.SS "+roffEscape(strings.TrimPrefix(first, "usage: "))+"\n") {
			t.Errorf("no section for %q", first)
		}
		for _, l := range strings.Split(body, "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.Contains(page, roffEscape(l)) {
				t.Errorf("%s: the man page lacks the help's line %q", name, l)
			}
		}
	}
	groff, err := exec.LookPath("groff")
	if err != nil {
		if os.Getenv("HEADNODE_REQUIRE_NETNS") != "" {
			t.Fatal("no groff (Debian package groff-base) to check the man page with")
		}
		t.Skip("no groff")
	}
	cmd := exec.Command(groff, "-man", "-Tutf8", "-ww", "-z")
	cmd.Stdin = strings.NewReader(page)
	if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("groff -ww: %v\n%s", err, out)
	}
}
