package console

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
	"unicode/utf8"

	"github.com/headnode/headnode/cmd/headnode/internal/console/consoletest"
)

// eventually polls cond for up to 5 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func startManager(t *testing.T, o Options) *Manager {
	t.Helper()
	if o.Size == 0 {
		o.Size = 64 << 10
	}
	o.Scan = 20 * time.Millisecond
	m := NewManager(o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return m
}

func logText(c *Console) string {
	var b strings.Builder
	for _, r := range c.Tail(0) {
		if r.Event {
			b.WriteString("-- " + string(r.Data) + " --\n")
		} else {
			b.Write(r.Data)
		}
	}
	return b.String()
}

// A node's console device comes and goes with its power; capture starts
// each time it appears, by itself, and the log says when it went.
func TestCaptureFollowsTheDevice(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "ttypi1")
	m := startManager(t, Options{Devices: map[string]Device{"p1": {Path: link, Baud: 115200, Source: "configured"}}})
	c := m.Console("p1")
	if st := c.Status(); st.State != StateNoDevice {
		t.Fatalf("before the device exists: %+v", st)
	}
	d := consoletest.Plug(t, link)
	d.Master.Write([]byte("first boot\r\n"))
	eventually(t, "the first boot captured", func() bool { return strings.Contains(logText(c), "first boot\r\n") })
	if st := c.Status(); st.State != StateOpen || st.Device.Path != link || st.Bytes != int64(len("first boot\r\n")) {
		t.Errorf("while open: %+v", st)
	}

	d.Unplug()
	eventually(t, "the device noticed gone", func() bool { return c.Status().State == StateNoDevice })
	if !strings.Contains(logText(c), "-- console "+link+" went away --") {
		t.Errorf("the log does not say the device went:\n%s", logText(c))
	}

	d = consoletest.Plug(t, link)
	d.Master.Write([]byte("second boot\r\n"))
	eventually(t, "the second boot captured", func() bool { return strings.Contains(logText(c), "second boot") })
	if n := strings.Count(logText(c), "opened --"); n != 2 {
		t.Errorf("opened %d times, want 2:\n%s", n, logText(c))
	}
}

// Whatever bytes a node sends are kept as they came, and what is shown of
// them is printable text.
func TestBinaryGarbage(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "ttypi3")
	d := consoletest.Plug(t, link)
	m := startManager(t, Options{Devices: map[string]Device{"p3": {Path: link, Baud: 9600}}})
	c := m.Console("p3")
	eventually(t, "open", func() bool { return c.Status().State == StateOpen })
	garbage := make([]byte, 20000)
	rng := rand.New(rand.NewChaCha8([32]byte{7}))
	for i := range garbage {
		garbage[i] = byte(rng.Uint32())
	}
	// The pty's line discipline on the device's side is raw (OpenSerial),
	// so every byte arrives as sent.
	go d.Master.Write(garbage)
	eventually(t, "all of it captured", func() bool { return c.Status().Bytes == int64(len(garbage)) })
	var got []byte
	for _, r := range c.Tail(0) {
		if !r.Event {
			got = append(got, r.Data...)
		}
		if s := Text(r.Data); !utf8.ValidString(s) {
			t.Fatalf("Text of a record is not UTF-8: %q", s)
		}
	}
	if !bytes.Equal(got, garbage) {
		t.Errorf("captured %d bytes differing from the %d sent", len(got), len(garbage))
	}
}

// One session writes at a time; another gets a clear refusal, can watch,
// or can take over; what a watcher types is refused, not sent.
func TestOneWriter(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "ttypi2")
	d := consoletest.Plug(t, link)
	m := startManager(t, Options{Devices: map[string]Device{"p2": {Path: link, Baud: 115200}}})
	c := m.Console("p2")
	eventually(t, "open", func() bool { return c.Status().State == StateOpen })

	a, err := c.Attach(ModeWrite)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Attach(ModeWrite)
	var busy *BusyError
	if !errors.As(err, &busy) || !errors.Is(err, ErrWriterBusy) || !strings.Contains(err.Error(), "p2's console already has a writer") || !strings.Contains(err.Error(), "--read-only") {
		t.Fatalf("a second writer: %v", err)
	}
	v, err := c.Attach(ModeRead)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Write([]byte("rm -rf /\r")); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("a watcher's input: %v", err)
	}
	if err := a.Write([]byte("uptime\r")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, _ := d.Master.Read(buf)
	if string(buf[:n]) != "uptime\r" {
		t.Errorf("the node got %q", buf[:n])
	}
	if st := c.Status(); !st.Writer || st.Viewers != 1 {
		t.Errorf("status with a writer and a watcher: %+v", st)
	}

	b, err := c.Attach(ModeTake)
	if err != nil {
		t.Fatal(err)
	}
	frames, _ := a.Next(context.Background())
	if last := frames[len(frames)-1]; last.Kind != FrameEnd || !strings.Contains(string(last.Data), "took over") {
		t.Errorf("the writer taken over from got %q", frames)
	}
	if err := a.Write([]byte("x")); err == nil {
		t.Error("the old writer can still write")
	}
	if err := b.Write([]byte("y")); err != nil {
		t.Errorf("the new writer: %v", err)
	}
}

