package dhcpwatch

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/headnode/headnode/netcfg/dhcpd/dhcptest"
	"github.com/headnode/headnode/netcfg/sandbox"
	"github.com/headnode/headnode/netcfg/sandbox/sandboxtest"
)

func TestMain(m *testing.M) { os.Exit(sandboxtest.Run(m)) }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

var seq struct {
	sync.Mutex
	n int
}

// pair builds head (eth0, 192.168.50.1/24) -- (lan0) other.
func pair(t *testing.T) (head, other *sandbox.NS) {
	t.Helper()
	dhcptest.Need(t)
	seq.Lock()
	seq.n++
	prefix := fmt.Sprintf("hnw%d-%d", os.Getpid(), seq.n)
	seq.Unlock()
	var nss []*sandbox.NS
	for _, role := range []string{"head", "oth"} {
		ns, err := sandbox.New(prefix + role)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ns.Close() })
		nss = append(nss, ns)
	}
	must(t, sandbox.Veth(nss[0], "eth0", nss[1], "lan0"))
	must(t, nss[0].AddAddr("eth0", "192.168.50.1/24"))
	return nss[0], nss[1]
}

type recorder struct {
	mu      sync.Mutex
	reports []Report
}

func (r *recorder) add(rep Report) { r.mu.Lock(); r.reports = append(r.reports, rep); r.mu.Unlock() }

func (r *recorder) sightings() []Sighting {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Sighting
	for _, rep := range r.reports {
		if rep.Sighting != nil {
			out = append(out, *rep.Sighting)
		}
	}
	return out
}

func (r *recorder) listening() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, rep := range r.reports {
		if rep.Listening && rep.Sighting == nil {
			n++
		}
	}
	return n
}

func watch(t *testing.T, ns *sandbox.NS, iface string) *recorder {
	t.Helper()
	r := &recorder{}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	h := ns.Handle
	go func() {
		defer close(done)
		Watch(ctx, Options{Interface: iface, Every: 200 * time.Millisecond, Namespace: &h}, r.add)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

func waitSighting(t *testing.T, r *recorder, within time.Duration) (Sighting, time.Duration) {
	t.Helper()
	start := time.Now()
	for time.Since(start) < within {
		if s := r.sightings(); len(s) > 0 {
			return s[0], time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no other DHCP server seen within %v; reports: %+v", within, r.reports)
	return Sighting{}, 0
}

// Another server (busybox udhcpd, then dnsmasq) answers the watcher's own
// probe: seen, with its server identifier and MAC.
func TestWatchSeesAnotherServer(t *testing.T) {
	for _, server := range []string{"udhcpd", "dnsmasq", "udhcpd behind a bridge port"} {
		t.Run(server, func(t *testing.T) {
			head, other := pair(t)
			if server == "udhcpd behind a bridge port" {
				// The watched interface is a port of a bridge, which takes
				// its frames before protocol sockets would see them.
				must(t, head.Bridge("br0"))
				must(t, head.Enslave("eth0", "br0"))
			}
			must(t, other.AddAddr("lan0", "192.168.50.254/24"))
			dir := t.TempDir()
			switch server {
			case "udhcpd", "udhcpd behind a bridge port":
				if _, err := dhcptest.Udhcpd(t, other, "lan0", "192.168.50.254", "192.168.50.100", "192.168.50.110", dir); err != nil {
					t.Fatal(err)
				}
			case "dnsmasq":
				dnsmasq(t, other, "lan0", dir)
			}
			r := watch(t, head, "eth0")
			s, took := waitSighting(t, r, 5*time.Second)
			t.Logf("%s seen after %v: %+v", server, took, s)
			if s.Server.String() != "192.168.50.254" || len(s.MAC) != 6 || s.Type != "OFFER" {
				t.Errorf("sighting %+v, want an OFFER from 192.168.50.254 with its MAC", s)
			}
		})
	}
}

// A server on the head itself, on the watched interface (as ours is),
// answering a real client: its replies are outgoing and never count.
func TestWatchIgnoresOwnReplies(t *testing.T) {
	head, other := pair(t)
	if _, err := dhcptest.Udhcpd(t, head, "eth0", "192.168.50.1", "192.168.50.100", "192.168.50.110", t.TempDir()); err != nil {
		t.Fatal(err)
	}
	r := watch(t, head, "eth0")
	l, err := dhcptest.Udhcpc(other, "lan0", dhcptest.Options{Dir: t.TempDir()})
	if err != nil || l.Server != "192.168.50.1" {
		t.Fatalf("client lease %+v, %v", l, err)
	}
	time.Sleep(600 * time.Millisecond) // several probes, answered by the head's own server
	if s := r.sightings(); len(s) > 0 {
		t.Errorf("the head's own server counted as another: %+v", s)
	}
	if r.listening() < 2 {
		t.Errorf("only %d probes went out", r.listening())
	}
}

// No interface: errors, reported and retried, never a quiet "listening".
func TestWatchReportsErrors(t *testing.T) {
	head, _ := pair(t)
	r := watch(t, head, "eth9")
	time.Sleep(500 * time.Millisecond)
	r.mu.Lock()
	defer r.mu.Unlock()
	errs := 0
	for _, rep := range r.reports {
		if rep.Listening {
			t.Fatalf("listening on a missing interface: %+v", rep)
		}
		if rep.Err != nil {
			errs++
		}
	}
	if errs < 2 {
		t.Errorf("%d errors reported in 500 ms, want retries every 200 ms", errs)
	}
}

// dnsmasq as a DHCP server only (port=0: no DNS) on iface in ns.
func dnsmasq(t *testing.T, ns *sandbox.NS, iface, dir string) {
	t.Helper()
	path, err := exec.LookPath("dnsmasq")
	if err != nil {
		t.Fatalf("dnsmasq is not installed: %v", err)
	}
	cmd := ns.Command(path, "--no-daemon", "--port=0", "--bind-interfaces", "--interface="+iface, "--except-interface=lo",
		"--dhcp-range=192.168.50.120,192.168.50.130,1h", "--dhcp-leasefile="+filepath.Join(dir, "leases"),
		"--pid-file="+filepath.Join(dir, "pid"), "--conf-file=/dev/null", "--log-dhcp")
	var log sandboxtest.Output
	cmd.Stdout, cmd.Stderr = &log, &log
	must(t, cmd.Start())
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("dnsmasq:\n%s", log.String())
		}
	})
	select {
	case <-exited:
		t.Fatalf("dnsmasq exited at start:\n%s", log.String())
	case <-time.After(200 * time.Millisecond):
	}
}
