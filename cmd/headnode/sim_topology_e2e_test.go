package main

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/headnode/headnode/netcfg/sandbox/sandboxtest"
)

// `headnode sim --topology`: the one-port ClusterHAT finds its uplink from
// the LAN's DHCP server with no network configuration, and its nodes get
// out through it; swapped cables say so on the LCD.
func TestE2ESimTopologies(t *testing.T) {
	sandboxtest.Need(t)
	for i, tc := range []struct {
		topology string
		check    func(t *testing.T, wait func(string, *regexp.Regexp) string, headnode func(...string))
	}{
		{"clusterhat", func(t *testing.T, wait func(string, *regexp.Regexp) string, headnode func(...string)) {
			pic := wait("eth0's address from the LAN on the LCD", regexp.MustCompile(`│(10\.99\.0\.1\d\d) +│`))
			addr := regexp.MustCompile(`│(10\.99\.0\.1\d\d) +│`).FindStringSubmatch(pic)[1]
			if !strings.Contains(pic, "uplink   eth0 "+addr+"/24") || !strings.Contains(pic, "cluster  br0 192.168.50.1/24") {
				t.Errorf("roles:\n%s", pic)
			}
			headnode("on", "p1")
			wait("p1 out through eth0", regexp.MustCompile(`(?m)^  p1 +up +on +ethpi1 +192\.168\.50\.11 +out as `+regexp.QuoteMeta(addr)))
		}},
		{"swapped", func(t *testing.T, wait func(string, *regexp.Regexp) string, headnode func(...string)) {
			pic := wait("the LAN on the cluster side on the LCD", regexp.MustCompile(`│eth0 is a LAN +│`))
			if !strings.Contains(pic, "problem  cluster interface eth0") || !strings.Contains(pic, "swap the cables") {
				t.Errorf("no problem line:\n%s", pic)
			}
		}},
	} {
		t.Run(tc.topology, func(t *testing.T) {
			out := &sandboxtest.Output{}
			name := fmt.Sprintf("ht%d%d", os.Getpid()%10000, i)
			cmd := exec.Command(binary, "sim", "--topology", tc.topology, "--duration", "40s", "--name", name, "--boot", "300ms", "--listen", "127.0.0.1:0")
			cmd.Stdout, cmd.Stderr = out, out
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			must(t, cmd.Start())
			started := time.Now()
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			defer func() {
				cmd.Process.Signal(syscall.SIGTERM)
				select {
				case <-done:
				case <-time.After(15 * time.Second):
					t.Errorf("sim did not stop within 15 s of SIGTERM; killing it")
					syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
					<-done
				}
				if t.Failed() {
					t.Logf("sim output (the last 80 lines):\n%s", tail(out.String(), 80))
				}
				if b, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(b), name+"-") {
					t.Errorf("sim left namespaces behind:\n%s", b)
				}
			}()
			picture := func() string {
				parts := strings.Split(out.String(), "\n--- ")
				return parts[len(parts)-1]
			}
			wait := func(what string, re *regexp.Regexp) string {
				t.Helper()
				for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
					if p := picture(); re.MatchString(p) {
						t.Logf("%s after %v", what, time.Since(started).Round(time.Millisecond))
						return p
					}
					select {
					case err := <-done:
						done <- err
						t.Fatalf("sim exited (%v) while waiting for %s", err, what)
					case <-time.After(50 * time.Millisecond):
					}
				}
				t.Fatalf("sim never showed %s; last picture:\n%s", what, picture())
				return ""
			}
			headnode := func(args ...string) {
				t.Helper()
				sock := regexp.MustCompile(`--socket (\S+) off p2`).FindStringSubmatch(picture())
				if sock == nil {
					t.Fatalf("no socket in the picture:\n%s", picture())
				}
				if b, err := exec.Command(binary, append([]string{"--socket", sock[1]}, args...)...).CombinedOutput(); err != nil {
					t.Fatalf("headnode %v: %v\n%s", args, err, b)
				}
			}
			tc.check(t, wait, headnode)
		})
	}
}
