package daemon

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
	"github.com/headnode/headnode/cmd/headnode/internal/guard"
)

// shorten sets *v to short for the test and back after it.
func shorten[T any](t *testing.T, v *T, short T) {
	old := *v
	*v = short
	t.Cleanup(func() { *v = old })
}

// zeros is an endless body.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	return len(p), nil
}

// TestControlBodyLimits: a 40 MB body is refused after 64 KiB (the daemon
// allocates nothing like it), stalled bodies are cut off after the body
// timeout, a misspelt field is an error, and meanwhile the status is
// served; a status watch outlives every one of those timeouts.
func TestControlBodyLimits(t *testing.T) {
	shorten(t, &controlLimits.Body.Timeout, 500*time.Millisecond)
	shorten(t, &controlLimits.HeaderTime, 500*time.Millisecond)
	shorten(t, &controlLimits.Idle, time.Second)
	d := startInproc(t, "", "")

	// The watch starts first and must see a change after all the rest.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watched := make(chan *api.Status, 100)
	go d.client.Watch(ctx, func(s *api.Status) bool { watched <- s; return true })
	<-watched

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	body := io.MultiReader(strings.NewReader(`{"nodes": ["`), io.LimitReader(zeros{}, 40<<20), strings.NewReader(`"]}`))
	resp, err := d.hc.Post("http://headnode/v1/power/on", "application/json", body)
	runtime.ReadMemStats(&after)
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(b), "request body too large: at most 64 KiB") {
			t.Errorf("40 MB body: %s %s", resp.Status, b)
		}
	} else {
		t.Logf("40 MB body: the daemon closed while it was sent: %v", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 8<<20 {
		t.Errorf("allocated %d MB while refusing a 40 MB body", grew>>20)
	} else {
		t.Logf("allocated %.1f MB while refusing a 40 MB body", float64(grew)/(1<<20))
	}

	// 20 stalled bodies: the status is answered meanwhile, and they are
	// closed after the body timeout, not held.
	var stalled []net.Conn
	for range 20 {
		c, err := net.Dial("unix", d.sock)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST /v1/led HTTP/1.1\r\nHost: headnode\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"mode\":")
		stalled = append(stalled, c)
	}
	start := time.Now()
	if _, err := d.client.Status(context.Background()); err != nil {
		t.Errorf("status beside 20 stalled bodies: %v", err)
	}
	var wg sync.WaitGroup
	for _, c := range stalled {
		wg.Go(func() {
			c.SetReadDeadline(time.Now().Add(15 * time.Second))
			io.Copy(io.Discard, c)
		})
	}
	wg.Wait()
	if held := time.Since(start); held > 5*time.Second {
		t.Errorf("stalled bodies held %v, body timeout %v", held, controlLimits.Body.Timeout)
	} else {
		t.Logf("20 stalled bodies closed after %v (body timeout %v)", held.Round(time.Millisecond), controlLimits.Body.Timeout)
	}

	// Headers over 8 KiB: 431.
	if line, err := rawRequest("unix", d.sock, []byte("GET /v1/status HTTP/1.1\r\nHost: headnode\r\nX-Pad: "+strings.Repeat("a", 1<<20)+"\r\n\r\n")); line != "HTTP/1.1 431 Request Header Fields Too Large" {
		t.Errorf("1 MB of headers: %q %v", line, err)
	}
	// Strict bodies.
	var re *api.RequestError
	err = d.client.Do(context.Background(), "POST", "/v1/led", map[string]any{"mode": "identify", "colour": "red"}, nil)
	if !asRequestError(err, &re) || re.Status != 400 || !strings.Contains(re.Msg, `unknown field "colour"`) {
		t.Errorf("a body with an unknown field: %v", err)
	}
	if err := d.client.Do(context.Background(), "POST", "/v1/led", api.LEDRequest{Mode: "identify"}, nil); err != nil {
		t.Errorf("a valid body: %v", err)
	}
	// The watch is still there, past the header, body and idle timeouts,
	// and sees the LED's change.
	if elapsed := time.Since(start); elapsed < 2*time.Second {
		time.Sleep(2*time.Second - elapsed)
	}
	timeout := time.After(10 * time.Second)
	for {
		select {
		case s := <-watched:
			if s.Display.LED.Pattern == "identify" {
				return
			}
			continue
		case <-timeout:
			t.Fatal("the status watch ended or saw no change after the timeouts")
		}
	}
}

func asRequestError(err error, re **api.RequestError) bool {
	e, ok := err.(*api.RequestError)
	*re = e
	return ok
}

