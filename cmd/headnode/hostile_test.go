package main

// Hostile clients of the daemon's two listeners, for the e2e tests and the
// soak: slowloris (headers a byte at a time), stalled bodies, 1 MB of
// headers, 40 MB bodies, connection floods. Against the control socket
// they run as another user (nobody, in the socket's group), the way a
// member of the headnode group would attack: a copy of this test binary,
// started with hostileEnv set, runs one attack instead of the tests and
// prints its outcome as JSON.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const hostileEnv = "HEADNODE_TEST_HOSTILE"

// attack is one hostile client's job.
type attack struct {
	Kind   string `json:"kind"` // slowloris, stalled-body, big-header, big-body
	Socket string `json:"socket,omitempty"`
	Addr   string `json:"addr,omitempty"`
	N      int    `json:"n"` // connections at once
}

// outcome is what the daemon did about it.
type outcome struct {
	// Accepted connections got past the daemon's connection caps;
	// Refused were closed before the daemon read anything from them.
	Accepted, Refused int
	// Held is how long the longest-lived accepted connection stayed open
	// (until the daemon closed it).
	Held time.Duration
	// Answers counts the status lines the daemon sent ("HTTP/1.1 431 ...").
	Answers map[string]int
	Err     string `json:",omitempty"`
}

// run carries out a against connections from dial.
func (a attack) run(dial func() (net.Conn, error)) outcome {
	out := outcome{Answers: map[string]int{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range a.N {
		c, err := dial()
		if err != nil {
			mu.Lock()
			out.Refused++ // reset while connecting: over a cap
			mu.Unlock()
			continue
		}
		wg.Go(func() {
			defer c.Close()
			start := time.Now()
			line, accepted := a.attackConn(c)
			held := time.Since(start)
			mu.Lock()
			defer mu.Unlock()
			if line != "" {
				out.Answers[line]++
			}
			if !accepted {
				out.Refused++
				return
			}
			out.Accepted++
			out.Held = max(out.Held, held)
		})
	}
	wg.Wait()
	return out
}

// attackConn sends the attack on c and reads until the daemon closes it.
// It returns the status line the daemon answered with, if any, and
// whether the daemon took the connection (did not close it at once).
func (a attack) attackConn(c net.Conn) (string, bool) {
	c.SetDeadline(time.Now().Add(60 * time.Second))
	closed := make(chan struct{})
	var line string
	var readErr error
	start := time.Now()
	go func() {
		defer close(closed)
		r := bufio.NewReader(c)
		line, readErr = r.ReadString('\n')
		io.Copy(io.Discard, r)
	}()
	write := func(s string) bool {
		_, err := io.WriteString(c, s)
		return err == nil
	}
	switch a.Kind {
	case "slowloris":
		if write("GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: ") {
			for {
				select {
				case <-closed:
				case <-time.After(500 * time.Millisecond):
					if write("a") {
						continue
					}
				}
				break
			}
		}
	case "stalled-body":
		write("POST /v1/led HTTP/1.1\r\nHost: headnode\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"mode\":")
	case "big-header":
		write("GET /v1/status HTTP/1.1\r\nHost: localhost\r\nX-Pad: " + strings.Repeat("a", 1<<20) + "\r\n\r\n")
	case "big-body":
		if write("POST /v1/power/on HTTP/1.1\r\nHost: headnode\r\nContent-Type: application/json\r\nContent-Length: 41943050\r\n\r\n{\"nodes\":[\"") {
			chunk := strings.Repeat("a", 64<<10)
			for sent := 0; sent < 40<<20; sent += len(chunk) {
				if !write(chunk) {
					break
				}
			}
			write("\"]}")
		}
	}
	<-closed
	// A connection over a cap is closed (reset) before anything is read.
	refused := line == "" && time.Since(start) < time.Second && readErr != nil
	return strings.TrimSpace(line), !refused
}

// hostileMain runs the attack in $HEADNODE_TEST_HOSTILE (JSON) and prints
// its outcome.
func hostileMain(spec string) int {
	var a attack
	if err := json.Unmarshal([]byte(spec), &a); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	out := a.run(func() (net.Conn, error) { return net.DialTimeout("unix", a.Socket, 5*time.Second) })
	json.NewEncoder(os.Stdout).Encode(out)
	return 0
}

var hostileBinary struct {
	once sync.Once
	path string
	err  error
}

// nobody's IDs: Debian's nobody and nogroup.
const nobodyID = 65534

// asNobody runs a against the control socket as the user nobody in group
// nogroup. The socket's directory (and its parent) must let nobody in.
func asNobody(t *testing.T, a attack) outcome {
	t.Helper()
	hostileBinary.once.Do(func() {
		// The test binary, copied where nobody may run it: beside the
		// headnode binary, in a directory opened to everyone.
		self, err := os.Executable()
		if err != nil {
			hostileBinary.err = err
			return
		}
		dir := filepath.Dir(binary)
		os.Chmod(dir, 0o755)
		os.Chmod(binary, 0o755)
		b, err := os.ReadFile(self)
		if err == nil {
			hostileBinary.path = filepath.Join(dir, "hostile.test")
			err = os.WriteFile(hostileBinary.path, b, 0o755)
		}
		hostileBinary.err = err
	})
	if hostileBinary.err != nil {
		t.Fatal(hostileBinary.err)
	}
	spec, _ := json.Marshal(a)
	cmd := exec.Command(hostileBinary.path)
	cmd.Env = append(os.Environ(), hostileEnv+"="+string(spec))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobodyID, Gid: nobodyID, Groups: []uint32{}}}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	var out outcome
	if err != nil || json.Unmarshal(b, &out) != nil {
		return outcome{Err: fmt.Sprintf("hostile client as nobody: %v %s %s", err, b, stderr.String())}
	}
	return out
}

// openToNobody lets nobody reach a socket in dir: dir and its parent
// (t.TempDir's, private by default) become traversable.
func openToNobody(t *testing.T, dir string) {
	t.Helper()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// runAsNobody runs the headnode CLI as nobody (group nogroup).
func runAsNobody(t *testing.T, args ...string) (string, int) {
	t.Helper()
	os.Chmod(filepath.Dir(binary), 0o755)
	cmd := exec.Command(binary, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobodyID, Gid: nobodyID, Groups: []uint32{}}}
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}
