package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestNotifyWebhooks(t *testing.T) {
	dir := t.TempDir()
	tok := filepath.Join(dir, "ntfy.token")
	if err := os.WriteFile(tok, []byte("tk_secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Parse([]byte(`[notify]
burst = 2
interval = "10s"
[[notify.webhook]]
url = "http://10.99.0.1:8080/hook"
[[notify.webhook]]
url = "https://ntfy.sh/my-cluster"
format = "ntfy"
token_file = "`+tok+`"
`), "c.toml")
	if os.Geteuid() != 0 {
		// The file is the test user's, so not root's alone.
		if err == nil || !strings.Contains(err.Error(), "can be read by others than root") {
			t.Fatalf("a token file owned by uid %d: %v", os.Geteuid(), err)
		}
		t.Skip("the rest needs a file owned by root")
	}
	if err != nil {
		t.Fatal(err)
	}
	want := []Webhook{{URL: "http://10.99.0.1:8080/hook", Format: WebhookJSON}, {URL: "https://ntfy.sh/my-cluster", Format: WebhookNtfy, TokenFile: tok}}
	if diff := cmp.Diff(want, c.Notify.Webhooks); diff != "" {
		t.Errorf("webhooks (-want +got):\n%s", diff)
	}
	if got, err := ReadSecretFile(tok); err != nil || got != "tk_secret" {
		t.Errorf("ReadSecretFile = %q, %v", got, err)
	}
}

func TestNotifyKeyErrors(t *testing.T) {
	dir := t.TempDir()
	open := filepath.Join(dir, "open.token")
	if err := os.WriteFile(open, []byte("tk_x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got := problems(t, `[prometheus]
node_exporter_port = 0
[notify]
burst = 0
interval = "soon"
[[notify.webhook]]
url = "ftp://example.invalid/x"
format = "slack"
[[notify.webhook]]
url = "https://user:pw@ntfy.example.invalid/t"
token_file = "relative.token"
[[notify.webhook]]
url = "https://ntfy.example.invalid/t"
token_file = "`+open+`"
`)
	want := []string{
		`c.toml:2: prometheus.node_exporter_port: 0 is not a TCP port; use 1-65535 (node_exporter's is 9100)`,
		`c.toml:4: notify.burst: 0 is out of range; use 1 to 1000`,
		`c.toml:5: notify.interval: "soon" is not a duration; write it like "1s" or "500ms"`,
		`c.toml:7: notify.webhook[0].url: "ftp://example.invalid/x" is not an http:// or https:// URL, e.g. "https://ntfy.sh/my-cluster"`,
		`c.toml:8: notify.webhook[0].format: "slack" is not valid; use "json" or "ntfy"`,
		`c.toml:10: notify.webhook[1].url: "https://user:xxxxx@ntfy.example.invalid/t" carries a password; put the token in token_file instead`,
		`c.toml:11: notify.webhook[1].token_file: "relative.token" is not an absolute path, e.g. "/etc/headnode/ntfy.token"`,
	}
	// The world-readable file: one line naming it, its mode and the fix.
	wantOpen := `c.toml:14: notify.webhook[2].token_file: ` + open + ` can be read by others than root (mode 0644`
	if diff := cmp.Diff(want, got[:min(len(got), len(want))], cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" || len(got) != len(want)+1 {
		t.Errorf("(-want +got):\n%s\nall: %q", diff, got)
	}
	if last := got[len(got)-1]; !strings.HasPrefix(last, wantOpen) || !strings.HasSuffix(last, "make it root's alone: sudo chown root:root "+open+" && sudo chmod 600 "+open) {
		t.Errorf("world-readable token file: %q, want it to start %q", last, wantOpen)
	}
	if _, err := ReadSecretFile(open); err == nil {
		t.Error("ReadSecretFile read a world-readable file")
	}
	if _, err := ReadSecretFile(filepath.Join(dir, "absent")); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("absent token file: %v", err)
	}
}
