package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
)

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// vmKB reads a field of /proc/PID/status in kB (VmRSS, VmHWM).
func vmKB(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == field+":" {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	return 0
}

// legitLoad asks for the status over the control socket (as root) and
// for the page over the network listener (from the head itself) until
// stop, counting failures.
func legitLoad(t *testing.T, tp *topo, d *daemonProc, stop <-chan struct{}) (wait func() (requests, failures int64)) {
	var n, failed atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr []string
	fail := func(err error) {
		failed.Add(1)
		mu.Lock()
		if len(firstErr) < 5 {
			firstErr = append(firstErr, err.Error())
		}
		mu.Unlock()
	}
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			n.Add(1)
			if _, err := d.client.Status(context.Background()); err != nil {
				fail(err)
			}
		}
	})
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			n.Add(1)
			if code, err := getOnce(tp, "127.0.0.1:9180", "/healthz"); err != nil || code != 200 {
				fail(fmt.Errorf("healthz: %d %v", code, err))
			}
		}
	})
	return func() (int64, int64) {
		wg.Wait()
		if len(firstErr) > 0 {
			t.Logf("legitimate requests that failed: %q", firstErr)
		}
		return n.Load(), failed.Load()
	}
}

// getOnce GETs path from addr inside head, once, and returns the status
// code.
func getOnce(tp *topo, addr, path string) (int, error) {
	c, err := tp.head.Dial(addr, net.Dialer{Timeout: 5 * time.Second})
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", path)
	b := make([]byte, 12)
	if _, err := c.Read(b); err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.Fields(string(b))[1])
}

// TestE2EHostileClients: a member of the control socket's group (nobody
// in nogroup) and a machine on the cluster side attack the daemon's two
// listeners at once: slowloris, 2,000 stalled bodies, 1 MB headers, 40 MB
// bodies, more connections than allowed. Every attack is contained (caps,
// 431, 413, timeouts), root's CLI and the status page are answered all
// along without one failure, and the daemon's resident memory stays under
// 40 MB. Dropping the group then revokes the member's access.
func TestE2EHostileClients(t *testing.T) {
	tp := newTopo(t, true)
	cfg := tp.config(t, "")
	text, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, []byte(strings.Replace(string(text), "[control]\n", "[control]\ngroup = \"nogroup\"\n", 1)), 0o644)
	openToNobody(t, tp.dir)
	d := tp.startDaemon(t, cfg)
	sock := filepath.Join(tp.dir, "control.sock")
	pid := d.cmd.Process.Pid
	if out, code := runAsNobody(t, "status", "--socket", sock); code != 0 {
		t.Fatalf("headnode status as a member of the group: exit %d\n%s", code, out)
	}
	rssStart := vmKB(pid, "VmRSS")

	stop := make(chan struct{})
	wait := legitLoad(t, tp, d, stop)
	var wg sync.WaitGroup
	results := map[string]outcome{}
	var mu sync.Mutex
	record := func(name string, o outcome) {
		mu.Lock()
		results[name] = o
		mu.Unlock()
	}
	cluster := func() (net.Conn, error) {
		return tp.inside.Dial("192.168.50.1:9180", net.Dialer{Timeout: 5 * time.Second})
	}
	// Three rounds, each at once: connections held open (first stalled
	// bodies, then slow headers: one user's cap is shared by its attacks),
	// then oversized requests.
	var rssDuring int64
	for _, round := range [][]attack{
		{{Kind: "stalled-body", Socket: sock, N: 2000}, {Kind: "slowloris", N: 40}},
		{{Kind: "slowloris", Socket: sock, N: 60}},
		{{Kind: "big-header", Socket: sock, N: 5}, {Kind: "big-body", Socket: sock, N: 2}, {Kind: "big-header", N: 5}},
	} {
		for _, a := range round {
			if a.Socket != "" {
				wg.Go(func() { record("control "+a.Kind, asNobody(t, a)) })
			} else {
				wg.Go(func() { record("http "+a.Kind, a.run(cluster)) })
			}
		}
		time.Sleep(time.Second) // under way; the first round holds for seconds
		rssDuring = max(rssDuring, vmKB(pid, "VmRSS"))
		wg.Wait()
	}
	close(stop)
	requests, failures := wait()
	peak := vmKB(pid, "VmHWM")

	for name, o := range results {
		t.Logf("%-22s accepted %d, refused %d, held up to %v, answers %v %s", name, o.Accepted, o.Refused, o.Held.Round(time.Millisecond), o.Answers, o.Err)
		if o.Err != "" {
			t.Errorf("%s: %s", name, o.Err)
		}
	}
	// Control socket: 32 connections per user; headers and bodies within
	// 5 s; 8 KiB of headers; 64 KiB of body.
	slow, stalled := results["control slowloris"], results["control stalled-body"]
	if slow.Accepted > 32 || slow.Refused < 28 || stalled.Accepted > 32 || stalled.Refused < 1968 {
		t.Errorf("control socket: one user had %d and %d connections taken; want at most 32", stalled.Accepted, slow.Accepted)
	}
	if slow.Held > 8*time.Second || stalled.Held > 8*time.Second {
		t.Errorf("control socket: slow headers held %v, stalled bodies %v; want them cut off after 5 s", slow.Held, stalled.Held)
	}
	if n := results["control big-header"].Answers["HTTP/1.1 431 Request Header Fields Too Large"]; n != 5 {
		t.Errorf("control socket: 1 MB of headers answered 431 %d times of 5: %+v", n, results["control big-header"])
	}
	if o := results["control big-body"]; o.Answers["HTTP/1.1 413 Request Entity Too Large"]+o.Refused != 2 || o.Held > 8*time.Second {
		t.Errorf("control socket: 40 MB bodies: %+v, want 413", o)
	}
	// Status page, from a node: 16 connections per client; 5 s for headers.
	if o := results["http slowloris"]; o.Accepted > 16 || o.Refused < 24 || o.Held > 8*time.Second {
		t.Errorf("status page: slowloris from one node: %+v, want at most 16 taken, cut off after 5 s", o)
	}
	if n := results["http big-header"].Answers["HTTP/1.1 431 Request Header Fields Too Large"]; n != 5 {
		t.Errorf("status page: 1 MB of headers answered 431 %d times of 5", n)
	}
	m, _ := fetchCode(t, tp.head, "http://127.0.0.1:9180/metrics", "")
	t.Logf("the daemon's counts:\n%s", grepLines(m, "refused_total{"))

	t.Logf("legitimate requests meanwhile: %d, %d failed; daemon resident memory %.1f MB at start, %.1f MB during the attacks, peak %.1f MB",
		requests, failures, float64(rssStart)/1024, float64(rssDuring)/1024, float64(peak)/1024)
	if failures > 0 {
		t.Errorf("%d of %d legitimate requests failed during the attacks", failures, requests)
	}
	if peak > 40*1024 {
		t.Errorf("the daemon's resident memory peaked at %.1f MB, over 40 MB", float64(peak)/1024)
	}

	// Dropping the group revokes the member's access.
	os.WriteFile(cfg, text, 0o644)
	d.cmd.Process.Signal(syscall.SIGHUP)
	d.waitFor(t, "the socket root's alone", func(*api.Status) bool {
		fi, err := os.Stat(sock)
		return err == nil && fi.Mode().Perm() == 0o600
	})
	if out, code := runAsNobody(t, "status", "--socket", sock); code == 0 || !strings.Contains(out, "permission denied") {
		t.Errorf("headnode status as nobody after the group was dropped: exit %d\n%s", code, out)
	}
}

