package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
	"github.com/headnode/headnode/cmd/headnode/internal/console/consoletest"
)

var floodFor = flag.Duration("console.flood", 30*time.Second, "how long TestE2EConsoleFlood floods a console at 10 MB/s")

// consoleTopo is a daemon with consoles p1..pN on devices the test plays
// the nodes on.
func consoleTopo(t *testing.T, n int, buffer string) (*topo, *daemonProc, []*consoletest.Device) {
	tp := newTopo(t, true)
	extra := fmt.Sprintf("\n[console]\nbuffer_size = %q\npersist_interval = \"2s\"\n", buffer)
	var devs []*consoletest.Device
	for i := 1; i <= n; i++ {
		link := filepath.Join(tp.dir, fmt.Sprintf("ttyp%d", i))
		devs = append(devs, consoletest.Plug(t, link))
		extra += fmt.Sprintf("\n[[nodes]]\nname = \"p%d\"\nconsole = %q\n", i, link)
	}
	// [[nodes]] must come after the [network] keys config() puts first.
	cfg := tp.config(t, "")
	text, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, append(text, extra...), 0o644)
	d := tp.startDaemon(t, cfg)
	d.waitFor(t, "the consoles open", func(s *api.Status) bool {
		open := 0
		for _, c := range s.Consoles.Nodes {
			if c.State == "open" {
				open++
			}
		}
		return open == n
	})
	return tp, d, devs
}

func rssKiB(t *testing.T, pid int, field string) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	t.Fatalf("no %s for %d", field, pid)
	return 0
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

