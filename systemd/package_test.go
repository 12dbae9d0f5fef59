package systemd_test

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// A git-describe style version: the packages must turn it into a Debian
// version that sorts after 9.8.7, and the binary must print it unchanged.
const (
	testVersion    = "v9.8.7-1-gabcdef0"
	testDebVersion = "9.8.7+1+gabcdef0"
)

// packaged maps each file in the package to its source in the repository.
var packaged = map[string]string{
	"usr/bin/headnode":                                   "", // built
	"usr/sbin/clusterctrl":                               "", // a link: the clusterctrl personality
	"usr/lib/systemd/system/headnode.service":            "systemd/headnode.service",
	"usr/lib/sysctl.d/60-headnode.conf":                  "systemd/sysctl.d/60-headnode.conf",
	"usr/lib/modules-load.d/headnode.conf":               "systemd/modules-load.d/headnode.conf",
	"usr/lib/udev/rules.d/60-headnode-blinkstick.rules":  "systemd/udev/60-headnode-blinkstick.rules",
	"usr/lib/NetworkManager/conf.d/headnode.conf":        "systemd/NetworkManager/headnode.conf",
	"usr/lib/NetworkManager/conf.d/headnode-dns.conf":    "systemd/NetworkManager/headnode-dns.conf",
	"etc/NetworkManager/dnsmasq.d/headnode.conf":         "systemd/NetworkManager/dnsmasq-headnode.conf",
	"usr/lib/tmpfiles.d/headnode.conf":                   "systemd/tmpfiles.d/headnode.conf",
	"usr/lib/sysusers.d/headnode.conf":                   "systemd/sysusers.d/headnode.conf",
	"etc/headnode/config.toml":                           "cmd/headnode/internal/config/default.toml",
	"usr/share/doc/headnode/README.md":                   "README.md",
	"usr/share/doc/headnode/copyright":                   "LICENSE",
	"usr/share/doc/headnode/changelog.gz":                "", // generated
	"usr/share/headnode/prometheus/alerts.yml":           "cmd/headnode/internal/web/prometheus/alerts.yml",
	"usr/share/headnode/prometheus/prometheus.yml":       "cmd/headnode/internal/web/prometheus/prometheus.yml",
	"usr/share/headnode/grafana/headnode-dashboard.json": "cmd/headnode/internal/web/grafana/headnode-dashboard.json",
	"usr/share/headnode/mibs/HEADNODE-MIB.txt":           "cmd/headnode/internal/snmp/HEADNODE-MIB.txt",
	"usr/share/man/man8/headnode.8.gz":                   "", // generated: headnode __man
	"usr/share/man/man8/clusterctrl.8.gz":                "", // a link to headnode.8.gz
	"usr/share/bash-completion/completions/headnode":     "", // generated: headnode __bash-completion
	"usr/share/lintian/overrides/headnode":               "systemd/debian/lintian-overrides",
}

// The package's Maintainer: the project, not a placeholder.
const maintainer = "The headnode authors <headnode@users.noreply.github.com>"

// TestPackages builds both Debian packages with `build.sh deb` once and
// checks them, their maintainer scripts, and `build.sh image` with them.
func TestPackages(t *testing.T) {
	need(t, false, "dpkg-deb", "go")
	dist := t.TempDir()
	env := []string{"VERSION=" + testVersion, "DIST=" + dist}
	run(t, env, filepath.Join(repo(t), "build.sh"), "deb")
	debs := map[string]string{}
	for _, arch := range []string{"armhf", "arm64"} {
		debs[arch] = filepath.Join(dist, "headnode_"+testDebVersion+"_"+arch+".deb")
		st, err := os.Stat(debs[arch])
		if err != nil {
			t.Fatalf("build.sh deb made no %s package: %v", arch, err)
		}
		t.Logf("%s: %d bytes", filepath.Base(debs[arch]), st.Size())
	}
	for _, arch := range []string{"armhf", "arm64"} {
		t.Run("contents/"+arch, func(t *testing.T) { checkDeb(t, debs[arch], arch) })
		t.Run("lintian/"+arch, func(t *testing.T) { checkLintian(t, debs[arch]) })
	}
	t.Run("maintainer-scripts/offline", func(t *testing.T) { testOfflineLifecycle(t, debs["arm64"]) })
	t.Run("maintainer-scripts/live", func(t *testing.T) { testLiveScripts(t, debs["arm64"]) })
	t.Run("image", func(t *testing.T) { testImage(t, env, debs) })
}

