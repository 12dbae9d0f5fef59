package dhcpd

import (
	"bufio"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/headnode/headnode/netcfg/sandbox"
)

// durability is the crash tests' bound: a change the server made longer
// ago than this is in the lease file after kill -9. It is the children's
// write interval plus scheduling slack on a busy machine; with the
// daemon's default interval the bound is DefaultWriteInterval plus one
// fsync.
const durability = childWriteInterval + 230*time.Millisecond

// event is the last thing the parent saw happen to a MAC's lease.
type event struct {
	kind, addr string
	at         time.Time
}

// child is one run of the server process.
type child struct {
	cmd   *exec.Cmd
	start chan string
	done  chan struct{}
}

func startChild(t *testing.T, ns *sandbox.NS, mode string, env []string, onLine func(fields []string, at time.Time)) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	if ns != nil {
		cmd = ns.Command(os.Args[0], "-test.run=^$")
	}
	cmd.Env = append(os.Environ(), append(env, childEnv+"="+mode)...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, start: make(chan string, 1), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		sc := bufio.NewScanner(out)
		first := true
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if first {
				c.start <- sc.Text()
				first = false
				continue
			}
			onLine(f, time.Now())
		}
		if first {
			c.start <- "no output"
		}
		io.Copy(io.Discard, out)
	}()
	return c
}

// kill -9s the child and waits for its output to end.
func (c *child) kill() {
	c.cmd.Process.Signal(syscall.SIGKILL)
	c.cmd.Wait()
	<-c.done
}

// The crash test: the server process is killed (SIGKILL) at 200 random
// moments while it grants, releases and declines leases as fast as it
// can. After every kill the lease file loads without error and holds every
// change older than the durability bound, and the next run starts from it.
func TestCrashKill9DuringLeaseChurn(t *testing.T) {
	kills := 200
	if testing.Short() {
		kills = 40
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "dhcp-leases.json")
	env := []string{"HEADNODE_DHCPD_LEASES=" + file, "HEADNODE_DHCPD_ADDRESS=10.9.0.1/24", "HEADNODE_DHCPD_FIRST=10.9.0.10", "HEADNODE_DHCPD_LAST=10.9.0.209"}
	var mu sync.Mutex
	last := map[string]event{}
	onLine := func(f []string, at time.Time) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case len(f) == 3 && f[0] == "ACK":
			last[f[1]] = event{"ACK", f[2], at}
		case len(f) == 2 && (f[0] == "REL" || f[0] == "DECL"):
			last[f[1]] = event{f[0], "", at}
		}
	}
	rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	checked, events, lost := 0, 0, 0
	for k := range kills {
		c := startChild(t, nil, "churn", env, onLine)
		if s := <-c.start; !strings.HasPrefix(s, "START ") {
			c.kill()
			t.Fatalf("run %d: the server did not start on the lease file left by the last kill: %s", k, s)
		}
		time.Sleep(time.Duration(5+rng.IntN(245)) * time.Millisecond)
		killedAt := time.Now()
		c.kill()

		ld, err := readStore(file)
		if err != nil {
			t.Fatalf("after kill %d the lease file does not load: %v", k, err)
		}
		got := map[string]Lease{}
		for _, l := range ld.leases {
			got[l.MAC.String()] = l
		}
		mu.Lock()
		for mac, e := range last {
			l, ok := got[mac]
			if killedAt.Sub(e.at) < durability {
				// May or may not have made it; if not, it is lost
				// (within the bound) and the file's state stands.
				applied := !ok || !l.Expires.After(e.at)
				if e.kind == "ACK" {
					applied = ok && l.Addr.String() == e.addr && l.Expires.After(e.at)
				}
				if !applied {
					delete(last, mac)
					lost++
				}
				continue
			}
			checked++
			switch e.kind {
			case "ACK":
				if !ok || l.Addr.String() != e.addr || !l.Expires.After(e.at) {
					t.Errorf("kill %d: %s was granted %s %v before the kill; the file has %+v (present %v)", k, mac, e.addr, killedAt.Sub(e.at), l, ok)
				}
			case "REL":
				if ok && l.Expires.After(e.at) {
					t.Errorf("kill %d: %s released %v before the kill; the file still has it until %v", k, mac, killedAt.Sub(e.at), l.Expires)
				}
			case "DECL":
				if ok && l.Expires.After(e.at) {
					t.Errorf("kill %d: %s declined its address %v before the kill; the file still has %+v", k, mac, killedAt.Sub(e.at), l)
				}
			}
		}
		events = len(last)
		mu.Unlock()
		if t.Failed() {
			return
		}
	}
	st, _ := os.Stat(journalPath(file))
	t.Logf("%d kills; %d MAC states checked against the file after kills (%d MACs seen); %d changes younger than %v lost at a kill; journal %d bytes at the end", kills, checked, events, lost, durability, st.Size())
	if checked < kills {
		t.Errorf("only %d states were old enough to check: the test checks nothing", checked)
	}
}