// TestControlConnectionCap: one user's connections over its cap are closed
// at once; once its connections go, it is served again.
func TestControlConnectionCap(t *testing.T) {
	shorten(t, &controlLimits.Conns.PerClient, 6)
	d := startInproc(t, "", "")
	var held []net.Conn
	for range 6 {
		c, err := net.Dial("unix", d.sock)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	// Accepted connections are counted in Accept; give the server a
	// moment to have taken all six.
	waitMetric(t, d, func() bool {
		_, err := rawRequest("unix", d.sock, []byte("GET /v1/status HTTP/1.1\r\nHost: headnode\r\n\r\n"))
		return err != nil
	})
	// A new client: d.client keeps a connection of its own open.
	if _, err := api.NewClient(d.sock).Status(context.Background()); err == nil {
		t.Error("a seventh connection of the same user was served")
	}
	for _, c := range held {
		c.Close()
	}
	waitMetric(t, d, func() bool { _, err := d.client.Status(context.Background()); return err == nil })
	code, m := d.get(t, "localhost", "/metrics")
	if code != 200 || !strings.Contains(m, `headnode_listener_connections_refused_total{listener="control"}`) ||
		strings.Contains(m, `headnode_listener_connections_refused_total{listener="control"} 0`) {
		t.Errorf("metrics do not count the refused connections:\n%s", grep(m, "refused"))
	}
}

// waitMetric waits up to 10 s for cond.
func waitMetric(t *testing.T, d *inproc, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("condition not met within 10 s")
		}
	}
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestHTTPLimits: on the read-only listener, a foreign Host is refused,
// 1 MB of headers is refused, slow headers are cut off, a client over its
// connection cap or its rate is refused, and meanwhile other clients are
// served.
func TestHTTPLimits(t *testing.T) {
	shorten(t, &guard.StatusPage.HeaderTime, 500*time.Millisecond)
	shorten(t, &guard.StatusPage.Conns.PerClient, 4)
	shorten(t, &guard.StatusPage.Conns.Total, 8)
	shorten(t, &guard.StatusPageRate, guard.RateLimits{PerSecond: 20, Burst: 10, MaxWait: 100 * time.Millisecond})
	d := startInproc(t, "", "")

	for host, want := range map[string]int{"localhost": 200, "127.0.0.1:9180": 200, "evil.example": 421, "evil.example:9180": 421} {
		code, body := d.get(t, host, "/?format=json")
		if code != want {
			t.Errorf("Host %s: %d %s, want %d", host, code, body, want)
		}
		if want == 421 && (strings.Contains(body, "uplink") || !strings.Contains(body, "[http] hosts")) {
			t.Errorf("Host %s: %q", host, body)
		}
	}
	if line, err := rawRequest("tcp", d.httpAddr, []byte("GET / HTTP/1.1\r\nHost: localhost\r\nX-Pad: "+strings.Repeat("a", 1<<20)+"\r\n\r\n")); line != "HTTP/1.1 431 Request Header Fields Too Large" {
		t.Errorf("1 MB of headers: %q %v", line, err)
	}

	// Slowloris from 127.0.0.2: four connections dribbling headers (the
	// cap), a fifth refused at once; all cut off after the header time,
	// while 127.0.0.1 is served.
	// A connection refused as it is accepted (a reset) may already fail
	// to connect.
	dialMaybe := func(src string) (net.Conn, error) {
		c, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}).Dial("tcp", d.httpAddr)
		if err == nil {
			t.Cleanup(func() { c.Close() })
		}
		return c, err
	}
	dial := func(src string) net.Conn {
		c, err := dialMaybe(src)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	start := time.Now()
	var slow []net.Conn
	for i := range 5 {
		c, err := dialMaybe("127.0.0.2")
		if err != nil {
			if i < 4 {
				t.Fatal(err)
			}
			continue
		}
		go func() {
			for _, b := range []byte("GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa") {
				if _, err := c.Write([]byte{b}); err != nil {
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		}()
		slow = append(slow, c)
	}
	if code, _ := d.get(t, "localhost", "/healthz"); code != 200 && code != 503 {
		t.Errorf("healthz beside slowloris: %d", code)
	}
	var wg sync.WaitGroup
	for _, c := range slow {
		wg.Go(func() {
			c.SetReadDeadline(time.Now().Add(15 * time.Second))
			io.Copy(io.Discard, c)
		})
	}
	wg.Wait()
	if held := time.Since(start); held > 5*time.Second {
		t.Errorf("slow headers held %v (header time %v)", held, guard.StatusPage.HeaderTime)
	} else {
		t.Logf("5 slowloris connections closed after %v (header time %v)", held.Round(time.Millisecond), guard.StatusPage.HeaderTime)
	}

	// The total: four clients with two idle connections each fill it.
	// A connection closed just before (the slowloris ones, the test's
	// own requests) gives its place back when the server has seen the
	// close, which may come a moment after the client's: a connection
	// refused for that is tried again.
	var idle []net.Conn
	for i := range 4 {
		for range 2 {
			src := fmt.Sprintf("127.0.0.%d", 3+i)
			var c net.Conn
			waitMetric(t, d, func() bool {
				c = dial(src)
				fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
					c.Close()
					return false
				}
				c.SetReadDeadline(time.Time{})
				return true
			})
			idle = append(idle, c)
		}
	}
	if c, err := dialMaybe("127.0.0.9"); err == nil {
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if line, err := bufio.NewReader(c).ReadString('\n'); err == nil {
			t.Errorf("a connection past the total was served: %q", line)
		}
	}
	for _, c := range idle {
		c.Close()
	}
	waitMetric(t, d, func() bool {
		_, err := rawRequest("tcp", d.httpAddr, []byte("GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"))
		return err == nil
	})

	// The rate, from a client of its own on four connections: 20 a second
	// after a burst of 10, waiting up to 100 ms for a turn; the rest is
	// refused.
	rateStart := time.Now()
	codes := map[int]int{}
	var mu sync.Mutex
	tr := &http.Transport{DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
		return (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.10")}}).DialContext(ctx, "tcp", addr)
	}, MaxConnsPerHost: 4}
	hc := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	for range 100 {
		wg.Go(func() {
			req, _ := http.NewRequest("GET", "http://"+d.httpAddr+"/healthz", nil)
			req.Host = "localhost"
			resp, err := hc.Do(req)
			code := 0
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				code = resp.StatusCode
			}
			mu.Lock()
			codes[code]++
			mu.Unlock()
		})
	}
	// Another client meanwhile is answered at once.
	time.Sleep(time.Second)
	otherStart := time.Now()
	d.get(t, "localhost", "/healthz")
	other := time.Since(otherStart)
	wg.Wait()
	took := time.Since(rateStart)
	served := codes[200] + codes[503] // healthz: 503 while there is no uplink
	if codes[http.StatusTooManyRequests] == 0 || codes[0] > 0 || served < 10 {
		t.Errorf("100 requests from one client: %v, want the burst served, some 429 and no failed connection", codes)
	}
	if most := 10 + int(20*took.Seconds()) + 4; served > most {
		t.Errorf("%d requests served in %v: more than the burst and 20 a second (%d)", served, took, most)
	}
	if other > 500*time.Millisecond {
		t.Errorf("another client waited %v beside the throttled one", other)
	}
	t.Logf("100 requests from one client: %v in %v; another client meanwhile: %v", codes, took.Round(time.Millisecond), other.Round(time.Millisecond))
	for _, c := range slow {
		c.Close()
	}
	// Meanwhile and after, 127.0.0.1 gets its answers; the counters show
	// what was refused.
	var m string
	waitMetric(t, d, func() bool {
		code, body := d.get(t, "localhost", "/metrics")
		m = body
		return code == 200
	})
	for _, want := range []string{`headnode_http_requests_refused_total{reason="host"} 2`, `headnode_http_requests_refused_total{reason="rate"}`, `headnode_listener_connections_refused_total{listener="http"}`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s:\n%s", want, grep(m, "refused"))
		}
	}
}

// TestIdleTimeouts: a kept-alive connection that asks nothing more is
// closed after the idle time, on both listeners.
func TestIdleTimeouts(t *testing.T) {
	shorten(t, &controlLimits.Idle, 500*time.Millisecond)
	shorten(t, &guard.StatusPage.Idle, 500*time.Millisecond)
	d := startInproc(t, "", "")
	for _, l := range []struct{ network, addr, host string }{{"unix", d.sock, "headnode"}, {"tcp", d.httpAddr, "localhost"}} {
		c, err := net.Dial(l.network, l.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", l.host)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		start := time.Now()
		r := bufio.NewReader(c)
		if line, err := r.ReadString('\n'); err != nil {
			t.Fatalf("%s: %q %v", l.network, line, err)
		}
		io.Copy(io.Discard, r) // the answer, then nothing until closed
		if idle := time.Since(start); idle > 5*time.Second {
			t.Errorf("%s: an idle connection was kept %v (idle time 500ms)", l.network, idle)
		} else {
			t.Logf("%s: an idle connection closed after %v", l.network, idle.Round(time.Millisecond))
		}
	}
}