// A session that does not read holds at most QueueBytes, loses the rest
// (and is told how much), and never holds up capture or other sessions;
// one that reads gets everything, or is told exactly what it missed.
func TestSlowSessionDoesNotHoldUpCapture(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "ttypi4")
	d := consoletest.Plug(t, link)
	m := startManager(t, Options{Size: 1 << 20, Devices: map[string]Device{"p4": {Path: link, Baud: 115200}}})
	c := m.Console("p4")
	eventually(t, "open", func() bool { return c.Status().State == StateOpen })
	stuck, _ := c.Attach(ModeRead)
	reader, _ := c.Attach(ModeRead)
	var got, told int
	var mu sync.Mutex
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wg.Go(func() {
		for {
			frames, err := reader.Next(ctx)
			if err != nil {
				return
			}
			mu.Lock()
			for _, f := range frames {
				switch f.Kind {
				case FrameData:
					got += len(f.Data)
				case FrameNotice:
					told += missedIn(f)
				}
			}
			mu.Unlock()
		}
	})
	const total = 8 << 20
	chunk := bytes.Repeat([]byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n"), 1024)
	for sent := 0; sent < total; sent += len(chunk) {
		if _, err := d.Master.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "all captured", func() bool { return c.Status().Bytes == total })
	reader.Notice("sync") // flushes a pending count of dropped output
	eventually(t, "the reading session got it all or was told", func() bool {
		c.mu.Lock()
		pending := reader.dropped
		c.mu.Unlock()
		mu.Lock()
		defer mu.Unlock()
		return got+told+int(pending) == total
	})
	cancel()
	wg.Wait()
	t.Logf("of %d bytes the reading session got %d and was told of %d it missed", total, got, told)
	// The stuck session holds at most its queue, and accounts for the
	// rest: the counts in its notices and what it has yet to be told.
	c.mu.Lock()
	queued, pending := len(stuck.buf), stuck.dropped
	c.mu.Unlock()
	frames, _ := stuck.Next(context.Background())
	data, missed := 0, 0
	for _, f := range frames {
		if f.Kind == FrameData {
			data += len(f.Data)
		}
		missed += missedIn(f)
	}
	if queued > QueueBytes || data != queued || data+missed+int(pending) != total {
		t.Errorf("the stuck session holds %d bytes (queue %d), was told of %d missed and has %d more to tell, of %d", data, QueueBytes, missed, pending, total)
	}
	c.mu.Lock()
	stuck.data([]byte("more\n"))
	c.mu.Unlock()
	frames, _ = stuck.Next(context.Background())
	if pending > 0 && (len(frames) != 2 || missedIn(frames[0]) != int(pending) || string(frames[1].Data) != "more\n") {
		t.Errorf("after catching up the stuck session got %q", frames)
	}
}

// missedIn is the count of dropped output a notice reports, or 0.
func missedIn(f Frame) int {
	var n int
	if f.Kind == FrameNotice {
		fmt.Sscanf(string(f.Data), "%d bytes of output not shown", &n)
	}
	return n
}

// Switching a node off ends its sessions with a message; a node whose
// power is unknown keeps them.
func TestPowerOffEndsSessions(t *testing.T) {
	m := startManager(t, Options{Devices: map[string]Device{"p1": {Path: "/nonexistent/ttypi1", Baud: 115200}, "p2": {Path: "/nonexistent/ttypi2", Baud: 115200}}})
	on, off := true, false
	m.SetPowered(map[string]*bool{"p1": &on, "p2": nil})
	s1, _ := m.Console("p1").Attach(ModeWrite)
	s2, _ := m.Console("p2").Attach(ModeWrite)
	m.SetPowered(map[string]*bool{"p1": &off, "p2": &on})
	frames, _ := s1.Next(context.Background())
	if last := frames[len(frames)-1]; last.Kind != FrameEnd || string(last.Data) != "p1 was powered off; console session ended" {
		t.Errorf("p1's session got %q", frames)
	}
	if st := m.Console("p1").Status(); st.Writer {
		t.Error("p1's ended session is still its writer")
	}
	frames, _ = s2.Next(context.Background())
	for _, f := range frames {
		if f.Kind == FrameEnd {
			t.Errorf("p2's session ended: %q", f.Data)
		}
	}
	// Attaching to a node that is off is allowed; it ends at the next
	// power-off, not at the next report that it is still off.
	s3, _ := m.Console("p1").Attach(ModeWrite)
	m.SetPowered(map[string]*bool{"p1": &off})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	frames, _ = s3.Next(ctx)
	if len(frames) != 1 || frames[0].Kind != FrameNotice || !strings.Contains(string(frames[0].Data), "has no device right now") {
		t.Errorf("attached while off: %q", frames)
	}
}

// A line the node leaves unfinished (a prompt) becomes a record after a
// second of silence, and new records reach the disk in batches, once per
// PersistEvery, not at every line.
func TestIdleSealAndBatchedWrites(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		m := NewManager(Options{Size: 16 << 10, Dir: dir, PersistEvery: time.Minute, Devices: map[string]Device{"p1": {Path: "/nonexistent"}}})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { m.Run(ctx); close(done) }()
		c := m.Console("p1")
		c.output([]byte("p1 login: "), time.Now())
		time.Sleep(IdleSeal / 2)
		synctest.Wait()
		if recs := c.Tail(0); len(recs) != 1 || !recs[0].Partial {
			t.Fatalf("half a second after a prompt: %v", texts(recs))
		}
		time.Sleep(IdleSeal)
		synctest.Wait()
		if recs := c.Tail(0); len(recs) != 1 || recs[0].Partial || string(recs[0].Data) != "p1 login: " {
			t.Fatalf("after a second of silence: %v", texts(recs))
		}
		log := filepath.Join(dir, "p1.log")
		for range 50 {
			c.output([]byte("line\n"), time.Now())
			time.Sleep(time.Second)
			synctest.Wait()
			if _, err := os.Stat(log); err == nil {
				t.Fatal("written to disk before the minute was up")
			}
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		b, err := os.ReadFile(log)
		if err != nil {
			t.Fatalf("not written after a minute: %v", err)
		}
		if got := len(decode(b)); got != 51 {
			t.Errorf("the first batch holds %d records, want 51", got)
		}
		cancel()
		<-done
	})
}
