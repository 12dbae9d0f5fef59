package systemd_test

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const unitFile = "headnode.service"

// unitSettings reads a unit file into key → values (in order), the way
// systemd sees it: comments and section headers dropped.
func unitSettings(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' || line[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: not a key=value line: %q", path, line)
		}
		out[k] = append(out[k], v)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestUnitSettings pins what the rest of the project relies on: the paths
// the daemon and the package use, readiness and ordering, reload, watchdog,
// the LED after a stop and the device access of the hardware.
func TestUnitSettings(t *testing.T) {
	got := unitSettings(t, unitFile)
	want := map[string]string{
		"Type":                   "notify",
		"ExecStart":              "/usr/bin/headnode daemon",
		"ExecReload":             "/bin/kill -HUP $MAINPID",
		"ExecStopPost":           "-/usr/bin/headnode led stopped",
		"Wants":                  "network-pre.target",
		"Before":                 "network-pre.target",
		"After":                  "modprobe@i2c_dev.service",
		"Restart":                "on-failure",
		"RuntimeDirectory":       "headnode",
		"StateDirectory":         "headnode",
		"ConfigurationDirectory": "headnode",
		"DevicePolicy":           "closed",
		"DeviceAllow":            "char-i2c rw",
		"ProtectKernelTunables":  "yes",
		"WantedBy":               "multi-user.target",
		"LogsDirectory":          "headnode",
		"SocketBindDeny":         "any",
	}
	for k, v := range want {
		if !slices.Contains(got[k], v) {
			t.Errorf("%s: %s=%s missing (has %q)", unitFile, k, v, got[k])
		}
	}
	for _, k := range []string{"WatchdogSec", "CapabilityBoundingSet", "RestrictAddressFamilies"} {
		if len(got[k]) == 0 {
			t.Errorf("%s: no %s=", unitFile, k)
		}
	}
	if !slices.Contains(got["DeviceAllow"], "char-hidraw rw") {
		t.Errorf("%s: DeviceAllow=char-hidraw rw missing: the BlinkStick would be unreachable", unitFile)
	}
	// Netlink carries links, addresses, nftables and conntrack; without it
	// the daemon cannot see the network at all.
	if fams := strings.Join(got["RestrictAddressFamilies"], " "); !strings.Contains(fams, "AF_NETLINK") {
		t.Errorf("%s: RestrictAddressFamilies=%s lacks AF_NETLINK", unitFile, fams)
	}
	for _, dev := range []string{"char-ttyACM rw", "char-ttyUSB rw", "char-gpiochip rw", "/dev/gpiomem rw"} {
		if !slices.Contains(got["DeviceAllow"], dev) {
			t.Errorf("%s: DeviceAllow=%s missing", unitFile, dev)
		}
	}
	// Bounded, and above what the daemon needs.
	for k, least := range map[string]int64{"MemoryMax": 64 << 20, "MemoryHigh": 64 << 20, "TasksMax": 32} {
		if len(got[k]) != 1 {
			t.Errorf("%s: %s=%q, want one value", unitFile, k, got[k])
			continue
		}
		v := got[k][0]
		mult := int64(1)
		if strings.HasSuffix(v, "M") {
			v, mult = strings.TrimSuffix(v, "M"), 1<<20
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n*mult < least {
			t.Errorf("%s: %s=%s, want a number of at least %d", unitFile, k, got[k][0], least)
		}
	}
	// ProcSubset=pid hides /proc/sys, where the daemon checks ip_forward.
	if slices.Contains(got["ProcSubset"], "pid") {
		t.Errorf("%s: ProcSubset=pid hides /proc/sys/net/ipv4/ip_forward from the daemon", unitFile)
	}
}

// TestUnitSocketBind: every port the daemon binds by default is allowed,
// and nothing else: the status page's ports from the default
// configuration, DHCP (67, and 68 for asking whether another server
// answers) and DNS.
func TestUnitSocketBind(t *testing.T) {
	allow := unitSettings(t, unitFile)["SocketBindAllow"]
	want := []string{"udp:67", "udp:68", "udp:53", "tcp:53"}
	def, err := os.ReadFile(filepath.Join(repo(t), "cmd/headnode/internal/config/default.toml"))
	if err != nil {
		t.Fatal(err)
	}
	listen := regexp.MustCompile(`(?m)^listen = \[(.*)\]`).FindSubmatch(def)
	if listen == nil {
		t.Fatal("no [http] listen in default.toml")
	}
	for _, m := range regexp.MustCompile(`:(\d+)"`).FindAllSubmatch(listen[1], -1) {
		if p := "tcp:" + string(m[1]); !slices.Contains(want, p) {
			want = append(want, p)
		}
	}
	slices.Sort(want)
	got := slices.Sorted(slices.Values(allow))
	if !slices.Equal(got, want) {
		t.Errorf("%s: SocketBindAllow=%q, want %q", unitFile, got, want)
	}
}

// TestUnitVerify runs `systemd-analyze verify`, which loads the unit with
// the system's other units (ordering cycles, unknown keys, bad values,
// missing executables). Its warnings do not change the exit status, so any
// output fails the test. /usr/bin/headnode is not installed here: the copy
// points at a stand-in executable (the package test checks the real path).
func TestUnitVerify(t *testing.T) {
	need(t, false, "systemd-analyze")
	dir := t.TempDir()
	bin := filepath.Join(dir, "headnode")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	unit, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	copyPath := filepath.Join(dir, unitFile)
	if err := os.WriteFile(copyPath, []byte(strings.ReplaceAll(string(unit), "/usr/bin/headnode", bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, err := analyze("verify", "--man=no", copyPath)
	if err != nil || out != "" || stderr != "" {
		t.Errorf("systemd-analyze verify %s: %v\n%s%s", unitFile, err, out, stderr)
	}
}

// analyze runs systemd-analyze. It touches /run/systemd/systemd-units-load
// even offline; as root it runs in a mount namespace with its own /run, so
// the host's stays as it was.
func analyze(args ...string) (string, string, error) {
	if os.Geteuid() != 0 {
		return runErr(nil, "systemd-analyze", args...)
	}
	return runErr(nil, "unshare", append([]string{"--mount", "--propagation", "private", "sh", "-ec",
		`mount -t tmpfs headnode-test /run; exec systemd-analyze "$@"`, "sh"}, args...)...)
}

var exposureRE = regexp.MustCompile(`Overall exposure level for headnode\.service: ([0-9.]+) `)

// TestUnitSecurity holds the unit's `systemd-analyze security` exposure at
// 2.4 or less. --threshold counts on a 0-100 scale, so 2.4 is 24.
func TestUnitSecurity(t *testing.T) {
	need(t, false, "systemd-analyze")
	out, stderr, err := analyze("security", "--offline=true", "--threshold=24", "--no-pager", unitFile)
	m := exposureRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security printed no exposure level (%v):\n%s%s", err, out, stderr)
	}
	level, perr := strconv.ParseFloat(m[1], 64)
	if perr != nil {
		t.Fatal(perr)
	}
	t.Logf("systemd-analyze security --offline: exposure %.1f", level)
	if err != nil || level > 2.4 {
		t.Errorf("exposure %.1f is above 2.4 (%v); the settings that cost most:\n%s", level, err, worst(out))
	}
}

// worst returns the failed checks of a security report.
func worst(report string) string {
	var b strings.Builder
	for _, l := range strings.Split(report, "\n") {
		if strings.HasPrefix(l, "✗") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// TestSysctlDropIn applies sysctl.d/60-headnode.conf with systemd-sysctl in
// a throwaway network namespace (ip_forward is per namespace), starting
// from 0, so the host is not touched and the file must do the work.
func TestSysctlDropIn(t *testing.T) {
	need(t, true, "unshare", "systemd-sysctl")
	sysctl, _ := lookPath("systemd-sysctl")
	conf, err := filepath.Abs("sysctl.d/60-headnode.conf")
	if err != nil {
		t.Fatal(err)
	}
	out := run(t, nil, "unshare", "--net", "sh", "-ec",
		`echo 0 >/proc/sys/net/ipv4/ip_forward; "$0" "$1"; cat /proc/sys/net/ipv4/ip_forward`, sysctl, conf)
	if strings.TrimSpace(out) != "1" {
		t.Errorf("ip_forward after systemd-sysctl %s: %q, want 1", conf, out)
	}
}

// TestTmpfilesDropIn creates what tmpfiles.d/headnode.conf asks for under
// a scratch root: the lock file iptables-legacy needs to be writable.
func TestTmpfilesDropIn(t *testing.T) {
	need(t, false, "systemd-tmpfiles")
	root := t.TempDir()
	conf, err := os.ReadFile("tmpfiles.d/headnode.conf")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"usr/lib/tmpfiles.d", "run"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "usr/lib/tmpfiles.d/headnode.conf"), conf, 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, nil, "systemd-tmpfiles", "--create", "--root="+root, "headnode.conf")
	st, err := os.Lstat(filepath.Join(root, "run/xtables.lock"))
	if err != nil {
		t.Fatal(err)
	}
	if !st.Mode().IsRegular() || st.Mode().Perm() != 0o600 {
		t.Errorf("/run/xtables.lock: %v, want a regular file with mode 0600", st.Mode())
	}
	// The unit must be allowed to write exactly that file.
	if rw := unitSettings(t, unitFile)["ReadWritePaths"]; !slices.Contains(rw, "-/run/xtables.lock") {
		t.Errorf("%s: ReadWritePaths=%q, want -/run/xtables.lock", unitFile, rw)
	}
}
