package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzControlAPI sends arbitrary requests to a running daemon's control
// socket. The daemon runs in this process on emulated hardware, with NAT
// and DHCP off so nothing outside the test changes. Whatever arrives, the
// daemon answers (never 500, never a dropped connection from a panic) and
// keeps serving its status.
func FuzzControlAPI(f *testing.F) {
	dir := f.TempDir()
	sock := filepath.Join(dir, "control.sock")
	cfg := filepath.Join(dir, "config.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`[network]
cluster_interface = "lo"
cluster_address = ""
uplink_interface = "fuzz0"
nat = false
[dhcp]
enabled = false
[power]
probe = "none"
stagger = "0s"
[http]
listen = []
[control]
socket = %q
[daemon]
state_dir = %q
[hardware]
backend = "sim"
`, sock, filepath.Join(dir, "state"))), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	// The daemon has stopped (its boards saved, its files closed) before
	// the directory goes.
	f.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		Run(ctx, Options{ConfigPath: cfg, Version: "fuzz", Log: slog.New(slog.DiscardHandler), Signals: make(chan os.Signal)})
	}()

	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := hc.Get("http://headnode/v1/status")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			f.Fatalf("daemon did not come up: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}

	for _, seed := range [][3]string{
		{"POST", "/v1/power/on", `{"nodes":["p1","p3"]}`},
		{"POST", "/v1/power/off", `{"nodes":["p7"]}`},
		{"POST", "/v1/power/off", `{}`},
		{"POST", "/v1/power/hub", `{"state":"reset"}`},
		{"POST", "/v1/power/alert", `{"state":"blink"}`},
		{"POST", "/v1/power/leds", `{"state":"on","nodes":"x"}`},
		{"POST", "/v1/led", `{"mode":"identify"}`},
		{"POST", "/v1/led", `{"mode":""}`},
		{"POST", "/v1/nat/clear", ``},
		{"GET", "/v1/nat", ``},
		{"GET", "/v1/status", ``},
		{"DELETE", "/v1/power/on", `[`},
		{"POST", "/v1/power/on", `{"nodes":["p1"`},
		{"POST", "/v1/power/on", `{"nodes":[1,2,3]}`},
	} {
		f.Add(seed[0], seed[1], seed[2])
	}
	f.Fuzz(func(t *testing.T, method, path, body string) {
		if !validToken(method) || !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \r\n\x00#?%") {
			return
		}
		if path == "/v1/watch" {
			return // a stream: it answers by not ending
		}
		req, err := http.NewRequest(method, "http://headnode"+path, strings.NewReader(body))
		if err != nil {
			return
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s %q: %v", method, path, body, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 500 && resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("%s %s %q: %d %s", method, path, body, resp.StatusCode, b)
		}
		resp, err = hc.Get("http://headnode/v1/status")
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("after %s %s %q the status is gone: %v", method, path, body, err)
		}
		resp.Body.Close()
	})
}

func validToken(s string) bool {
	if s == "" || len(s) > 16 {
		return false
	}
	for _, r := range s {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	return true
}
