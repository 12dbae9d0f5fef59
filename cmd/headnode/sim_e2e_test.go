package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/headnode/headnode/netcfg/sandbox/sandboxtest"
)

// `headnode sim` as a newcomer runs it: the whole daemon on the emulated
// ClusterHAT, LCD and BlinkStick, in a namespace sandbox where each node's
// link follows its power. The test drives it with the CLI it prints and
// reads what it draws.
func TestE2ESim(t *testing.T) {
	sandboxtest.Need(t)
	out := &sandboxtest.Output{}
	name := fmt.Sprintf("hs%d", os.Getpid()%100000)
	cmd := exec.Command(binary, "sim", "--duration", "40s", "--name", name, "--boot", "300ms", "--listen", "127.0.0.1:0")
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group: if it does not stop, it is killed together
	// with the daemon and the node clients it started.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	done := make(chan error, 1)
	exited := make(chan struct{})
	go func() { done <- cmd.Wait(); close(exited) }()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			t.Errorf("sim did not stop within 15 s of SIGTERM; killing it")
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			t.Logf("sim output:\n%s", out.String())
		}
	}()

	// picture returns the last complete picture drawn.
	picture := func() string {
		s := out.String()
		parts := strings.Split(s, "\n--- ")
		if len(parts) < 2 {
			return ""
		}
		return parts[len(parts)-1]
	}
	waitFor := func(what string, re *regexp.Regexp) string {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			if p := picture(); re.MatchString(p) {
				t.Logf("%s after %v", what, time.Since(started).Round(time.Millisecond))
				return p
			}
			select {
			case err := <-done:
				t.Fatalf("sim exited (%v) while waiting for %s", err, what)
			case <-time.After(50 * time.Millisecond):
			}
		}
		t.Fatalf("sim never showed %s; last picture:\n%s", what, picture())
		return ""
	}
	pic := waitFor("the uplink address on the LCD", regexp.MustCompile(`│10\.99\.0\.2 +│`))
	sock := regexp.MustCompile(`--socket (\S+) off p2`).FindStringSubmatch(pic)
	page := regexp.MustCompile(`status page: (http://\S+)`).FindStringSubmatch(pic)
	if sock == nil || page == nil {
		t.Fatalf("the picture does not say how to reach the daemon:\n%s", pic)
	}
	headnode := func(args ...string) {
		t.Helper()
		if b, err := exec.Command(binary, append([]string{"--socket", sock[1]}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("headnode %v: %v\n%s", args, err, b)
		}
	}

	headnode("on", "p1", "p2")
	pic = waitFor("p1 and p2 up and out through the head", regexp.MustCompile(`(?m)^  p1 +up +on +ethpi1 +192\.168\.50\.11 +out as 10\.99\.0\.2\n  p2 +up +on +ethpi2 +192\.168\.50\.12 +out as 10\.99\.0\.2`))
	if !strings.Contains(pic, "│2/4 up  NAT ok  │") || !strings.Contains(pic, "DHCP     serving, 2 leases") {
		t.Errorf("after on p1 p2:\n%s", pic)
	}

	// Off really takes p2 off the network; it is no fault.
	headnode("off", "p2")
	pic = waitFor("p2 off and unplugged", regexp.MustCompile(`(?m)^  p2 +off +off +- +- +-`))
	if !strings.Contains(pic, "health   ok") {
		t.Errorf("p2 off by request is a fault:\n%s", pic)
	}

	// The HAT's USB hub off takes the powered p1's gadget link with it,
	// as a real hub does; on again, p1 comes back and asks DHCP again.
	headnode("hub", "off")
	waitFor("p1's link gone with the hub", regexp.MustCompile(`(?m)^  p1 +\S+ +on +- +- +`))
	headnode("hub", "on")
	waitFor("p1 back after the hub", regexp.MustCompile(`(?m)^  p1 +up +on +ethpi1 +192\.168\.50\.11 +out as 10\.99\.0\.2`))

	resp, err := http.Get(page[1] + "healthz")
	if err != nil {
		t.Fatalf("status page: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("healthz %d", resp.StatusCode)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("sim exit: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("sim did not stop")
	}
	if b, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(b), name+"-") {
		t.Errorf("sim left namespaces behind:\n%s", b)
	}
}