// TestE2ESecondDaemon: a second `headnode daemon` on the same machine
// (state directory) exits 1 with one line naming the running daemon's
// PID, before touching anything: the first keeps its socket, its NAT and
// its power board.
func TestE2ESecondDaemon(t *testing.T) {
	tp := newTopo(t, true)
	cfg := tp.simConfig(t)
	d := tp.startDaemon(t, cfg)
	sock := filepath.Join(tp.dir, "control.sock")
	before, err := os.Lstat(sock)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	out, errOut, code := run(t, tp.head, "daemon", "--config", cfg)
	took := time.Since(start)
	lock := filepath.Join(tp.dir, "state", "daemon.lock")
	want := fmt.Sprintf("headnode: another headnode daemon is running (PID %d holds %s): stop it first (systemctl stop headnode), or give this one another [daemon] state_dir\n", d.cmd.Process.Pid, lock)
	if code != 1 || errOut != want || out != "" {
		t.Errorf("second daemon: exit %d, stdout %q, stderr %q; want exit 1 and %q", code, out, errOut, want)
	}
	t.Logf("the second daemon gave up after %v", took.Round(time.Millisecond))
	after, err := os.Lstat(sock)
	if err != nil || !os.SameFile(before, after) {
		t.Errorf("the running daemon's socket was touched: %v", err)
	}
	if _, errOut, code := run(t, nil, "status", "--config", cfg); code != 0 {
		t.Errorf("headnode status after the second daemon: exit %d %s", code, errOut)
	}
	s, err := d.client.Status(context.Background())
	if err != nil || s.NAT.State != api.NATOK || len(s.Power.Boards) != 1 || s.Power.Boards[0].State != "ok" {
		t.Errorf("the running daemon after the second one tried: %v %+v %+v", err, s.NAT, s.Power.Boards)
	}
	if !strings.Contains(d.log.String(), "headnode started") || strings.Count(d.log.String(), "headnode started") != 1 {
		t.Errorf("the running daemon's log: %s", tail(d.log.String(), 20))
	}
}
