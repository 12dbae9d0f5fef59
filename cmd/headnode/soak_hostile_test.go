package main

// The soak's hostile clients: now and then, alongside the faults, one of
// the attacks of hostile_test.go on one of the daemon's listeners, or a
// second daemon started on the same machine. Each is a row of the soak's
// table, "recovered" when the daemon contained it within its limit; all
// along, the daemon's resident memory stays under 40 MB.

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// soakRSSLimit is the resident memory the daemon stays under, hostile
// clients or not.
const soakRSSLimit = 40 << 10 // kB

// hostileRig is the hostile clients' part of the soak.
type hostileRig struct {
	secondCfg string
	rssStart  int64
	rssMax    atomic.Int64 // sampled VmRSS, kB
	threads   atomic.Int64 // the most OS threads sampled
}

// prepareHostile gives the control socket to nogroup, so that nobody (a
// member) can reach it, and writes the configuration a second daemon is
// started with: the valid one, whatever the reloads have written.
func (r *soakRig) prepareHostile(t *testing.T) *hostileRig {
	r.good = []byte(strings.Replace(string(r.good), "[control]\n", "[control]\ngroup = \"nogroup\"\n", 1))
	if err := os.WriteFile(r.cfg, r.good, 0o644); err != nil {
		t.Fatal(err)
	}
	openToNobody(t, r.tp.dir)
	h := &hostileRig{secondCfg: filepath.Join(r.tp.dir, "second.toml")}
	if err := os.WriteFile(h.secondCfg, r.good, 0o644); err != nil {
		t.Fatal(err)
	}
	return h
}

