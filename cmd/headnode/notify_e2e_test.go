package main

// Notifications: webhooks in the uplink namespace get exactly one message
// per transition (health, a node unreachable and answering again), also
// when the receiver was down for a while, and none when nothing changed.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
	"github.com/headnode/headnode/netcfg/sandbox"
)

const hookAddr = "10.99.0.1:18080"

// hookReceiver is a webhook receiver in a namespace that can be taken
// down and brought back on the same address.
type hookReceiver struct {
	ns  *sandbox.NS
	mu  sync.Mutex
	got []hookRequest
	srv *http.Server
}

type hookRequest struct {
	at     time.Time
	path   string
	body   string
	header http.Header
}

func (h *hookReceiver) start(t *testing.T) {
	t.Helper()
	l, err := h.ns.Listen(hookAddr)
	if err != nil {
		t.Fatal(err)
	}
	h.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.got = append(h.got, hookRequest{time.Now(), r.URL.Path, string(b), r.Header.Clone()})
		h.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	})}
	go h.srv.Serve(l)
}

func (h *hookReceiver) stop() {
	if h.srv != nil {
		h.srv.Close()
		h.srv = nil
	}
}

func (h *hookReceiver) requests() []hookRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.got)
}

// what summarises the messages to path: "state" of each JSON body, or
// the ntfy message bodies.
func (h *hookReceiver) what(t *testing.T, path string) []string {
	t.Helper()
	var out []string
	for _, r := range h.requests() {
		if r.path != path {
			continue
		}
		if path == "/ntfy" {
			out = append(out, r.body)
			continue
		}
		var ev struct{ Kind, Subject, Previous, State string }
		if err := json.Unmarshal([]byte(r.body), &ev); err != nil {
			t.Fatalf("webhook body %q: %v", r.body, err)
		}
		out = append(out, fmt.Sprintf("%s %s %s->%s", ev.Kind, ev.Subject, ev.Previous, ev.State))
	}
	return out
}

// waitMessages waits up to 10 s for n messages on each path.
func (h *hookReceiver) waitMessages(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		j, f := 0, 0
		for _, r := range h.requests() {
			switch r.path {
			case "/json":
				j++
			case "/ntfy":
				f++
			}
		}
		if j >= n && f >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not %d messages on each webhook within 10 s: json %q, ntfy %q", n, h.what(t, "/json"), h.what(t, "/ntfy"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestE2ENotify(t *testing.T) {
	c := newCluster(t, 1)
	h := &hookReceiver{ns: c.outside}
	h.start(t)
	t.Cleanup(h.stop)
	token := filepath.Join(c.dir, "ntfy.token")
	must(t, os.WriteFile(token, []byte("tk_e2etoken\n"), 0o600))
	cfg := c.config(t, fmt.Sprintf(`
[notify]
burst = 10
interval = "1s"
retry_max = "1s"
settle = "1s"

[[notify.webhook]]
url = "http://%s/json"

[[notify.webhook]]
url = "http://%s/ntfy"
format = "ntfy"
token_file = %q

[lcd]
enabled = true
`, hookAddr, hookAddr, token))
	d := c.startDaemon(t, cfg)
	c.followPower(t, d)
	c.powerOn(t, d, "p1")
	d.waitFor(t, "health ok", func(s *api.Status) bool { return s.Health.State == api.HealthOK && s.Display.LCD.State == api.DeviceOK })
	lcd := func(on bool) {
		t.Helper()
		if err := d.client.Do(context.Background(), http.MethodPost, "/v1/sim/lcd", api.SimDevice{On: on}, nil); err != nil {
			t.Fatal(err)
		}
	}
	quiet := func(what string) {
		t.Helper()
		before := len(h.requests())
		time.Sleep(2500 * time.Millisecond)
		if after := h.requests(); len(after) != before {
			t.Errorf("%s: %d messages although nothing changed: %q", what, len(after)-before, h.what(t, "/json"))
		}
	}
	// The start (starting, then ok) tells nothing, and nothing happens.
	quiet("after the start")

	// 1: the LCD goes: health degraded.
	lcd(false)
	d.waitFor(t, "degraded", func(s *api.Status) bool { return s.Health.State == api.HealthDegraded })
	h.waitMessages(t, 1)

	// The receiver goes down; meanwhile p1 stops answering (2) and
	// answers again (3). Both wait, retried, until it is back.
	h.stop()
	down := time.Now()
	silence(t, c.nodes[0])
	d.waitFor(t, "p1 unreachable", func(s *api.Status) bool { return nodeOf(s, "p1").State == api.NodeUnreachable })
	time.Sleep(1500 * time.Millisecond)
	heal(t, c.nodes[0])
	d.waitFor(t, "p1 up again", func(s *api.Status) bool { return nodeOf(s, "p1").State == api.NodeUp })
	time.Sleep(1500 * time.Millisecond)
	h.start(t)
	up := time.Now()
	h.waitMessages(t, 3)
	t.Logf("the receiver was down %v; the two messages held back arrived %v after it came back",
		up.Sub(down).Round(100*time.Millisecond), time.Since(up).Round(100*time.Millisecond))
	if !d.logged("notification not delivered; retrying until it is") || !d.logged("notification delivered after retries") {
		t.Errorf("the retries are not logged")
	}

	// 4: the LCD is back: health ok.
	lcd(true)
	h.waitMessages(t, 4)
	quiet("at the end")

	want := []string{"health health ok->degraded", "node p1 up->unreachable", "node p1 unreachable->up", "health health degraded->ok"}
	if got := h.what(t, "/json"); !slices.Equal(got, want) {
		t.Errorf("JSON webhook got %q, want exactly %q", got, want)
	}
	host, _ := os.Hostname()
	wantNtfy := []string{
		host + ": health degraded: LCD missing",
		host + ": node p1 is powered on but does not answer",
		host + ": node p1 answers again",
		host + ": health ok again (was degraded)",
	}
	ids := map[string]bool{}
	var ntfy []hookRequest
	for _, r := range h.requests() {
		if r.path == "/ntfy" {
			ntfy = append(ntfy, r)
			continue
		}
		var ev struct{ ID string }
		json.Unmarshal([]byte(r.body), &ev)
		if ids[ev.ID] {
			t.Errorf("event %s delivered twice", ev.ID)
		}
		ids[ev.ID] = true
	}
	if len(ntfy) != len(wantNtfy) {
		t.Fatalf("ntfy webhook got %q, want %d messages", h.what(t, "/ntfy"), len(wantNtfy))
	}
	for i, r := range ntfy {
		if !strings.HasPrefix(r.body, wantNtfy[i]) {
			t.Errorf("ntfy message %d: %q, want it to start %q", i, r.body, wantNtfy[i])
		}
		if r.header.Get("Authorization") != "Bearer tk_e2etoken" || r.header.Get("Title") != "headnode "+host || r.header.Get("Priority") == "" || r.header.Get("Tags") == "" {
			t.Errorf("ntfy message %d headers %v", i, r.header)
		}
	}

	// A token file others can read is refused with one line.
	must(t, os.Chmod(token, 0o644))
	_, errOut, code := run(t, nil, "config", "check", "--config", cfg)
	if code != 2 || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "notify.webhook[1].token_file: "+token+" can be read by others than root (mode 0644") {
		t.Errorf("config check with a world-readable token file: exit %d, %q", code, errOut)
	}
}