// One node floods its console with 10 MB/s of binary garbage for 30 s
// (-console.flood): the daemon reads all of it, its memory stays within
// the buffer plus a few MB, its disk within twice the buffer, a session
// watching the flood gets every byte or is told what it missed, one that
// does not read holds nothing up, and the other console and the control
// API keep answering.
func TestE2EConsoleFlood(t *testing.T) {
	const buffer = 1 << 20
	tp, d, devs := consoleTopo(t, 2, "1MiB")
	pid := d.cmd.Process.Pid
	c := d.client
	flooded, quiet := devs[0], devs[1]

	// Two sessions on the flooded console: one reads everything, one
	// never reads.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reader, err := c.ConsoleAttach(ctx, "p1", api.AttachRead)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	stuck, err := c.ConsoleAttach(ctx, "p1", api.AttachRead)
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	var readerGot, readerTold atomic.Int64
	go func() {
		for {
			kind, p, err := reader.Read()
			if err != nil {
				return
			}
			switch kind {
			case api.FrameData:
				readerGot.Add(int64(len(p)))
			case api.FrameNotice:
				var n int64
				if _, err := fmt.Sscanf(string(p), "%d bytes of output not shown", &n); err == nil {
					readerTold.Add(n)
				}
			}
		}
	}()
	// The node side of the flood must be drained for writes to go on:
	// the daemon writes nothing to p1, but the pty needs its reader.
	go io.Copy(io.Discard, flooded.Master)

	time.Sleep(time.Second)
	baseRSS := rssKiB(t, pid, "VmRSS")

	// The flood: random bytes at 10 MB/s.
	const rate = 10 << 20
	stop := make(chan struct{})
	var sent atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		rng := rand.New(rand.NewChaCha8([32]byte{1}))
		chunk := make([]byte, 64<<10)
		start := time.Now()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if sent.Load() > int64(time.Since(start).Seconds()*rate) {
				time.Sleep(time.Millisecond)
				continue
			}
			for i := range chunk {
				chunk[i] = byte(rng.Uint32())
			}
			n, err := flooded.Master.Write(chunk)
			sent.Add(int64(n))
			if err != nil {
				t.Errorf("flood write: %v", err)
				return
			}
		}
	})

	// Meanwhile: the control API, the quiet console, and the daemon's
	// memory, measured.
	var latencies []time.Duration
	var apiErrs, ticksMissing int
	peakRSS := baseRSS
	tick := 0
	start := time.Now()
	for time.Since(start) < *floodFor {
		t0 := time.Now()
		qctx, qcancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := c.Status(qctx)
		qcancel()
		latencies = append(latencies, time.Since(t0))
		if err != nil {
			apiErrs++
			t.Logf("status during the flood: %v", err)
		}
		if time.Since(start) > time.Duration(tick)*500*time.Millisecond {
			tick++
			fmt.Fprintf(quiet.Master, "tick %d\r\n", tick)
			if tick > 2 {
				// The tick before this one must be in p2's log by now.
				lctx, lcancel := context.WithTimeout(context.Background(), 5*time.Second)
				lg, err := c.ConsoleLog(lctx, "p2", 3)
				lcancel()
				if err != nil || !strings.Contains(fmt.Sprint(lg.Lines), fmt.Sprintf("tick %d", tick-1)) {
					ticksMissing++
				}
			}
		}
		peakRSS = max(peakRSS, rssKiB(t, pid, "VmRSS"))
		time.Sleep(100 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	elapsed := time.Since(start)
	// The high-water mark catches peaks between the samples.
	hwm := rssKiB(t, pid, "VmHWM")
	fmt.Fprintf(flooded.Master, "\r\nEND OF FLOOD\r\n")
	total := sent.Load() + int64(len("\r\nEND OF FLOOD\r\n"))

	var st *api.Status
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err = c.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if nc := consoleOf(st, "p1"); nc.Bytes == total || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	p1 := consoleOf(st, "p1")
	if p1.Bytes != total {
		t.Errorf("the daemon captured %d of the %d bytes sent", p1.Bytes, total)
	}
	lg, err := c.ConsoleLog(context.Background(), "p1", 0)
	if err != nil {
		t.Fatal(err)
	}
	last := lg.Lines[len(lg.Lines)-1]
	kept := 0
	for _, l := range lg.Lines {
		kept += len(l.Text)
	}
	if last.Text != "END OF FLOOD" {
		t.Errorf("the log's last line is %q, want the flood's last line", last.Text)
	}
	if first := lg.Lines[0].Time; time.Since(first) > 10*time.Second {
		t.Errorf("the log's first line is from %v ago: a 1 MiB ring at 10 MB/s holds a tenth of a second", time.Since(first))
	}
	// The watching session: everything, or told exactly what it missed.
	deadline = time.Now().Add(10 * time.Second)
	for readerGot.Load()+readerTold.Load() < total && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if got, told := readerGot.Load(), readerTold.Load(); got+told > total || got+told < total-256<<10 {
		t.Errorf("the watching session got %d and was told of %d missed, of %d", got, told, total)
	}
	var disk int64
	entries, _ := os.ReadDir(filepath.Join(tp.dir, "state", "console"))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "p1.log") {
			fi, _ := e.Info()
			disk += fi.Size()
		}
	}
	hwmAfterLog := rssKiB(t, pid, "VmHWM")
	rateGot := float64(sent.Load()) / elapsed.Seconds() / (1 << 20)
	t.Logf("flood: %.1f MB/s for %v (%d MB); daemon RSS %d KiB before, peak %d KiB sampled (+%d KiB), VmHWM %d KiB at its end (+%d KiB), %d KiB after the whole log was fetched; buffer %d KiB; p1's log files %d KiB",
		rateGot, elapsed.Round(time.Second), sent.Load()>>20, baseRSS, peakRSS, peakRSS-baseRSS, hwm, hwm-baseRSS, hwmAfterLog, buffer>>10, disk>>10)
	t.Logf("control API during the flood: %d requests, median %v, p99 %v, max %v, %d failed; p2's ticks late %d of %d; the watching session got %d MB and was told of %d MB missed",
		len(latencies), percentile(latencies, 0.5), percentile(latencies, 0.99), percentile(latencies, 1), apiErrs, ticksMissing, tick-2, readerGot.Load()>>20, readerTold.Load()>>20)
	// Below 10 MB/s the daemon did not read as fast as the node wrote
	// (the pty blocks the writer); a little below is a busy machine.
	if rateGot < 8 {
		t.Errorf("the flood reached %.1f MB/s, not 10: the daemon did not read as fast as the node wrote", rateGot)
	}
	// The buffer, the two sessions' queues and a few MB of heap and
	// garbage collector headroom (measured: 6 to 9 MB on a busy machine;
	// before the sessions' buffers were made once, 12.5 MB).
	if limit := baseRSS + buffer>>10 + 4*128 + 10<<10; max(peakRSS, hwm) > limit {
		t.Errorf("the daemon's RSS peaked at %d KiB (high-water mark %d KiB), over %d KiB (%d before + the buffer + 2 sessions' queues + 10 MiB)", peakRSS, hwm, limit, baseRSS)
	}
	if disk > 2*buffer {
		t.Errorf("p1's log files take %d bytes, over twice the %d-byte buffer", disk, buffer)
	}
	if apiErrs > 0 || ticksMissing > 0 {
		t.Errorf("during the flood %d status requests failed and %d of p2's lines were late", apiErrs, ticksMissing)
	}
}

