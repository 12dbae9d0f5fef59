package main

// End-to-end tests of the daemon as a systemd service and a network
// appliance: readiness and watchdog over sd_notify, reload with a broken
// file, and the read-only status page, metrics and health check.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
	"github.com/headnode/headnode/netcfg/sandbox"
)

// notifySocket stands in for systemd: it records every sd_notify datagram
// with its arrival time.
type notifySocket struct {
	path string
	conn *net.UnixConn
	mu   sync.Mutex
	msgs []notifyMsg
}

type notifyMsg struct {
	at   time.Time
	text string
}

func newNotifySocket(t *testing.T) *notifySocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	n := &notifySocket{path: path, conn: conn}
	go func() {
		buf := make([]byte, 4096)
		for {
			k, err := conn.Read(buf)
			if err != nil {
				return
			}
			n.mu.Lock()
			n.msgs = append(n.msgs, notifyMsg{time.Now(), string(buf[:k])})
			n.mu.Unlock()
		}
	}()
	t.Cleanup(func() { conn.Close() })
	return n
}

// first returns the first message containing s, waiting up to 5 s.
func (n *notifySocket) first(t *testing.T, s string) notifyMsg {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		n.mu.Lock()
		for _, m := range n.msgs {
			if strings.Contains(m.text, s) {
				n.mu.Unlock()
				return m
			}
		}
		n.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no sd_notify message with %q in 5 s; got %q", s, n.all())
	return notifyMsg{}
}

// readyAfterReloading says whether a READY=1 follows the RELOADING=1, as
// systemd needs to end the reload.
func readyAfterReloading(msgs []string) bool {
	reloading := false
	for _, m := range msgs {
		reloading = reloading || strings.HasPrefix(m, "RELOADING=1")
		if reloading && strings.HasPrefix(m, "READY=1") {
			return true
		}
	}
	return false
}

// waitCount waits up to 5 s until want messages contain s.
func (n *notifySocket) waitCount(t *testing.T, s string, want int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if n.count(s) >= want {
			return
		}
	}
	t.Fatalf("not %d sd_notify messages with %q in 5 s; got %q", want, s, n.all())
}

func (n *notifySocket) count(s string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := 0
	for _, m := range n.msgs {
		if strings.Contains(m.text, s) {
			c++
		}
	}
	return c
}

func (n *notifySocket) all() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for _, m := range n.msgs {
		out = append(out, m.text)
	}
	return out
}

