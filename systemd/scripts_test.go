package systemd_test

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The commands the maintainer scripts may run on a live system. Tests put
// recording stand-ins first in PATH: the host is never touched, and the log
// shows what the scripts would have done.
var liveCommands = []string{"systemctl", "deb-systemd-invoke", "modprobe", "udevadm", "nmcli", "systemd-tmpfiles"}

// fakeCommands writes stand-ins for names into a new directory; each
// appends "name args..." to the returned log file.
func fakeCommands(t *testing.T, names ...string) (dir, log string) {
	t.Helper()
	dir = t.TempDir()
	log = filepath.Join(dir, "calls.log")
	for _, n := range names {
		script := "#!/bin/sh\necho \"" + n + " $*\" >>" + log + "\n"
		if err := os.WriteFile(filepath.Join(dir, n), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir, log
}

// calls returns the recorded calls and empties the log.
func calls(t *testing.T, log string) []string {
	t.Helper()
	b, err := os.ReadFile(log)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(log)
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// inNamespace runs a command in a private mount namespace whose /run is an
// empty tmpfs, holding /run/systemd/system when systemd is true (the test
// scripts use it to tell a running systemd), with fakes first in PATH.
func inNamespace(t *testing.T, systemd bool, fakes string, cmd ...string) string {
	t.Helper()
	setup := `mount -t tmpfs headnode-test /run; if [ "$SYSTEMD" = 1 ]; then mkdir -p /run/systemd/system; fi; PATH="$FAKES:$PATH"; export PATH; exec "$@"`
	flag := "0"
	if systemd {
		flag = "1"
	}
	return run(t, []string{"SYSTEMD=" + flag, "FAKES=" + fakes},
		"unshare", append([]string{"--mount", "--propagation", "private", "sh", "-ec", setup, "sh"}, cmd...)...)
}

// dpkgStatus returns the dpkg status of headnode in root ("" when unknown).
func dpkgStatus(t *testing.T, root string) string {
	out, _, _ := runErr(nil, "dpkg-query", "--admindir="+filepath.Join(root, "var/lib/dpkg"), "-W", "-f=${Status}", "headnode:*")
	return out
}

// testOfflineLifecycle installs, removes and purges the package in a
// scratch root with the host's dpkg, as `build.sh image` installs it:
// chrootless, DPKG_ROOT set. It runs on a "host" where systemd seems to
// run, so a script that forgot DPKG_ROOT would call the host's systemctl
// (a stand-in here) and fail the test.
func testOfflineLifecycle(t *testing.T, deb string) {
	need(t, true, "unshare", "dpkg", "dpkg-query", "deb-systemd-helper", "systemd-sysusers")
	root := t.TempDir()
	// A root without iptables (nor nftables), as Raspberry Pi OS Lite:
	// the package must install there, offline.
	fakeRootfs(t, root, "arm64", false)
	official := officialClusterctrl(t, root)
	fakes, log := fakeCommands(t, liveCommands...)
	dpkg := func(args ...string) {
		t.Helper()
		inNamespace(t, true, fakes, append([]string{"dpkg", "--root=" + root, "--force-script-chrootless", "--force-architecture"}, args...)...)
		if c := calls(t, log); len(c) > 0 {
			t.Errorf("dpkg %s ran host commands despite DPKG_ROOT: %q", args[0], c)
		}
	}
	wants := filepath.Join(root, "etc/systemd/system/multi-user.target.wants/headnode.service")
	exists := func(p string) bool { _, err := os.Lstat(filepath.Join(root, p)); return err == nil }

	dpkg("--install", deb)
	if got := dpkgStatus(t, root); got != "install ok installed" {
		t.Errorf("after install: status %q", got)
	}
	// The official clusterctrl is moved aside by a diversion; ours is a
	// link to the binary.
	checkDiverted(t, root, official)
	if target, err := os.Readlink(wants); err != nil || target != "/usr/lib/systemd/system/headnode.service" {
		t.Errorf("after install: headnode.service not enabled: %q %v", target, err)
	}
	if g := systemGroup(t, root, "headnode"); g == "" {
		t.Errorf("after install: no system group headnode in the root's /etc/group")
	}
	// What a daemon run leaves behind.
	if err := os.MkdirAll(filepath.Join(root, "var/lib/headnode"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "var/lib/headnode/nat.json"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "var/log/headnode"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "var/log/headnode/i2c.jsonl"), []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	dpkg("--remove", "headnode")
	if got := dpkgStatus(t, root); got != "deinstall ok config-files" {
		t.Errorf("after remove: status %q", got)
	}
	checkRestored(t, root, official)
	if exists("usr/bin/headnode") || !exists("etc/headnode/config.toml") || !exists("var/lib/headnode/nat.json") {
		t.Errorf("after remove: want the binary gone, the conffile and the state kept")
	}

	dpkg("--purge", "headnode")
	if got := dpkgStatus(t, root); got != "" {
		t.Errorf("after purge: status %q", got)
	}
	for _, p := range []string{"etc/headnode/config.toml", "var/lib/headnode", "var/log/headnode", "etc/systemd/system/multi-user.target.wants/headnode.service"} {
		if exists(p) {
			t.Errorf("after purge: %s is still there", p)
		}
	}
}

// officialClusterctrl puts the official tool where a ClusterHAT image has
// it: /usr/sbin/clusterctrl (from no package), with /usr/sbin/clusterhat
// linking to it. It returns the tool's content.
func officialClusterctrl(t *testing.T, root string) string {
	t.Helper()
	const tool = "#!/usr/bin/env python3\n#\n# Cluster Control\n#\n# (c) 8086 Consultancy 2018-2026\n"
	if err := os.MkdirAll(filepath.Join(root, "usr/sbin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "usr/sbin/clusterctrl"), []byte(tool), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("clusterctrl", filepath.Join(root, "usr/sbin/clusterhat")); err != nil {
		t.Fatal(err)
	}
	return tool
}

// checkDiverted checks that root's /usr/sbin/clusterctrl is headnode's
// and the official tool is at /usr/sbin/clusterctrl.official, by a
// diversion the root's dpkg knows.
func checkDiverted(t *testing.T, root, official string) {
	t.Helper()
	if target, err := os.Readlink(filepath.Join(root, "usr/sbin/clusterctrl")); err != nil || target != "../bin/headnode" {
		t.Errorf("/usr/sbin/clusterctrl -> %q %v, want ../bin/headnode", target, err)
	}
	if got, err := os.ReadFile(filepath.Join(root, "usr/sbin/clusterctrl.official")); err != nil || string(got) != official {
		t.Errorf("/usr/sbin/clusterctrl.official: %v %q, want the official tool", err, got)
	}
	list := run(t, nil, "dpkg-divert", "--admindir="+filepath.Join(root, "var/lib/dpkg"), "--list", "/usr/sbin/clusterctrl")
	if strings.TrimSpace(list) != "diversion of /usr/sbin/clusterctrl to /usr/sbin/clusterctrl.official by headnode" {
		t.Errorf("diversions: %q", list)
	}
}

// checkRestored checks that the official tool is back after a removal.
func checkRestored(t *testing.T, root, official string) {
	t.Helper()
	if got, err := os.ReadFile(filepath.Join(root, "usr/sbin/clusterctrl")); err != nil || string(got) != official {
		t.Errorf("after remove: /usr/sbin/clusterctrl %v %q, want the official tool back", err, got)
	}
	if _, err := os.Lstat(filepath.Join(root, "usr/sbin/clusterctrl.official")); err == nil {
		t.Error("after remove: /usr/sbin/clusterctrl.official is still there")
	}
	if list := run(t, nil, "dpkg-divert", "--admindir="+filepath.Join(root, "var/lib/dpkg"), "--list", "/usr/sbin/clusterctrl"); strings.TrimSpace(list) != "" {
		t.Errorf("after remove: diversions %q", list)
	}
}

// testLiveScripts runs the maintainer scripts as on a running Pi, every
// command they call recorded by a stand-in, and checks the decisions:
// enable, apply the drop-ins and start on install, restart on upgrade,
// stop on remove, and nothing but enabling without a running systemd.
func testLiveScripts(t *testing.T, deb string) {
	need(t, true, "unshare", "dpkg-deb")
	ctrl := t.TempDir()
	run(t, nil, "dpkg-deb", "-e", deb, ctrl)
	fakes, log := fakeCommands(t, append([]string{"deb-systemd-helper", "systemd-sysusers", "dpkg-divert"}, liveCommands...)...)
	divert := "dpkg-divert --package headnode --divert /usr/sbin/clusterctrl.official --rename --add /usr/sbin/clusterctrl"
	undivert := "dpkg-divert --package headnode --divert /usr/sbin/clusterctrl.official --rename --remove /usr/sbin/clusterctrl"
	enable := []string{"deb-systemd-helper --quiet was-enabled headnode.service", "deb-systemd-helper enable headnode.service", "systemd-sysusers headnode.conf"}
	apply := []string{
		"systemctl --system daemon-reload",
		"deb-systemd-invoke restart systemd-sysctl.service",
		"modprobe -q i2c-dev",
		"systemd-tmpfiles --create headnode.conf",
		"udevadm control --reload",
		"nmcli general reload conf",
		"nmcli general reload dns-full",
	}
	for _, c := range []struct {
		name    string
		systemd bool
		args    []string
		want    []string // in this order, others may come between
		exact   bool
	}{
		{"install", true, []string{"postinst", "configure", ""}, append(append(enable, apply...), "deb-systemd-invoke start headnode.service"), false},
		{"upgrade", true, []string{"postinst", "configure", "9.8.6"}, append(append(enable, apply...), "deb-systemd-invoke restart headnode.service"), false},
		{"install without systemd", false, []string{"postinst", "configure", ""}, enable, true},
		{"remove", true, []string{"prerm", "remove"}, []string{"deb-systemd-invoke stop headnode.service"}, true},
		{"prerm on upgrade", true, []string{"prerm", "upgrade", "9.8.8"}, nil, true},
		{"postrm remove", true, []string{"postrm", "remove"}, []string{undivert, "systemctl --system daemon-reload"}, true},
		{"postrm upgrade", true, []string{"postrm", "upgrade", "9.8.8"}, nil, true},
		{"preinst install", true, []string{"preinst", "install"}, []string{divert}, true},
		{"preinst upgrade", true, []string{"preinst", "upgrade", "9.8.6"}, []string{divert}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			inNamespace(t, c.systemd, fakes, append([]string{"sh", filepath.Join(ctrl, c.args[0])}, c.args[1:]...)...)
			got := calls(t, log)
			if c.exact && !slices.Equal(got, c.want) {
				t.Errorf("%s %q ran:\n%s\nwant exactly:\n%s", c.args[0], c.args[1:], strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
			if !c.exact && !subsequence(got, c.want) {
				t.Errorf("%s %q ran:\n%s\nwant, in this order:\n%s", c.args[0], c.args[1:], strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
		})
	}
}

// subsequence reports whether want appears in got in order.
func subsequence(got, want []string) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}

// systemGroup returns root's /etc/group line for a system group named name
// (GID below 1000), or "".
func systemGroup(t *testing.T, root, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "etc/group"))
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, ":")
		if len(f) == 4 && f[0] == name {
			if gid, err := strconv.Atoi(f[2]); err == nil && gid > 0 && gid < 1000 {
				return line
			}
		}
	}
	return ""
}
