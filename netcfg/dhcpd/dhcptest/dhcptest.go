// Package dhcptest runs real DHCP clients and servers from Debian inside
// test network namespaces: busybox udhcpc, ISC dhclient (isc-dhcp-client)
// and busybox udhcpd. The clients run with their own scripts, lease and
// pid files in a test directory, so they configure only the namespace's
// interface and never touch the host's resolv.conf or leases.
package dhcptest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/headnode/headnode/netcfg/sandbox"
	"github.com/headnode/headnode/netcfg/sandbox/sandboxtest"
)

// Need skips t (or fails it, when namespace tests are required) unless the
// clients are installed.
func Need(t testing.TB) {
	t.Helper()
	sandboxtest.Need(t)
	for cmd, pkg := range map[string]string{"udhcpc": "udhcpc", "dhclient": "isc-dhcp-client", "busybox": "busybox"} {
		if _, err := exec.LookPath(cmd); err != nil {
			msg := fmt.Sprintf("%s is not installed (Debian package %s)", cmd, pkg)
			if os.Getenv(sandboxtest.RequireEnv) != "" {
				t.Fatalf("%s, and %s is set", msg, sandboxtest.RequireEnv)
			}
			t.Skip(msg)
		}
	}
}

// NeedCommand fails (with HEADNODE_REQUIRE_NETNS set) or skips the test
// when cmd, from Debian package pkg, is not installed; /usr/sbin counts.
func NeedCommand(t testing.TB, cmd, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(cmd); err == nil {
		return
	}
	if _, err := os.Stat("/usr/sbin/" + cmd); err == nil {
		return
	}
	msg := fmt.Sprintf("%s is not installed (Debian package %s)", cmd, pkg)
	if os.Getenv(sandboxtest.RequireEnv) != "" {
		t.Fatalf("%s, and %s is set", msg, sandboxtest.RequireEnv)
	}
	t.Skip(msg)
}

// Lease is what a client was given, as its script saw it.
type Lease struct {
	Address  netip.Prefix
	Router   string
	DNS      []string
	Hostname string
	Server   string
	Lease    time.Duration
}

// Options for one client run.
type Options struct {
	// Hostname is sent in the host name option (12), when set.
	Hostname string
	// Dir holds scripts, lease and pid files; dhclient remembers its
	// lease there between runs (and asks for it again, INIT-REBOOT).
	Dir string
	// Timeout bounds the run; 0 means 8 s.
	Timeout time.Duration
}

func (o *Options) timeout() time.Duration {
	if o.Timeout == 0 {
		return 8 * time.Second
	}
	return o.Timeout
}

const udhcpcScript = `#!/bin/sh
# udhcpc calls this with deconfig|bound|renew|leasefail|nak.
case "$1" in
bound|renew)
	ip -4 addr flush dev "$interface"
	ip addr add "$ip/$mask" dev "$interface"
	for r in $router; do ip route replace default via "$r" dev "$interface"; break; done
	;;
esac
{
	echo "ip=$ip"; echo "mask=$mask"; echo "router=$router"; echo "dns=$dns"
	echo "hostname=$hostname"; echo "serverid=$serverid"; echo "lease=$lease"
} > "$OUT.$1.tmp" && mv "$OUT.$1.tmp" "$OUT.$1"
`