func TestE2EReadyWithin1sAndWatchdog(t *testing.T) {
	tp := newTopo(t, true)
	ns := newNotifySocket(t)
	start := time.Now()
	d := tp.startDaemon(t, tp.config(t, ""), "NOTIFY_SOCKET="+ns.path, "WATCHDOG_USEC=200000")
	ready := ns.first(t, "READY=1")
	took := ready.at.Sub(start)
	t.Logf("READY=1 %v after start: %q", took.Round(time.Millisecond), ready.text)
	if took > time.Second {
		t.Errorf("READY=1 came %v after start, want within 1 s", took)
	}
	if !strings.Contains(ready.text, "STATUS=") || !strings.Contains(ready.text, "NAT 192.168.50.0/24") {
		t.Errorf("READY message lacks a useful STATUS line: %q", ready.text)
	}
	if s, _ := d.client.Status(context.Background()); !s.Ready || s.NAT.State != api.NATOK {
		t.Errorf("status at READY: ready %v, NAT %q", s.Ready, s.NAT.State)
	}
	// WatchdogSec=200ms: pings every 100 ms from the main loop.
	time.Sleep(time.Second)
	if n := ns.count("WATCHDOG=1"); n < 5 {
		t.Errorf("%d watchdog pings in 1 s with WATCHDOG_USEC=200000, want about 10", n)
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	ns.first(t, "STOPPING=1")
}

func TestE2EReloadWithBrokenFileKeepsRunning(t *testing.T) {
	tp := newTopo(t, true)
	ns := newNotifySocket(t)
	cfg := tp.config(t, "")
	good, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d := tp.startDaemon(t, cfg, "NOTIFY_SOCKET="+ns.path)
	d.waitFor(t, "NAT ok", func(s *api.Status) bool { return s.NAT.State == api.NATOK })

	broken := strings.Replace(string(good), `uplink_interface = "eth1"`, `uplink_interface = "eth1"`+"\nuplink_mtu = 1500", 1)
	if err := os.WriteFile(cfg, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	d.cmd.Process.Signal(syscall.SIGHUP)
	s, _ := d.waitFor(t, "the failed reload", func(s *api.Status) bool { return s.Config.ReloadsFailed == 1 })
	if s.Config.ReloadOK || !strings.Contains(s.Config.ReloadError, `unknown key "network.uplink_mtu"`) {
		t.Errorf("config status after a broken reload: %+v", s.Config)
	}
	if s.Health.State != api.HealthFailed || s.Health.Class != 1 || !strings.HasPrefix(s.Health.Reasons[0], "config invalid:") {
		t.Errorf("health after a broken reload: %+v", s.Health)
	}
	if !d.logged("reload failed; keeping the running configuration") {
		t.Errorf("log does not say the reload failed:\n%s", d.log.String())
	}
	// The datagrams arrive asynchronously: wait for the READY that ends
	// the reload before counting.
	ns.waitCount(t, "READY=1", 2)
	if msgs := ns.all(); ns.count("RELOADING=1") != 1 || !readyAfterReloading(msgs) {
		t.Errorf("sd_notify messages: %q", msgs)
	}
	// Still running on the old configuration: NAT works.
	if src, err := dial(tp.inside, tp.outside, nextAddr("10.99.0.1"), 2*time.Second); err != nil || src != "10.99.0.2" {
		t.Errorf("after the broken reload: %q, %v", src, err)
	}
	metrics := fetch(t, tp.head, "http://127.0.0.1:9180/metrics", "")
	for _, want := range []string{"headnode_config_last_reload_successful 0", "headnode_config_reloads_failed_total 1"} {
		if !strings.Contains(metrics, want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
	// Fixing the file and reloading again recovers.
	if err := os.WriteFile(cfg, good, 0o644); err != nil {
		t.Fatal(err)
	}
	d.cmd.Process.Signal(syscall.SIGHUP)
	d.waitFor(t, "a good reload", func(s *api.Status) bool { return s.Config.ReloadOK && s.Health.State == api.HealthOK })
	select {
	case <-d.exited:
		t.Fatal("the daemon exited")
	default:
	}
}

// fetch GETs url from inside ns (where the daemon listens) and returns the
// body; accept sets the Accept header.
func fetch(t *testing.T, ns *sandbox.NS, url, accept string) string {
	t.Helper()
	body, code := fetchCode(t, ns, url, accept)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d\n%s", url, code, body)
	}
	return body
}

func fetchCode(t *testing.T, ns *sandbox.NS, url, accept string) (string, int) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return ns.Dial(addr, net.Dialer{Timeout: 2 * time.Second})
		},
	}}
	var last error
	for range 50 { // the listener starts with the daemon; give it a moment
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := c.Do(req)
		if err != nil {
			last = err
			time.Sleep(50 * time.Millisecond)
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return string(b), resp.StatusCode
	}
	t.Fatalf("GET %s: %v", url, last)
	return "", 0
}