// checkDeb checks a package's control fields, file list, owners and modes,
// that each file is what the repository holds, and that the binary is for
// the package's architecture and runs there (under qemu).
func checkDeb(t *testing.T, deb, arch string) {
	// No Depends: without the iptables program the daemon programs
	// nf_tables over netlink, so the package installs offline on a system
	// that has neither iptables nor nftables (Raspberry Pi OS Lite).
	fields := map[string]string{"Package": "headnode", "Version": testDebVersion, "Architecture": arch, "Depends": "", "Recommends": "", "Suggests": "nftables, iptables", "Maintainer": maintainer}
	for f, want := range fields {
		if got := strings.TrimSpace(run(t, nil, "dpkg-deb", "-f", deb, f)); got != want {
			t.Errorf("%s: %s: %q, want %q", deb, f, got, want)
		}
	}
	if got := run(t, nil, "dpkg-deb", "-I", deb, "conffiles"); got != "/etc/headnode/config.toml\n/etc/NetworkManager/dnsmasq.d/headnode.conf\n" {
		t.Errorf("conffiles: %q, want /etc/headnode/config.toml and /etc/NetworkManager/dnsmasq.d/headnode.conf", got)
	}

	// dpkg-deb -c: "-rwxr-xr-x root/root 8257698 2026-11-23 14:58 ./usr/bin/headnode"
	var files []string
	for _, line := range strings.Split(strings.TrimSpace(run(t, nil, "dpkg-deb", "-c", deb)), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 {
			t.Fatalf("dpkg-deb -c line %q", line)
		}
		mode, owner, path := f[0], f[1], strings.TrimPrefix(f[5], "./")
		if owner != "root/root" {
			t.Errorf("%s is owned by %s, want root/root", path, owner)
		}
		switch {
		case mode[0] == 'l':
			files = append(files, path)
			links := map[string]string{"usr/sbin/clusterctrl": "../bin/headnode", "usr/share/man/man8/clusterctrl.8.gz": "headnode.8.gz"}
			if target, ok := links[path]; !ok || len(f) != 8 || f[7] != target {
				t.Errorf("link %q, want only %v", line, links)
			}
		case mode[0] == 'd':
			if mode != "drwxr-xr-x" {
				t.Errorf("directory %s has mode %s, want drwxr-xr-x", path, mode)
			}
		case path == "usr/bin/headnode":
			files = append(files, path)
			if mode != "-rwxr-xr-x" {
				t.Errorf("%s has mode %s, want -rwxr-xr-x", path, mode)
			}
		default:
			files = append(files, path)
			if mode != "-rw-r--r--" {
				t.Errorf("%s has mode %s, want -rw-r--r--", path, mode)
			}
		}
	}
	var want []string
	for p := range packaged {
		want = append(want, p)
	}
	slices.Sort(want)
	slices.Sort(files)
	if !slices.Equal(files, want) {
		t.Errorf("files in %s:\n%s\nwant:\n%s", filepath.Base(deb), strings.Join(files, "\n"), strings.Join(want, "\n"))
	}

	dir := t.TempDir()
	run(t, nil, "dpkg-deb", "-x", deb, dir)
	for p, src := range packaged {
		if src == "" {
			continue
		}
		got, err1 := os.ReadFile(filepath.Join(dir, p))
		want, err2 := os.ReadFile(filepath.Join(repo(t), src))
		if err1 != nil || err2 != nil {
			t.Errorf("%s: %v %v", p, err1, err2)
		} else if !bytes.Equal(got, want) {
			t.Errorf("%s in the package differs from %s", p, src)
		}
	}
	for _, script := range []string{"preinst", "postinst", "prerm", "postrm"} {
		if got := run(t, nil, "dpkg-deb", "-I", deb, script); !strings.HasPrefix(got, "#!/bin/sh\n") {
			t.Errorf("%s: %q...", script, got[:min(len(got), 40)])
		}
	}
	ctrl := t.TempDir()
	run(t, nil, "dpkg-deb", "-e", deb, ctrl)
	for _, script := range []string{"preinst", "postinst", "prerm", "postrm"} {
		if st, err := os.Stat(filepath.Join(ctrl, script)); err != nil || st.Mode().Perm() != 0o755 {
			t.Errorf("maintainer script %s: %v %v, want mode 0755", script, st.Mode(), err)
		}
	}

	// The unit starts the binary where the package puts it.
	exec := unitSettings(t, filepath.Join(dir, "usr/lib/systemd/system/headnode.service"))["ExecStart"]
	if len(exec) != 1 || !strings.HasPrefix(exec[0], "/usr/bin/headnode ") {
		t.Errorf("ExecStart=%q does not run the packaged /usr/bin/headnode", exec)
	}

	bin := filepath.Join(dir, "usr/bin/headnode")
	machine, class := elfOf(t, bin)
	qemu := []string{"qemu-aarch64"}
	wantMachine, wantClass, wantOS := elf.EM_AARCH64, elf.ELFCLASS64, "linux/arm64)"
	if arch == "armhf" {
		// Raspberry Pi OS armhf runs on the ARMv6 Pi Zero and Pi 1 too.
		qemu = []string{"qemu-arm", "-cpu", "arm1176"}
		wantMachine, wantClass, wantOS = elf.EM_ARM, elf.ELFCLASS32, "linux/arm)"
	}
	if machine != wantMachine || class != wantClass {
		t.Errorf("usr/bin/headnode is %v %v, want %v %v", machine, class, wantMachine, wantClass)
	}
	need(t, false, qemu[0])
	out := run(t, nil, qemu[0], append(qemu[1:], bin, "version")...)
	if !strings.HasPrefix(out, "headnode "+testVersion+" ") || !strings.Contains(out, wantOS) {
		t.Errorf("%s headnode version: %q, want headnode %s ... %s", qemu[0], out, testVersion, wantOS)
	}
	// The manual and the completion script are what the binary writes
	// from its help texts and command table.
	if got, want := gunzip(t, filepath.Join(dir, "usr/share/man/man8/headnode.8.gz")), run(t, nil, qemu[0], append(qemu[1:], bin, "__man")...); got != want {
		t.Errorf("headnode.8.gz differs from `headnode __man`")
	} else if !strings.Contains(got, "\n.SS headnode status [pN] [\\-\\-json]\n") {
		t.Errorf("headnode.8.gz has no section for status:\n%s", got)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "usr/share/bash-completion/completions/headnode")); string(got) != run(t, nil, qemu[0], append(qemu[1:], bin, "__bash-completion")...) {
		t.Errorf("the bash completion differs from `headnode __bash-completion`")
	}
	// md5sums lists every file (dpkg -V, debsums).
	var regular int
	for _, p := range files {
		if st, err := os.Lstat(filepath.Join(dir, p)); err == nil && st.Mode().IsRegular() {
			regular++
		}
	}
	if sums := strings.Split(strings.TrimSpace(run(t, nil, "dpkg-deb", "-I", deb, "md5sums")), "\n"); len(sums) != regular {
		t.Errorf("md5sums has %d lines for %d files", len(sums), regular)
	}
	// The conffile is what the binary calls its defaults.
	def := run(t, nil, qemu[0], append(qemu[1:], bin, "config", "default")...)
	if conf, _ := os.ReadFile(filepath.Join(dir, "etc/headnode/config.toml")); string(conf) != def {
		t.Errorf("/etc/headnode/config.toml differs from `headnode config default`")
	}
}

// checkLintian runs Debian's package checker at its most particular
// (pedantic and experimental tags): nothing but the overrides the package
// ships, each with its reason (systemd/debian/lintian-overrides), and an
// override no longer needed is itself reported.
func checkLintian(t *testing.T, deb string) {
	need(t, false, "lintian")
	out, stderr, err := runErr(nil, "lintian", "--pedantic", "-E", "--display-level", ">=pedantic", "--fail-on", "error,warning,info,pedantic", deb)
	var complaints []string
	for _, l := range strings.Split(strings.TrimSpace(out+"\n"+stderr), "\n") {
		// lintian's own note when run as root, as the tests are.
		if l != "" && l != "running with root privileges is not recommended!" {
			complaints = append(complaints, l)
		}
	}
	if err != nil || len(complaints) > 0 {
		t.Errorf("lintian %s: %v\n%s", filepath.Base(deb), err, strings.Join(complaints, "\n"))
	}
}

// gunzip returns a gzip file's content.
func gunzip(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