// script writes a client script that reports to out: the clients clear
// the environment before running their scripts.
func script(path, text, out string) error {
	return os.WriteFile(path, []byte("#!/bin/sh\nOUT="+shellQuote(out)+"\n"+strings.TrimPrefix(text, "#!/bin/sh\n")), 0o755)
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// Udhcpc runs busybox udhcpc on iface in ns until it has a lease (or
// gives up) and returns the lease.
func Udhcpc(ns *sandbox.NS, iface string, o Options) (Lease, error) {
	sh := filepath.Join(o.Dir, "udhcpc.sh")
	out := filepath.Join(o.Dir, "udhcpc")
	if err := script(sh, udhcpcScript, out); err != nil {
		return Lease{}, err
	}
	os.Remove(out + ".bound")
	tries := int(o.timeout() / time.Second)
	args := []string{"-i", iface, "-f", "-q", "-n", "-t", strconv.Itoa(tries), "-T", "1", "-A", "1", "-s", sh}
	if o.Hostname != "" {
		args = append(args, "-x", "hostname:"+o.Hostname)
	}
	cmd := ns.Command("udhcpc", args...)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := runFor(cmd, o.timeout()+2*time.Second); err != nil {
		return Lease{}, fmt.Errorf("udhcpc on %s in %s: %v\n%s", iface, ns.Name, err, log.String())
	}
	env, err := readEnv(out + ".bound")
	if err != nil {
		return Lease{}, fmt.Errorf("udhcpc reported no lease: %v\n%s", err, log.String())
	}
	l := Lease{Router: env["router"], DNS: strings.Fields(env["dns"]), Hostname: env["hostname"], Server: env["serverid"]}
	l.Address, err = netip.ParsePrefix(env["ip"] + "/" + env["mask"])
	if secs, e := strconv.Atoi(env["lease"]); e == nil {
		l.Lease = time.Duration(secs) * time.Second
	}
	return l, err
}

const dhclientScript = `#!/bin/sh
# dhclient-script replacement: configure only this namespace's interface.
case "$reason" in
BOUND|RENEW|REBIND|REBOOT)
	ip -4 addr flush dev "$interface"
	ip addr add "$new_ip_address/$new_subnet_mask" dev "$interface"
	for r in $new_routers; do ip route replace default via "$r" dev "$interface"; break; done
	env | grep -E '^(reason|new_)' > "$OUT.tmp" && mv "$OUT.tmp" "$OUT"
	;;
esac
exit 0
`

// Dhclient runs ISC dhclient on iface in ns until it has a lease (then
// stops it, without releasing) and returns the lease. Its lease file stays
// in o.Dir, so a second run in the same directory asks for the same
// address first (INIT-REBOOT), as a rebooting machine does.
func Dhclient(ns *sandbox.NS, iface string, o Options) (Lease, error) {
	sh := filepath.Join(o.Dir, "dhclient.sh")
	out := filepath.Join(o.Dir, "dhclient.bound")
	conf := filepath.Join(o.Dir, "dhclient.conf")
	if err := script(sh, dhclientScript, out); err != nil {
		return Lease{}, err
	}
	text := fmt.Sprintf("timeout %d;\nretry 1;\ninitial-interval 1;\nrequest subnet-mask, broadcast-address, routers, domain-name-servers, host-name;\n", int(o.timeout()/time.Second))
	if o.Hostname != "" {
		text += fmt.Sprintf("send host-name %q;\n", o.Hostname)
	}
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return Lease{}, err
	}
	os.Remove(out)
	cmd := ns.Command("dhclient", "-4", "-1", "-d", "-v", "-cf", conf, "-lf", filepath.Join(o.Dir, "dhclient.leases"),
		"-pf", filepath.Join(o.Dir, "dhclient.pid"), "-sf", sh, iface)
	var log sandboxtest.Output
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		return Lease{}, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		// -d keeps dhclient running to renew; stop it (no release).
		cmd.Process.Kill()
		<-exited
	}()
	deadline := time.After(o.timeout() + 2*time.Second)
	for {
		if env, err := readEnv(out); err == nil {
			l := Lease{Router: strings.Fields(env["new_routers"] + " ")[0], DNS: strings.Fields(env["new_domain_name_servers"]),
				Hostname: env["new_host_name"], Server: env["new_dhcp_server_identifier"]}
			if secs, e := strconv.Atoi(env["new_dhcp_lease_time"]); e == nil {
				l.Lease = time.Duration(secs) * time.Second
			}
			ones, _ := maskBits(env["new_subnet_mask"])
			a, err := netip.ParseAddr(env["new_ip_address"])
			l.Address = netip.PrefixFrom(a, ones)
			return l, err
		}
		select {
		case err := <-exited:
			exited <- err
			return Lease{}, fmt.Errorf("dhclient on %s in %s exited without a lease (%v):\n%s", iface, ns.Name, err, log.String())
		case <-deadline:
			return Lease{}, fmt.Errorf("dhclient on %s in %s: no lease within %v:\n%s", iface, ns.Name, o.timeout()+2*time.Second, log.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Udhcpd runs busybox udhcpd on iface in ns, serving start-end with
// itself as router, until stop is called or t ends: "another DHCP server"
// on the cluster network. Like most servers it first checks that an
// address is unused (ARP) before offering it; the check is cut from 2 s
// to 100 ms. stop may be called more than once.
func Udhcpd(t testing.TB, ns *sandbox.NS, iface, serverAddr, start, end, dir string) (stop func(), err error) {
	conf := filepath.Join(dir, "udhcpd.conf")
	text := fmt.Sprintf("interface %s\nstart %s\nend %s\nlease_file %s\npidfile %s\nopt router %s\nopt subnet 255.255.255.0\n",
		iface, start, end, filepath.Join(dir, "udhcpd.leases"), filepath.Join(dir, "udhcpd.pid"), serverAddr)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return nil, err
	}
	os.WriteFile(filepath.Join(dir, "udhcpd.leases"), nil, 0o644)
	cmd := ns.Command("busybox", "udhcpd", "-f", "-a", "100", conf)
	var log sandboxtest.Output
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	// udhcpd opens its socket at once; give it a moment, and make sure it
	// did not die on its configuration.
	select {
	case <-exited:
		return nil, fmt.Errorf("udhcpd exited at start:\n%s", log.String())
	case <-time.After(200 * time.Millisecond):
	}
	stop = sync.OnceFunc(func() { cmd.Process.Kill(); <-exited })
	t.Cleanup(stop)
	return stop, nil
}

func runFor(cmd *exec.Cmd, d time.Duration) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		cmd.Process.Kill()
		<-done
		return errors.New("timed out")
	}
}

func readEnv(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	env := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			env[k] = strings.Trim(v, "'")
		}
	}
	return env, nil
}

func maskBits(dotted string) (int, bool) {
	ip := net.ParseIP(dotted).To4()
	if ip == nil {
		return 0, false
	}
	ones, bits := net.IPMask(ip).Size()
	return ones, bits == 32
}