func TestE2EStatusPageMetricsHealthz(t *testing.T) {
	tp := newTopo(t, true)
	d := tp.startDaemon(t, tp.config(t, ""))
	d.waitFor(t, "NAT ok", func(s *api.Status) bool { return s.NAT.State == api.NATOK && s.Uplink.Address != "" })

	html := fetch(t, tp.head, "http://127.0.0.1:9180/", "text/html")
	for _, want := range []string{"<title>headnode", "10.99.0.2/24", "192.168.50.0/24", "iptables-nft"} {
		if !strings.Contains(html, want) {
			t.Errorf("status page lacks %q", want)
		}
	}
	var s api.Status
	if err := json.Unmarshal([]byte(fetch(t, tp.head, "http://127.0.0.1:9180/", "application/json")), &s); err != nil {
		t.Fatalf("JSON status: %v", err)
	}
	if s.Uplink.Address != "10.99.0.2/24" || s.NAT.State != api.NATOK {
		t.Errorf("JSON status: uplink %q NAT %q", s.Uplink.Address, s.NAT.State)
	}
	// The page is also served on the cluster address, for the nodes.
	if body := fetch(t, tp.inside, "http://192.168.50.1:9180/healthz", ""); !strings.HasPrefix(body, "ok") {
		t.Errorf("healthz from a node: %q", body)
	}
	// Read-only: the network listener has no state-changing routes.
	for _, path := range []string{"/v1/nat/clear", "/v1/nat/apply"} {
		c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, n, a string) (net.Conn, error) {
			return tp.inside.Dial(a, net.Dialer{Timeout: 2 * time.Second})
		}}}
		resp, err := c.Post("http://192.168.50.1:9180"+path, "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("POST %s on the network listener answered %d", path, resp.StatusCode)
		}
	}
	if s, _ := d.client.Status(context.Background()); s.NAT.State != api.NATOK {
		t.Errorf("NAT state changed after POSTs to the network listener: %s", s.NAT.State)
	}

	metrics := fetch(t, tp.head, "http://127.0.0.1:9180/metrics", "")
	for _, want := range []string{
		`headnode_health_state{state="ok"} 1`,
		`headnode_nat_rules_present 1`,
		`headnode_link_address_info{address="10.99.0.2/24",interface="eth1",role="uplink"} 1`,
		`headnode_nat_repairs_total 0`,
		`headnode_dhcp_leases 0`,
	} {
		if !strings.Contains(metrics, want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
	promtoolCheck(t, metrics)
}

// promtoolCheck runs Prometheus' own linter on a scrape.
func promtoolCheck(t *testing.T, metrics string) {
	t.Helper()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not installed (Debian package prometheus): %v", err)
	}
	check := exec.Command(promtool, "check", "metrics")
	check.Stdin = strings.NewReader(metrics)
	if out, err := check.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// simConfig is a configuration on the emulated machine of [hardware.sim]
// (ClusterHAT v2.5 with four nodes, 16x2 LCD, BlinkStick Strip) with p1 at
// the inside namespace's address and fast probing.
func (tp *topo) simConfig(t *testing.T) string {
	t.Helper()
	cfg := tp.config(t, `
[power]
stagger = "100ms"
boot_grace = "1500ms"
probe_interval = "200ms"
down_after = "600ms"

[[nodes]]
name = "p1"
address = "192.168.50.2"

[hardware]
backend = "sim"
`)
	// The shared test config turns the LCD and LED off; here they are
	// emulated.
	text, _ := os.ReadFile(cfg)
	text = []byte(strings.NewReplacer("[lcd]\nenabled = false", "[lcd]\nenabled = true", "[led]\nenabled = false", "[led]\nenabled = true").Replace(string(text)))
	if err := os.WriteFile(cfg, text, 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// The status page rendered by a real browser: headless Chromium in the
// head's namespace takes a screenshot and dumps the rendered DOM.
func TestE2EStatusPageInChromium(t *testing.T) {
	tp := newTopo(t, true)
	cfg := tp.simConfig(t)
	d := tp.startDaemon(t, cfg)
	if _, errOut, code := run(t, nil, "on", "p1", "--config", cfg); code != 0 {
		t.Fatalf("on p1: %s", errOut)
	}
	d.waitFor(t, "p1 up and the LCD showing", func(s *api.Status) bool {
		return nodeOf(s, "p1").State == api.NodeUp && len(s.Display.LCD.Rows) == 2 && s.Health.State == api.HealthOK
	})
	fetch(t, tp.head, "http://127.0.0.1:9180/healthz", "") // listener up
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium not installed (Debian package chromium): %v", err)
	}
	dir := t.TempDir()
	shot := filepath.Join(dir, "status.png")
	flags := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + filepath.Join(dir, "profile"), "--window-size=1200,900"}
	out, err := tp.head.Run(chromium, append(flags, "--screenshot="+shot, "http://127.0.0.1:9180/")...)
	if err != nil {
		t.Fatalf("chromium screenshot: %v\n%s", err, out)
	}
	checkScreenshot(t, shot)
	if dst := os.Getenv("HEADNODE_SCREENSHOT"); dst != "" {
		b, _ := os.ReadFile(shot)
		os.WriteFile(dst, b, 0o644)
	}
	dom, err := tp.head.Run(chromium, append(flags, "--dump-dom", "http://127.0.0.1:9180/")...)
	if err != nil {
		t.Fatalf("chromium dump-dom: %v", err)
	}
	for _, want := range []string{"10.99.0.2/24", ">ok<", "NAT", "ClusterHAT v2.5", "BlinkStick Strip"} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered page lacks %q", want)
		}
	}
	fmt.Fprintf(io.Discard, "%s", dom)
}

