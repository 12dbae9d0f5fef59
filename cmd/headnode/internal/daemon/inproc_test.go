package daemon

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
	"github.com/headnode/headnode/netcfg/sandbox/sandboxtest"
)

// inproc is a daemon running in the test's process on emulated hardware,
// with NAT and DHCP off so that nothing outside the test changes.
type inproc struct {
	dir, cfg, sock, httpAddr string
	sigs                     chan os.Signal
	log                      *sandboxtest.Output
	client                   *api.Client
	hc                       *http.Client // the control socket
	done                     chan error
}

// inprocConfig is the configuration of an in-process daemon in dir, with
// extra TOML after it (later keys of a table must not repeat these).
func inprocConfig(dir, httpAddr, extra string) string {
	return fmt.Sprintf(`[network]
cluster_interface = "lo"
cluster_address = ""
uplink_interface = "hn-test-none0"
nat = false
[dhcp]
enabled = false
[power]
probe = "none"
stagger = "0s"
[http]
listen = [%q]
[daemon]
state_dir = %q
%s
`, httpAddr, filepath.Join(dir, "state"), extra)
}

// freeAddr returns a loopback address with a port nobody listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startInproc runs the daemon until the test ends. control and hardware
// are the bodies of those tables.
func startInproc(t *testing.T, control, hardware string) *inproc {
	t.Helper()
	dir := t.TempDir()
	d := &inproc{dir: dir, cfg: filepath.Join(dir, "config.toml"), sock: filepath.Join(dir, "control.sock"),
		httpAddr: freeAddr(t), sigs: make(chan os.Signal, 1), log: &sandboxtest.Output{}, done: make(chan error, 1)}
	d.writeConfig(t, control, hardware)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		d.done <- Run(ctx, Options{ConfigPath: d.cfg, Version: "test", Log: slog.New(slog.NewTextHandler(d.log, nil)), Signals: d.sigs})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-d.done:
		case <-time.After(10 * time.Second):
			t.Error("the daemon did not stop")
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.log.String())
		}
	})
	d.client = api.NewClient(d.sock)
	d.hc = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", d.sock)
		},
	}}
	d.waitFor(t, "ready", func(s *api.Status) bool { return s.Ready })
	// READY is about NAT; the status page is the last part to start and
	// may not listen yet (with NAT off READY comes at once).
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		c, err := net.DialTimeout("tcp", d.httpAddr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(end) {
			t.Fatalf("the status page does not listen on %s: %v", d.httpAddr, err)
		}
	}
	return d
}

func (d *inproc) writeConfig(t *testing.T, control, hardware string) {
	t.Helper()
	if !strings.Contains(control, "socket") {
		control = fmt.Sprintf("socket = %q\n", d.sock) + control
	}
	if !strings.Contains(hardware, "backend") {
		hardware = "backend = \"sim\"\n" + hardware
	}
	text := inprocConfig(d.dir, d.httpAddr, "[control]\n"+control+"\n[hardware]\n"+hardware)
	if err := os.WriteFile(d.cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// reload rewrites the configuration, sends SIGHUP and waits for the
// status to show the reload.
func (d *inproc) reload(t *testing.T, control, hardware string) *api.Status {
	t.Helper()
	before, err := d.client.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	d.writeConfig(t, control, hardware)
	d.sigs <- syscall.SIGHUP
	s, _ := d.waitFor(t, "reloaded", func(s *api.Status) bool { return s.Config.LastReloadAt.After(before.Config.LastReloadAt) })
	return s
}

// waitFor polls the status (over whichever socket is current) until cond
// holds, for 10 s at most.
func (d *inproc) waitFor(t *testing.T, what string, cond func(*api.Status) bool) (*api.Status, error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		var s *api.Status
		if s, err = d.client.Status(context.Background()); err == nil && cond(s) {
			return s, nil
		}
		select {
		case err := <-d.done:
			t.Fatalf("the daemon ended while waiting for %s: %v", what, err)
		default:
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("not %s within 10 s (%v)", what, err)
	return nil, err
}

// get fetches path from the HTTP listener with Host host.
func (d *inproc) get(t *testing.T, host, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+d.httpAddr+path, nil)
	req.Host = host
	// No keep-alive: an idle connection left in a shared pool would hold
	// one of the listener's places (TestHTTPLimits counts them).
	req.Close = true
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("GET %s (Host %s): %v", path, host, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// rawRequest writes req on a new connection to network/addr and returns
// the status line of the answer, or the error that ended the connection.
func rawRequest(network, addr string, req []byte) (string, error) {
	c, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	go c.Write(req)
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}