func consoleOf(s *api.Status, node string) api.NodeConsole {
	for _, c := range s.Consoles.Nodes {
		if c.Name == node {
			return c
		}
	}
	return api.NodeConsole{}
}

// A console attached through the CLI: raw bytes both ways (the node's
// binary output arrives unchanged), the status page and JSON show the
// consoles but nothing of them is reachable from the network listener,
// the log outlives a daemon restart, and a daemon that stops ends the
// session with a message and the terminal as it was.
func TestE2EConsoleDaemon(t *testing.T) {
	tp, d, devs := consoleTopo(t, 1, "64KiB")
	dev := devs[0]
	sock := filepath.Join(tp.dir, "control.sock")
	fmt.Fprintf(dev.Master, "boot line one\r\nboot line two\r\n")

	w := openTerm(t, "--socket", sock, "console", "p1")
	w.expect("the banner", regexp.MustCompile(`Connected to p1's console \(\S+/ttyp1\)\. Ctrl-\] detaches\.`))
	// Typed bytes reach the node as typed (raw terminal): Ctrl-C, a
	// tab and a carriage return included.
	w.typ("ls\t\x03\r")
	buf := make([]byte, 64)
	dev.Master.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := io.ReadAtLeast(dev.Master, buf, 5)
	if err != nil || string(buf[:n]) != "ls\t\x03\r" {
		t.Errorf("the node got %q, %v; want what was typed", buf[:n], err)
	}
	// The node's bytes reach the terminal unchanged.
	garbage := []byte("\x00\x01\xfe\xff\x1b[31mred\x1b[0m\r\n")
	dev.Master.Write(garbage)
	w.expectText("the node's bytes", string(garbage))

	// The status page (on the network listener) shows consoles, in
	// HTML and JSON, but serves none of the console routes.
	get := func(method, path string, hdr map[string]string) (int, string) {
		t.Helper()
		c, err := tp.head.Dial("127.0.0.1:9180", net.Dialer{Timeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		req, _ := http.NewRequest(method, "http://127.0.0.1:9180"+path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		req.Write(c)
		resp, err := http.ReadResponse(bufio.NewReader(c), req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("GET", "/", map[string]string{"Accept": "application/json"}); code != 200 || !strings.Contains(body, `"consoles"`) || !strings.Contains(body, "boot line two") {
		t.Errorf("status JSON on the network: %d\n%s", code, body)
	} else {
		var s api.Status
		if err := json.Unmarshal([]byte(body), &s); err != nil {
			t.Errorf("status JSON with a console's binary output does not parse: %v", err)
		}
	}
	if code, body := get("GET", "/", nil); code != 200 || !strings.Contains(body, "Consoles") {
		t.Errorf("status page: %d", code)
	}
	for _, r := range []struct{ method, path string }{
		{"GET", "/v1/console/p1/log"}, {"GET", "/v1/console/p1/follow"}, {"POST", "/v1/console/p1/attach"}, {"GET", "/v1/status"},
	} {
		code, _ := get(r.method, r.path, map[string]string{"Connection": "Upgrade", "Upgrade": api.ConsoleUpgrade})
		if code != http.StatusNotFound && code != http.StatusMethodNotAllowed {
			t.Errorf("%s %s on the network listener: %d, want 404", r.method, r.path, code)
		}
	}
	// The control socket is root's and its group's alone (root's alone,
	// 0600, here: the group does not exist): another user who can reach
	// it (its directories opened up for the test) is refused.
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm()&0o007 != 0 {
		t.Errorf("control socket mode %v, %v", fi.Mode(), err)
	}
	for dir := tp.dir; dir != os.TempDir(); dir = filepath.Dir(dir) {
		os.Chmod(dir, 0o755)
	}
	self, _ := os.ReadFile(binary)
	bin := filepath.Join(tp.dir, "headnode")
	os.WriteFile(bin, self, 0o755)
	nobody := exec.Command(bin, "--socket", sock, "console", "p1", "--log")
	nobody.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	if out, err := nobody.CombinedOutput(); err == nil || !strings.Contains(string(out), "permission denied") || strings.Contains(string(out), "boot line") {
		t.Errorf("another user's console --log: %v, %s", err, out)
	}

	// --follow streams new lines.
	fctx, fcancel := context.WithCancel(context.Background())
	followed := make(chan string, 100)
	go d.client.ConsoleFollow(fctx, "p1", func(l api.ConsoleLine) bool { followed <- l.Text; return true })
	fmt.Fprintf(dev.Master, "followed line\r\n")
	for got := ""; got != "followed line"; {
		select {
		case got = <-followed:
		case <-time.After(5 * time.Second):
			t.Fatal("--follow never showed the new line")
		}
	}
	fcancel()

	// The device vanishing mid-session (the node reboots, its gadget
	// goes and comes back) keeps the session, which says so and goes on.
	dev.Unplug()
	w.expect("the device gone", regexp.MustCompile(`\[headnode: p1's console \S+/ttyp1 went away; waiting for it to come back \(Ctrl-\] detaches\)\]`))
	dev = consoletest.Plug(t, dev.Link)
	w.expect("the device back", regexp.MustCompile(`\[headnode: p1's console \S+/ttyp1 is here\]`))
	fmt.Fprintf(dev.Master, "after the reboot\r\n")
	w.expect("output after the reboot", regexp.MustCompile(`after the reboot\r\n`))
	w.typ("x")
	dev.Master.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := dev.Master.Read(buf); err != nil || string(buf[:n]) != "x" {
		t.Errorf("after the reboot the node got %q, %v", buf[:n], err)
	}

	// The daemon stopping ends the session with a message; the terminal
	// is restored.
	time.Sleep(2500 * time.Millisecond) // one persist_interval: the log reaches the disk
	d.stop(t)
	w.expect("the end", regexp.MustCompile(`headnode: the headnode daemon stopped`))
	if code := w.wait("the daemon stopping"); code != 1 {
		t.Errorf("exit %d when the daemon stopped", code)
	}

	// The log outlives the restart.
	d = tp.startDaemon(t, filepath.Join(tp.dir, "config.toml"))
	out, errOut, code := run(t, nil, "--socket", sock, "console", "p1", "--log")
	if code != 0 || !strings.Contains(out, "boot line one") || !strings.Contains(out, "followed line") || !strings.Contains(out, `\x00\x01\xfe\xffred`) {
		t.Errorf("--log after a restart: exit %d, %s\n%s", code, errOut, out)
	}
	if strings.ContainsAny(out, "\x00\x1b") || strings.Contains(out, string([]byte{0xff})) {
		t.Errorf("--log passes control bytes through:\n%q", out)
	}
	// Bad input: one clear line, exit 2.
	for _, args := range [][]string{{"console"}, {"console", "p0"}, {"console", "p1", "--bogus"}, {"console", "p1", "--take", "--read-only"}, {"status", "node1"}} {
		_, errOut, code := run(t, nil, append([]string{"--socket", sock}, args...)...)
		if code != 2 || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("headnode %v: exit %d, %q", args, code, errOut)
		}
	}
	if _, errOut, code := run(t, nil, "--socket", sock, "console", "p7", "--log"); code != 2 || !strings.Contains(errOut, "p7 has no console") {
		t.Errorf("a node without a console: exit %d, %q", code, errOut)
	}

	// A daemon that dies without a word: the session says the connection
	// was lost, and the terminal is restored.
	k := openTerm(t, "--socket", sock, "console", "p1")
	k.expect("the banner", regexp.MustCompile(`Connected to p1's console`))
	d.cmd.Process.Signal(syscall.SIGKILL)
	k.expect("the loss", regexp.MustCompile(`headnode: the connection to the headnode daemon was lost`))
	if code := k.wait("the daemon killed"); code != 1 {
		t.Errorf("exit %d when the daemon was killed", code)
	}
}