// The appliance as a whole on emulated hardware (a ClusterHAT v2.5 with
// four nodes, a 16x2 LCD and a BlinkStick Strip, the [hardware.sim]
// defaults), with p1 a real namespace behind the head: READY within 1 s,
// watchdog pings, the uplink address on the LCD and its change within 1 s,
// a node off by request is no fault, a powered node that stops answering
// turns the LED to degraded, and a broken reload keeps everything running.
func TestE2EApplianceOnEmulatedHardware(t *testing.T) {
	tp := newTopo(t, true)
	ns := newNotifySocket(t)
	cfg := tp.simConfig(t)
	good, _ := os.ReadFile(cfg)

	start := time.Now()
	d := tp.startDaemon(t, cfg, "NOTIFY_SOCKET="+ns.path, "WATCHDOG_USEC=400000")
	if took := ns.first(t, "READY=1").at.Sub(start); took > time.Second {
		t.Errorf("READY=1 %v after start, want within 1 s", took)
	} else {
		t.Logf("READY=1 %v after start", took.Round(time.Millisecond))
	}
	row := func(s *api.Status, i int) string {
		if len(s.Display.LCD.Rows) <= i {
			return ""
		}
		return strings.TrimSpace(s.Display.LCD.Rows[i])
	}
	d.waitFor(t, "the uplink address on the LCD", func(s *api.Status) bool { return row(s, 0) == "10.99.0.2" })

	// p1 on, the others off by request: not a fault.
	if _, errOut, code := run(t, nil, "on", "p1", "--config", cfg); code != 0 {
		t.Fatalf("on p1: %d %s", code, errOut)
	}
	if _, errOut, code := run(t, nil, "off", "p2", "p3", "p4", "--config", cfg); code != 0 {
		t.Fatalf("off p2 p3 p4: %d %s", code, errOut)
	}
	s, _ := d.waitFor(t, "p1 up, the rest off, health ok, LED ok", func(s *api.Status) bool {
		return nodeOf(s, "p1").State == api.NodeUp && nodeOf(s, "p2").State == api.NodeOff &&
			nodeOf(s, "p4").State == api.NodeOff && s.Health.State == api.HealthOK && s.Display.LED.Pattern == "ok"
	})
	if row(s, 1) != "1/4 up  NAT ok" && !strings.Contains(row(s, 1), "NAT ok") {
		t.Errorf("LCD row 2 %q", row(s, 1))
	}
	t.Logf("LCD %q, LED %v", s.Display.LCD.Rows, s.Display.LED.Colors)
	metrics := fetch(t, tp.head, "http://127.0.0.1:9180/metrics", "")
	for _, want := range []string{
		`headnode_node_state{node="p1",state="up"} 1`,
		`headnode_node_power_on{node="p2"} 0`,
		`headnode_node_up{node="p1"} 1`,
		`headnode_display_device_state{device="lcd",state="ok"} 1`,
		`headnode_led_pattern{pattern="ok"} 1`,
		`headnode_i2c_errors_total{bus="1"} 0`,
	} {
		if !strings.Contains(metrics, want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
	promtoolCheck(t, metrics)
	page := fetch(t, tp.head, "http://127.0.0.1:9180/", "text/html")
	for _, want := range []string{"ClusterHAT v2.5", "n-up", "p4", "10.99.0.2       ", "BlinkStick Strip"} {
		if !strings.Contains(page, want) {
			t.Errorf("status page lacks %q", want)
		}
	}

	// The uplink address changes: on the glass within 1 s.
	changed := time.Now()
	tp.renumberUplink(t)
	_, at := d.waitFor(t, "the new address on the LCD", func(s *api.Status) bool { return row(s, 0) == "10.99.0.7" })
	t.Logf("new address on the LCD %v after the change", at.Sub(changed).Round(time.Millisecond))
	if at.Sub(changed) > time.Second {
		t.Errorf("the LCD took %v to show the new address, want within 1 s", at.Sub(changed))
	}

	// p1 stops answering while powered: degraded, on the LED too.
	must(t, tp.inside.Down("in0"))
	s, _ = d.waitFor(t, "p1 unreachable, the LED degraded, the LCD saying so", func(s *api.Status) bool {
		return nodeOf(s, "p1").State == api.NodeUnreachable && s.Health.State == api.HealthDegraded &&
			s.Display.LED.Pattern == "degraded" && row(s, 1) == "p1 unreachable"
	})
	if !strings.Contains(strings.Join(s.Health.Reasons, "|"), "p1") {
		t.Errorf("degraded without naming p1: %v", s.Health.Reasons)
	}
	t.Logf("degraded: reasons %q, LCD %q, LED %v", s.Health.Reasons, s.Display.LCD.Rows, s.Display.LED.Colors)

	// A broken reload keeps the daemon, its hardware and NAT going.
	os.WriteFile(cfg, []byte(strings.Replace(string(good), `stagger = "100ms"`, `stagger = "fast"`, 1)), 0o644)
	d.cmd.Process.Signal(syscall.SIGHUP)
	s, _ = d.waitFor(t, "the failed reload", func(s *api.Status) bool { return s.Config.ReloadsFailed == 1 })
	if s.Config.ReloadOK || s.Health.State != api.HealthFailed || s.Health.Class != 1 || !strings.Contains(s.Config.ReloadError, `power.stagger: "fast" is not a duration`) {
		t.Errorf("after a broken reload: config %+v health %+v", s.Config, s.Health)
	}
	if n := nodeOf(s, "p1"); n.Powered == nil || !*n.Powered {
		t.Errorf("p1 lost power on a failed reload: %+v", n)
	}
	// The LED shows the reload (one blue breath), then the broken file.
	d.waitFor(t, "the LED breathing blue for the reload", func(s *api.Status) bool { return s.Display.LED.Pattern == "starting" })
	d.waitFor(t, "the LED blinking failed class 1", func(s *api.Status) bool { return s.Display.LED.Pattern == "failed-1" })
	must(t, tp.inside.Up("in0"))
	must(t, tp.inside.DefaultRoute("192.168.50.1"))
	if src, err := dial(tp.inside, tp.outside, nextAddr("10.99.0.1"), 2*time.Second); err != nil || src != "10.99.0.7" {
		t.Errorf("NAT after the broken reload: %q, %v", src, err)
	}
	if n := ns.count("WATCHDOG=1"); n < 3 {
		t.Errorf("%d watchdog pings, want several (WATCHDOG_USEC=400000)", n)
	}
	select {
	case <-d.exited:
		t.Fatal("the daemon exited")
	default:
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
