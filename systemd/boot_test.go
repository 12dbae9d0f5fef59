package systemd_test

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestUnitUnderSystemd boots systemd in a container (systemd-nspawn, the
// host's /usr with the package's files laid over it, a private network
// with eth0 and eth1) and runs headnode.service exactly as shipped: the
// sandbox must leave the daemon able to read its config, apply NAT with
// iptables, take its control socket, reload and stop cleanly, with the
// sysctl.d and tmpfiles.d drop-ins doing their part. The host's network,
// firewall and /usr are not touched.
func TestUnitUnderSystemd(t *testing.T) {
	need(t, true, "systemd-nspawn", "nsenter", "go", "ip", "iptables")
	// Sharing the host's /usr is what makes the container cheap; on a host
	// without merged /usr, /bin, /sbin and /lib hold programs of their own.
	// (Binding those into the container boots it and runs the daemon, but
	// tried on this merged host it did not power off again.)
	if dest, err := os.Readlink("/bin"); err != nil || dest != "usr/bin" {
		prerequisiteMissing(t, "the container shares the host's /usr, which needs a merged-/usr host (/bin -> usr/bin)")
	}
	dir := t.TempDir()
	root, usr := filepath.Join(dir, "root"), filepath.Join(dir, "usr")

	// The package's files, with the binary built for this machine.
	for p, src := range packaged {
		if !strings.HasPrefix(p, "usr/") || src == "" {
			continue
		}
		copyFile(t, filepath.Join(repo(t), src), filepath.Join(dir, p), 0o644)
	}
	// The flags of build.sh: its host build has filled the cache.
	run(t, []string{"CGO_ENABLED=0"}, "go", "build", "-trimpath", "-o", filepath.Join(usr, "bin/headnode"), filepath.Join(repo(t), "cmd/headnode"))

	// A root with just enough /etc to boot: the machine ID set (no
	// first-boot presets), headnode.service enabled as the package does, and
	// a unit that gives the container the two interfaces of a head node.
	for _, d := range []string{"usr", "etc/systemd/system/multi-user.target.wants", "var", "tmp", "run", "proc", "sys", "dev", "root"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range []string{"bin", "sbin", "lib", "lib64"} {
		if target, err := os.Readlink("/" + l); err == nil {
			if err := os.Symlink(target, filepath.Join(root, l)); err != nil {
				t.Fatal(err)
			}
		}
	}
	id := make([]byte, 16)
	rand.Read(id)
	copyFile(t, "/usr/lib/os-release", filepath.Join(root, "etc/os-release"), 0o644)
	// /usr/sbin/iptables leads through /etc/alternatives.
	copySymlinks(t, "/etc/alternatives", filepath.Join(root, "etc/alternatives"))
	copyFile(t, "/etc/passwd", filepath.Join(root, "etc/passwd"), 0o644)
	copyFile(t, "/etc/group", filepath.Join(root, "etc/group"), 0o644)
	writeFile(t, filepath.Join(root, "etc/machine-id"), hex.EncodeToString(id)+"\n")
	writeFile(t, filepath.Join(root, "etc/systemd/system/headnode-test-net.service"), `[Unit]
DefaultDependencies=no
Before=headnode.service
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=ip link add eth0 type veth peer name eth1
ExecStart=ip link set eth0 up
ExecStart=ip link set eth1 up
ExecStart=ip address add 198.51.100.2/24 dev eth1
# The user's network has a router: its default route makes eth1 the
# uplink, and so eth0 the cluster side (the built-in "auto").
ExecStart=ip route add default via 198.51.100.1 dev eth1
[Install]
WantedBy=multi-user.target
`)
	// Ordered like NetworkManager (and systemd-networkd, ifupdown).
	writeFile(t, filepath.Join(root, "etc/systemd/system/headnode-test-nm.service"), `[Unit]
Wants=network.target
After=network-pre.target
Before=network.target
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=true
[Install]
WantedBy=multi-user.target
`)
	for _, u := range []string{"/usr/lib/systemd/system/headnode.service", "/etc/systemd/system/headnode-test-net.service", "/etc/systemd/system/headnode-test-nm.service"} {
		if err := os.Symlink(u, filepath.Join(root, "etc/systemd/system/multi-user.target.wants", filepath.Base(u))); err != nil {
			t.Fatal(err)
		}
	}

	c := bootContainer(t, root, usr)
	// systemctl works once PID 1 has its private socket; then wait for boot.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		out, err := c.exec("systemctl", "is-system-running", "--wait")
		if err == nil || strings.Contains(out, "degraded") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("container did not finish booting: %v %s", err, out)
		}
	}
	show := func() map[string]string {
		out, err := c.exec("systemctl", "show", "headnode.service", "-p", "ActiveState,SubState,Result,StatusText,MainPID,NRestarts,ExecStopPost")
		if err != nil {
			t.Fatalf("systemctl show: %v %s", err, out)
		}
		props := map[string]string{}
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			k, v, _ := strings.Cut(l, "=")
			props[k] = v
		}
		return props
	}
	journal := func() string {
		out, _ := c.exec("journalctl", "--no-pager", "-o", "cat", "-u", "headnode.service")
		return out
	}

	// Type=notify: active means the daemon said READY=1.
	p := show()
	if p["ActiveState"] != "active" || p["SubState"] != "running" || p["NRestarts"] != "0" {
		t.Fatalf("headnode.service: %v\njournal:\n%s", p, journal())
	}
	t.Logf("headnode.service in the container: %s", p["StatusText"])
	// The network manager starts only once we are ready (READY=1). This
	// also fails when an ordering cycle made systemd drop a job.
	ready := monotonic(t, c, "headnode.service", "ActiveEnterTimestampMonotonic")
	if nm := monotonic(t, c, "headnode-test-nm.service", "ExecMainStartTimestampMonotonic"); nm < ready {
		t.Errorf("the network manager started %d µs before headnode was ready", ready-nm)
	}
	if out, err := c.exec("cat", "/proc/sys/net/ipv4/ip_forward"); strings.TrimSpace(out) != "1" {
		t.Errorf("ip_forward %q (%v): sysctl.d/60-headnode.conf did not apply", out, err)
	}
	// The daemon ran iptables from inside its sandbox.
	if out, err := c.exec("iptables", "-S", "HEADNODE-FWD"); err != nil || !strings.Contains(out, "-j ACCEPT") {
		t.Errorf("no NAT rules from the daemon (%v): %s\njournal:\n%s", err, out, journal())
	}
	// Root and the group from sysusers.d/headnode.conf may use it: the
	// unit's capabilities let the daemon give it to that group.
	if out, err := c.exec("stat", "-c", "%F %a %U %G", "/run/headnode/control.sock"); strings.TrimSpace(out) != "socket 660 root headnode" {
		t.Errorf("control socket: %q %v\njournal:\n%s", out, err, journal())
	}
	if out, err := c.exec("headnode", "status"); err != nil {
		t.Errorf("headnode status through the control socket: %v\n%s", err, out)
	}
	// A member of the group uses the CLI without root; anyone else is
	// refused, told how to join.
	asNobody := []string{"setpriv", "--reuid=65534", "--regid=65534", "--inh-caps=-all", "--bounding-set=-all"}
	if out, err := c.exec(append(asNobody, "--groups=headnode", "headnode", "status")...); err != nil {
		t.Errorf("headnode status as a member of group headnode: %v\n%s", err, out)
	}
	if out, err := c.exec(append(asNobody, "--clear-groups", "headnode", "status")...); err == nil || !strings.Contains(out, "permission denied") || !strings.Contains(out, "adduser $USER headnode") {
		t.Errorf("headnode status as a user outside group headnode: %v\n%s", err, out)
	}

	// Nothing but the socket in /run/headnode (it was bound in a private
	// directory there and renamed into place).
	if out, err := c.exec("ls", "-A", "/run/headnode"); strings.TrimSpace(out) != "control.sock" {
		t.Errorf("/run/headnode holds %q (%v)", out, err)
	}
	// The status page through the socket-bind rules, and only for its
	// own names.
	if out, err := c.exec("curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:9180/healthz"); strings.TrimSpace(out) != "200" {
		t.Errorf("the status page from inside the container: %q %v", out, err)
	}
	if out, err := c.exec("curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Host: evil.example", "http://127.0.0.1:9180/"); strings.TrimSpace(out) != "421" {
		t.Errorf("the status page for Host evil.example: %q %v, want 421", out, err)
	}
	// The bounds are in force (systemd took the values).
	if out, err := c.exec("systemctl", "show", "headnode.service", "-p", "MemoryMax,TasksMax", "--value"); strings.Fields(out) == nil || strings.Join(strings.Fields(out), " ") != fmt.Sprint(128<<20, " 64") {
		t.Errorf("MemoryMax, TasksMax: %q %v", out, err)
	}
	// A second daemon, as a person might start one: exit 1, one line
	// naming the running one, which goes on.
	if out, err := c.exec("headnode", "daemon"); exitCode(err) != 1 || strings.Count(strings.TrimSpace(out), "\n") != 0 ||
		!strings.Contains(out, "another headnode daemon is running (PID "+p["MainPID"]+" holds /var/lib/headnode/daemon.lock)") {
		t.Errorf("a second daemon: exit %d, %q", exitCode(err), out)
	}
	if out, err := c.exec("headnode", "status"); err != nil {
		t.Errorf("headnode status after a second daemon tried: %v\n%s", err, out)
	}

	// Reload: SIGHUP, same process; the trace goes where the README says
	// and the unit lets it write.
	writeFile(t, filepath.Join(root, "etc/headnode/config.toml"), "[hardware]\ni2c_trace = \"/var/log/headnode/i2c.jsonl\"\n")
	if out, err := c.exec("systemctl", "reload", "headnode.service"); err != nil {
		t.Errorf("systemctl reload: %v %s", err, out)
	}
	if q := show(); q["ActiveState"] != "active" || q["MainPID"] != p["MainPID"] {
		t.Errorf("after reload: %v, want active with MainPID %s", q, p["MainPID"])
	}
	if out, err := c.exec("headnode", "status", "--json"); err != nil || strings.Contains(out, "not_applied") || !strings.Contains(out, `"path": "/etc/headnode/config.toml"`) {
		t.Errorf("status after turning the trace on: %v\n%s\njournal:\n%s", err, out, journal())
	}
	if out, err := c.exec("stat", "-c", "%F", "/var/log/headnode/i2c.jsonl"); !strings.HasPrefix(out, "regular") {
		t.Errorf("the I2C trace in /var/log/headnode: %q %v", out, err)
	}

	// Stop: a clean exit, ExecStopPost ran, the NAT rules stay.
	if out, err := c.exec("systemctl", "stop", "headnode.service"); err != nil {
		t.Errorf("systemctl stop: %v %s", err, out)
	}
	q := show()
	if q["ActiveState"] != "inactive" || q["Result"] != "success" {
		t.Errorf("after stop: %v\njournal:\n%s", q, journal())
	}
	if strings.Contains(q["ExecStopPost"], "pid=0 ") {
		t.Errorf("ExecStopPost did not run: %s", q["ExecStopPost"])
	}
	if out, err := c.exec("iptables", "-S", "HEADNODE-FWD"); err != nil {
		t.Errorf("NAT rules gone after stop (%v): %s", err, out)
	}
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// monotonic returns a unit's timestamp property in µs since boot.
func monotonic(t *testing.T, c *container, unit, prop string) int64 {
	t.Helper()
	out, err := c.exec("systemctl", "show", unit, "-p", prop, "--value")
	v, perr := strconv.ParseInt(strings.TrimSpace(out), 10, 64)
	if err != nil || perr != nil || v == 0 {
		t.Fatalf("%s %s: %q %v %v", unit, prop, out, err, perr)
	}
	return v
}

