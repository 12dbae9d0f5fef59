package guard

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// serve runs an http.Server with h on l until the test ends.
func serve(t *testing.T, l net.Listener, h http.Handler) {
	t.Helper()
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
}

// dialFrom connects to addr from the loopback address src (all of
// 127.0.0.0/8 is the local host), so one test has many clients.
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// refusedFrom reports whether a connection from src to addr is refused:
// reset while connecting, or closed before it is answered.
func refusedFrom(t *testing.T, src, addr string) (bool, string) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return true, err.Error()
	}
	defer c.Close()
	line, err := get(c)
	return err != nil, line
}

// get sends one request on c and returns the status line, or the error
// that ended the connection instead.
func get(c net.Conn) (string, error) {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

func ok(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }

// TestListenerCaps: a client over its cap, and anyone over the total, is
// closed as soon as it connects, while everyone else is served; a closed
// connection frees its place.
func TestListenerCaps(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := Listen(inner, ConnLimits{Total: 4, PerClient: 2, Client: TCPClient})
	serve(t, l, http.HandlerFunc(ok))
	addr := inner.Addr().String()

	// Client .2 holds its two connections (a request each, kept alive).
	a1, a2 := dialFrom(t, "127.0.0.2", addr), dialFrom(t, "127.0.0.2", addr)
	for _, c := range []net.Conn{a1, a2} {
		if line, err := get(c); line != "HTTP/1.1 200 OK" {
			t.Fatalf("first two connections of a client: %q %v", line, err)
		}
	}
	if refused, line := refusedFrom(t, "127.0.0.2", addr); !refused {
		t.Errorf("a third connection of one client was served: %q", line)
	}
	// Others are still served, up to the total.
	b := dialFrom(t, "127.0.0.3", addr)
	c := dialFrom(t, "127.0.0.4", addr)
	for _, conn := range []net.Conn{b, c} {
		if line, err := get(conn); line != "HTTP/1.1 200 OK" {
			t.Fatalf("another client beside a capped one: %q %v", line, err)
		}
	}
	if refused, line := refusedFrom(t, "127.0.0.5", addr); !refused {
		t.Errorf("a connection past the total was served: %q", line)
	}
	if got := l.Refused(); got != 2 {
		t.Errorf("Refused() = %d, want 2", got)
	}
	// A connection that ends frees its place (the server sees the close).
	a1.Close()
	deadline := time.Now().Add(5 * time.Second)
	for l.Open() > 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if line, err := get(dialFrom(t, "127.0.0.2", addr)); line != "HTTP/1.1 200 OK" {
		t.Errorf("after one of its connections closed, a client is still refused: %q %v", line, err)
	}
}

// TestListenerCloseConns: CloseConns ends hijacked connections too.
func TestListenerCloseConns(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := Listen(inner, ConnLimits{Total: 4, PerClient: 4, Client: TCPClient})
	hijacked := make(chan struct{})
	serve(t, l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, brw, _ := http.NewResponseController(w).Hijack()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\n\r\n")
		brw.Flush()
		close(hijacked)
		io.Copy(io.Discard, c) // until closed
	}))
	c := dialFrom(t, "127.0.0.2", inner.Addr().String())
	if line, err := get(c); line != "HTTP/1.1 101 Switching Protocols" {
		t.Fatalf("%q %v", line, err)
	}
	<-hijacked
	l.CloseConns()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("hijacked connection after CloseConns: read %v, want EOF", err)
	}
	if n := l.Open(); n != 0 {
		t.Errorf("%d connections still counted", n)
	}
}

// TestUnixPeer names the peer of a unix socket by its user.
func TestUnixPeer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan string, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			got <- err.Error()
			return
		}
		got <- UnixPeer(c)
		c.Close()
	}()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if want := fmt.Sprintf("uid %d", os.Getuid()); <-got != want {
		t.Errorf("UnixPeer: want %q", want)
	}
}

func TestClientOf(t *testing.T) {
	for addr, want := range map[string]string{
		"192.168.50.2:4711":         "192.168.50.2",
		"[::ffff:10.0.0.1]:80":      "10.0.0.1",
		"[2001:db8:1:2:3::4]:80":    "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::9]:80": "2001:db8:1:2::/64",
		"[fe80::1%eth0]:80":         "fe80::/64",
	} {
		if got := clientOf(addr); got != want {
			t.Errorf("clientOf(%q) = %q, want %q", addr, got, want)
		}
	}
}

// bodyServer serves a handler behind Bodies that reads the whole body and
// then, for /slow, takes longer than the body timeout to answer.
func bodyServer(t *testing.T, lim BodyLimits) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serve(t, l, Bodies(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			http.Error(w, fmt.Sprintf("too large after %d bytes", n), http.StatusRequestEntityTooLarge)
			return
		case err != nil:
			return
		}
		if r.URL.Path == "/slow" {
			time.Sleep(3 * lim.Timeout)
		}
		if r.URL.Path == "/stream" {
			for range 4 {
				fmt.Fprintln(w, "tick")
				http.NewResponseController(w).Flush()
				time.Sleep(lim.Timeout)
			}
		}
		fmt.Fprintf(w, "read %d bytes", n)
	}), lim))
	return l.Addr().String()
}