// sampleRSS follows the daemon's resident memory until ctx ends.
func (r *soakRig) sampleRSS(ctx context.Context, h *hostileRig) {
	pid := r.d.cmd.Process.Pid
	h.rssStart = vmKB(pid, "VmRSS")
	for {
		rss := vmKB(pid, "VmRSS")
		if rss > h.rssMax.Load() {
			h.rssMax.Store(rss)
		}
		if n := vmKB(pid, "Threads"); n > h.threads.Load() {
			h.threads.Store(n)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Kinds of hostile client in the table.
const (
	hostileHTTPSlow    = "slowloris on the status page (40 connections from a node)"
	hostileControlSlow = "slowloris and stalled bodies on the control socket (a group member, 80 connections)"
	hostileHeaders     = "1 MB of headers (status page and control socket)"
	hostileBody        = "40 MB body on the control socket"
	hostileSecond      = "second daemon started"
)

// hostileClients runs one attack at a time, at random, until ctx ends.
func (r *soakRig) hostileClients(ctx context.Context, h *hostileRig, rnd func(lo, hi time.Duration) time.Duration, pick func(int) int) {
	t := r.t
	sock := r.sock
	cluster := func() (net.Conn, error) {
		return r.tp.inside.Dial("192.168.50.1:9180", net.Dialer{Timeout: 2 * time.Second})
	}
	// Held connections are cut off after 5 s (header and body timeouts);
	// oversized requests are answered at once.
	const heldLimit, answerLimit = 7 * time.Second, 3 * time.Second
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(rnd(2*time.Second, 8*time.Second)):
		}
		switch pick(6) {
		case 0:
			r.stats.injected(hostileHTTPSlow, heldLimit, "all cut off after the 5 s header time; at most 16 taken, the rest refused at once")
			o := attack{Kind: "slowloris", N: 40}.run(cluster)
			// Connections are refused too while the cluster link is down.
			ok := o.Accepted <= 16 && o.Held <= heldLimit
			r.stats.recovered(hostileHTTPSlow, o.Held, ok)
			if !ok {
				r.stats.fail("%s: %+v", hostileHTTPSlow, o)
			}
		case 1:
			r.stats.injected(hostileControlSlow, heldLimit, "all cut off after 5 s; at most 32 taken, the rest refused at once")
			done := make(chan outcome, 1)
			go func() { done <- asNobody(t, attack{Kind: "stalled-body", Socket: sock, N: 20}) }()
			slow := asNobody(t, attack{Kind: "slowloris", Socket: sock, N: 60})
			stalled := <-done
			held := max(slow.Held, stalled.Held)
			ok := slow.Err == "" && stalled.Err == "" && slow.Accepted+stalled.Accepted <= 32 && slow.Refused+stalled.Refused >= 48 && held <= heldLimit
			r.stats.recovered(hostileControlSlow, held, ok)
			if !ok {
				r.stats.fail("%s: slowloris %+v, stalled bodies %+v", hostileControlSlow, slow, stalled)
			}
		case 2:
			r.stats.injected(hostileHeaders, answerLimit, "431 on both listeners")
			start := time.Now()
			done := make(chan outcome, 1)
			go func() { done <- asNobody(t, attack{Kind: "big-header", Socket: sock, N: 3}) }()
			web := attack{Kind: "big-header", N: 3}.run(cluster)
			ctl := <-done
			const want = "HTTP/1.1 431 Request Header Fields Too Large"
			// A node's connection may fail while its link is down.
			ok := ctl.Answers[want] == 3 && web.Answers[want] == web.Accepted && web.Held <= answerLimit && ctl.Held <= answerLimit
			r.stats.recovered(hostileHeaders, time.Since(start), ok)
			if !ok {
				r.stats.fail("%s: status page %+v, control socket %+v", hostileHeaders, web, ctl)
			}
		case 3:
			r.stats.injected(hostileBody, answerLimit, "413 after 64 KiB")
			o := asNobody(t, attack{Kind: "big-body", Socket: sock, N: 1})
			ok := o.Err == "" && o.Answers["HTTP/1.1 413 Request Entity Too Large"] == 1 && o.Held <= answerLimit
			r.stats.recovered(hostileBody, o.Held, ok)
			if !ok {
				r.stats.fail("%s: %+v", hostileBody, o)
			}
		case 4:
			r.stats.injected(hostileSecond, answerLimit, "exits 1 naming the running daemon's PID; nothing else changes")
			start := time.Now()
			_, errOut, code := run(t, r.tp.head, "daemon", "--config", h.secondCfg)
			took := time.Since(start)
			want := fmt.Sprintf("headnode: another headnode daemon is running (PID %d holds ", r.d.cmd.Process.Pid)
			ok := code == 1 && strings.HasPrefix(errOut, want) && strings.Count(errOut, "\n") == 1
			r.stats.recovered(hostileSecond, took, ok)
			if !ok {
				r.stats.fail("%s: exit %d, %q", hostileSecond, code, errOut)
			}
		case 5:
			r.stats.injected(hostileDHCPFlood, 2*time.Second, "the known node's renewal answered during the flood (unknown MACs share one rate budget)")
			took, ok, why := r.dhcpFloodRow()
			r.stats.recovered(hostileDHCPFlood, took, ok && took <= 2*time.Second)
			if !ok {
				r.stats.fail("%s: %s", hostileDHCPFlood, why)
			}
		}
	}
}

// hostileSummary closes the soak: the daemon's resident memory from its
// own counters (VmHWM is the kernel's peak), held under soakRSSLimit.
func (r *soakRig) hostileSummary(t *testing.T, h *hostileRig) string {
	pid := r.d.cmd.Process.Pid
	peak, end := max(vmKB(pid, "VmHWM"), h.rssMax.Load()), vmKB(pid, "VmRSS")
	if peak > soakRSSLimit {
		t.Errorf("the daemon's resident memory peaked at %.1f MB, over %d MB", float64(peak)/1024, soakRSSLimit>>10)
	}
	m := r.metrics()
	return fmt.Sprintf("daemon resident memory (/proc VmRSS sampled every 100 ms, and VmHWM): %.1f MB at start, peak %.1f MB, %.1f MB at the end; limit %d MB; at most %d OS threads\nrefused by the listeners' limits: %s\n",
		float64(h.rssStart)/1024, float64(peak)/1024, float64(end)/1024, soakRSSLimit>>10, h.threads.Load(),
		strings.ReplaceAll(grepLines(m, "refused_total{"), "\n", "; "))
}