// container is a booted systemd-nspawn container.
type container struct {
	t    *testing.T
	init int // the container's PID 1, as the host sees it
}

// exec runs a command inside the container (all its namespaces).
func (c *container) exec(args ...string) (string, error) {
	out, stderr, err := runErr(nil, "nsenter", append([]string{"--target", strconv.Itoa(c.init), "--all"}, args...)...)
	return out + stderr, err
}

// bootContainer starts systemd in root with usr laid over the host's /usr
// and waits for its PID 1. Cleanup powers it off (or kills it) and removes
// what nspawn leaves under /run/systemd.
func bootContainer(t *testing.T, root, usr string) *container {
	t.Helper()
	name := fmt.Sprintf("headnode-test-%d", os.Getpid())
	var created []string
	for _, d := range []string{"/run/systemd/nspawn-root", "/run/systemd/nspawn/locks", "/run/systemd/nspawn/propagate", "/run/systemd/nspawn", "/run/systemd"} {
		if _, err := os.Stat(d); errors.Is(err, os.ErrNotExist) {
			created = append(created, d)
		}
	}
	var st syscall.Stat_t
	if err := syscall.Stat(root, &st); err != nil {
		t.Fatal(err)
	}
	nspawn, _ := lookPath("systemd-nspawn")
	log := filepath.Join(filepath.Dir(root), "console.log")
	logf, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	// --keep-unit and --register=no: no host systemd or machined needed.
	cmd := exec.Command(nspawn, "--quiet", "--keep-unit", "--register=no", "--machine="+name,
		"--directory="+root, "--overlay-ro=/usr:"+usr+":/usr", "--private-network", "--boot", "--console=pipe")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(done) }()
	c := &container{t: t}
	t.Cleanup(func() {
		// SIGTERM makes nspawn ask the container's systemd to halt.
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Errorf("container did not power off; killing it")
			cmd.Process.Kill()
			<-done
			// nspawn's death leaves the container running: kill its init,
			// which takes every process of its PID namespace with it.
			if c.init > 0 {
				syscall.Kill(c.init, syscall.SIGKILL)
				for end := time.Now().Add(5 * time.Second); alive(c.init) && time.Now().Before(end); {
					time.Sleep(20 * time.Millisecond)
				}
			}
		}
		os.RemoveAll(filepath.Join("/run/systemd/nspawn/propagate", name))
		os.Remove(fmt.Sprintf("/run/systemd/nspawn/locks/inode-%d:%d", st.Dev, st.Ino))
		for _, d := range created {
			os.Remove(d) // only when empty: someone else may use it now
		}
	})

	// nspawn's child becomes the container's PID 1 (systemd).
	children := fmt.Sprintf("/proc/%d/task/%d/children", cmd.Process.Pid, cmd.Process.Pid)
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		select {
		case <-done:
			out, _ := os.ReadFile(log)
			t.Fatalf("systemd-nspawn exited: %s", out)
		default:
		}
		b, _ := os.ReadFile(children)
		for _, f := range strings.Fields(string(b)) {
			pid, _ := strconv.Atoi(f)
			if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); strings.TrimSpace(string(comm)) == "systemd" {
				c.init = pid
				return c
			}
		}
	}
	out, _ := os.ReadFile(log)
	t.Fatalf("no systemd in the container after 20 s: %s", out)
	return nil
}

// alive reports whether pid runs (exists and is not a zombie).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return err == nil && !strings.Contains(string(b), ") Z ")
}

func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, mode); err != nil {
		t.Fatal(err)
	}
}

// copySymlinks copies the symbolic links in dir (such as /etc/alternatives).
func copySymlinks(t *testing.T, dir, dst string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if target, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil {
			if err := os.Symlink(target, filepath.Join(dst, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
