// Package sandboxtest decides what a test does when it cannot build network
// namespaces: skip on a developer's machine without root, fail in CI.
package sandboxtest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/headnode/headnode/netcfg/sandbox"
)

// RequireEnv, when set (CI and `build.sh test` set it), turns a skip for
// missing namespace support into a failure, so CI can never pass by
// skipping the kernel tests.
const RequireEnv = "HEADNODE_REQUIRE_NETNS"

// Need skips or fails t when namespaces are unavailable.
func Need(t testing.TB) {
	t.Helper()
	if err := sandbox.Check(); err != nil {
		if os.Getenv(RequireEnv) != "" {
			t.Fatalf("%v (and %s is set, so this is a failure, not a skip)", err, RequireEnv)
		}
		t.Skip(err)
	}
}

// SourceSeen connects from one namespace to addr, served from another, and
// returns the source address the server saw: behind a NAT, the NAT's.
func SourceSeen(from, server *sandbox.NS, addr string, timeout time.Duration) (string, error) {
	l, err := server.Listen(addr)
	if err != nil {
		return "", err
	}
	defer l.Close()
	seen := make(chan string, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		seen <- c.RemoteAddr().(*net.TCPAddr).IP.String()
		c.Close()
	}()
	c, err := from.Dial(addr, net.Dialer{Timeout: timeout})
	if err != nil {
		return "", err
	}
	defer c.Close()
	select {
	case s := <-seen:
		return s, nil
	case <-time.After(timeout):
		return "", fmt.Errorf("connected, but the server saw nothing")
	}
}

// Output collects a process's output while it runs: the process writes
// from its own goroutines while the test reads.
type Output struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}