// TestBodiesSize: a 40 MB body is cut off at the limit and answered, and
// the server reads no more than the limit of it.
func TestBodiesSize(t *testing.T) {
	addr := bodyServer(t, BodyLimits{Max: 64 << 10, Timeout: 5 * time.Second})
	resp, err := http.Post("http://"+addr+"/", "application/json", io.LimitReader(zeros{}, 40<<20))
	if err != nil {
		// The server may close while the client still sends; the
		// answer is then lost to a reset, which is also a refusal.
		t.Logf("40 MB body: %v", err)
	} else {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(b), fmt.Sprintf("too large after %d bytes", 64<<10)) {
			t.Errorf("40 MB body: %s %q", resp.Status, b)
		}
	}
	// A body within the limit is read whole.
	resp, err = http.Post("http://"+addr+"/", "application/json", strings.NewReader(strings.Repeat("x", 60<<10)))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := fmt.Sprintf("read %d bytes", 60<<10); string(b) != want {
		t.Errorf("60 KiB body: %q, want %q", b, want)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestBodiesTimeout: a client that stops sending its body is cut off after
// the timeout while others are served; once a body is in, the answer may
// take longer than the timeout; requests without a body (streams) last as
// long as they need.
func TestBodiesTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	addr := bodyServer(t, BodyLimits{Max: 64 << 10, Timeout: timeout})

	var stalled []net.Conn
	for range 20 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789")
		stalled = append(stalled, c)
	}
	start := time.Now()
	resp, err := http.Post("http://"+addr+"/", "text/plain", strings.NewReader("legit"))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("a client beside 20 stalled bodies: %v %v", resp, err)
	}
	resp.Body.Close()
	var wg sync.WaitGroup
	for _, c := range stalled {
		wg.Go(func() {
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			io.Copy(io.Discard, c) // until the server closes it
		})
	}
	wg.Wait()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stalled bodies were held %v (timeout %v)", d, timeout)
	} else {
		t.Logf("20 stalled bodies closed within %v (timeout %v)", d.Round(time.Millisecond), timeout)
	}

	resp, err = http.Post("http://"+addr+"/slow", "text/plain", strings.NewReader("body"))
	if err != nil {
		t.Fatalf("an answer taking 3× the body timeout: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "read 4 bytes" {
		t.Errorf("slow answer: %q", b)
	}
	resp, err = http.Get("http://" + addr + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	b, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || strings.Count(string(b), "tick") != 4 {
		t.Errorf("a bodiless stream lasting 4× the body timeout: %q %v", b, err)
	}
}

// TestRate: a client gets its burst at once, then waits its turn; one
// that would wait past MaxWait is refused; other clients are not held up.
func TestRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rl := NewRate(RateLimits{PerSecond: 10, Burst: 2, MaxWait: 300 * time.Millisecond})
		h := rl.Wrap(http.HandlerFunc(ok))
		do := func(client string) (int, time.Duration) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = client + ":1234"
			w := httptest.NewRecorder()
			start := time.Now()
			h.ServeHTTP(w, r)
			return w.Code, time.Since(start)
		}
		for i := range 2 {
			if code, d := do("192.168.50.2"); code != 200 || d != 0 {
				t.Errorf("burst request %d: %d after %v", i, code, d)
			}
		}
		if code, d := do("192.168.50.2"); code != 200 || d != 100*time.Millisecond {
			t.Errorf("past the burst: %d after %v, want 200 after 100ms", code, d)
		}
		// Four at once: their turns are 100, 200, 300 and 400 ms away; the
		// last would wait past MaxWait.
		codes := make(chan int, 4)
		for range 4 {
			go func() { c, _ := do("192.168.50.2"); codes <- c }()
		}
		synctest.Wait()
		var got []int
		for range 4 {
			got = append(got, <-codes)
		}
		n429 := 0
		for _, c := range got {
			if c == http.StatusTooManyRequests {
				n429++
			}
		}
		if n429 != 1 {
			t.Errorf("four at once past the rate: %v, want one 429", got)
		}
		if code, d := do("192.168.50.3"); code != 200 || d != 0 {
			t.Errorf("another client: %d after %v", code, d)
		}
		if rl.Refused() != 1 {
			t.Errorf("Refused() = %d", rl.Refused())
		}
	})
}

func TestHosts(t *testing.T) {
	hs := NewHosts(func(n string) bool { return n == "localhost" || n == "head" || n == "head.local" }, "add it to [http] hosts")
	h := hs.Wrap(http.HandlerFunc(ok))
	for host, want := range map[string]int{
		"localhost:9180":     200,
		"127.0.0.1:9180":     200,
		"192.168.50.1":       200,
		"[::1]:9180":         200,
		"[fe80::1%25eth0]":   200,
		"HEAD.local.":        200,
		"head":               200,
		"evil.example":       421,
		"evil.example:9180":  421,
		"localhost.evil.com": 421,
		"":                   421,
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Host = host
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != want {
			t.Errorf("Host %q: %d, want %d (%s)", host, w.Code, want, w.Body)
		}
		if want == 421 && !strings.Contains(w.Body.String(), "add it to [http] hosts") {
			t.Errorf("Host %q: the refusal %q does not say what to do", host, w.Body)
		}
	}
	if hs.Refused() != 4 {
		t.Errorf("Refused() = %d, want 4", hs.Refused())
	}
}

func TestLocalNames(t *testing.T) {
	host, err := os.Hostname()
	if err != nil || host == "" {
		t.Fatalf("no host name: %v", err)
	}
	host = strings.ToLower(host)
	short, _, _ := strings.Cut(host, ".")
	ok := LocalNames(func() []string { return []string{"head.example.net"} })
	for name, want := range map[string]bool{
		"localhost": true, host: true, short: true, short + ".local": true, "head.example.net": true,
		"evil.example": false, short + ".evil.example": false, "local": false,
	} {
		if ok(name) != want {
			t.Errorf("LocalNames(%q) = %v, want %v", name, !want, want)
		}
	}
}
