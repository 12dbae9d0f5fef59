package systemd_test

import (
	"debug/elf"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeRootfs writes the parts of a Raspberry Pi OS root file system that
// `build.sh image` and dpkg look at: /usr/bin/dpkg (an ELF header of the
// architecture), dpkg's database, optionally iptables (package and the
// alternatives links), and systemd's unit directories.
func fakeRootfs(t *testing.T, dir, arch string, iptables bool) {
	t.Helper()
	for _, d := range []string{"usr/bin", "usr/sbin", "etc/alternatives", "etc/systemd/system", "usr/lib/systemd/system", "var/lib/dpkg/info", "var/lib/dpkg/updates", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	status := "Package: base-files\nStatus: install ok installed\nArchitecture: " + arch + "\nVersion: 12.4\nMaintainer: t <t@t>\nDescription: base\n base\n\n"
	files := map[string]string{
		"usr/bin/dpkg":           string(elfHeader(arch)),
		"var/lib/dpkg/available": "",
	}
	if iptables {
		status += "Package: iptables\nStatus: install ok installed\nArchitecture: " + arch + "\nVersion: 1.8.9-2\nMaintainer: t <t@t>\nDescription: iptables\n iptables\n\n"
		files["usr/sbin/iptables-nft"] = "#!/bin/sh\n"
		for link, target := range map[string]string{"usr/sbin/iptables": "/etc/alternatives/iptables", "etc/alternatives/iptables": "/usr/sbin/iptables-nft"} {
			if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
				t.Fatal(err)
			}
		}
	}
	files["var/lib/dpkg/status"] = status
	for p, content := range files {
		if err := os.WriteFile(filepath.Join(dir, p), []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// elfHeader returns the 64-byte header of an ARM (armhf) or AArch64
// (arm64) executable: all that architecture detection reads.
func elfHeader(arch string) []byte {
	h := make([]byte, 64)
	copy(h, elf.ELFMAG)
	class, machine := elf.ELFCLASS32, elf.EM_ARM
	if arch == "arm64" {
		class, machine = elf.ELFCLASS64, elf.EM_AARCH64
	}
	h[elf.EI_CLASS], h[elf.EI_DATA], h[elf.EI_VERSION] = byte(class), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)
	binary.LittleEndian.PutUint16(h[16:], uint16(elf.ET_EXEC))
	binary.LittleEndian.PutUint16(h[18:], uint16(machine))
	binary.LittleEndian.PutUint32(h[20:], uint32(elf.EV_CURRENT))
	return h
}

// The synthetic SD card, in 512-byte sectors: an MBR, a 2 MiB FAT boot
// partition and a 64 MiB ext4 root (room to bake a baked image again),
// laid out like Raspberry Pi OS's.
const (
	bootStart   = 2048
	bootSectors = 4096
	rootStart   = bootStart + bootSectors
	rootSectors = 131072
)

// makeImage builds a disk image from a root tree and a config.txt.
func makeImage(t *testing.T, dir, tree, configTxt string) string {
	t.Helper()
	return makeImageFiles(t, dir, tree, map[string]string{"config.txt": configTxt})
}

// makeImageFiles builds a disk image from a root tree and the files of its
// boot partition.
func makeImageFiles(t *testing.T, dir, tree string, bootFiles map[string]string) string {
	t.Helper()
	boot, root, img := filepath.Join(dir, "boot.fat"), filepath.Join(dir, "root.ext4"), filepath.Join(dir, "in.img")
	run(t, nil, "mkfs.vfat", "-C", boot, "2048")
	for name, content := range bootFiles {
		f := filepath.Join(dir, "boot-"+name)
		if err := os.WriteFile(f, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		run(t, nil, "mcopy", "-i", boot, f, "::"+name)
	}
	run(t, nil, "mkfs.ext4", "-q", "-d", tree, root, "64M")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate((rootStart + rootSectors) * 512); err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct {
		file  string
		start int64
	}{{boot, bootStart}, {root, rootStart}} {
		src, err := os.Open(p.file)
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.Copy(io.NewOffsetWriter(f, p.start*512), src)
		src.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	table := "label: dos\nstart=2048, size=4096, type=c\nstart=6144, size=131072, type=83\n"
	cmd := []string{"sfdisk", "--quiet", img}
	if _, stderr, err := runStdin(table, cmd...); err != nil {
		t.Fatalf("sfdisk: %v: %s", err, stderr)
	}
	return img
}

// readImage unpacks the root file system of img into a directory (with
// debugfs: no mount) and returns it with the boot partition's config.txt.
func readImage(t *testing.T, img string) (root, configTxt string) {
	t.Helper()
	dir := t.TempDir()
	part := filepath.Join(dir, "root.ext4")
	in, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(part)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.Copy(out, io.NewSectionReader(in, rootStart*512, rootSectors*512))
	out.Close()
	if err != nil {
		t.Fatal(err)
	}
	root = filepath.Join(dir, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, nil, "debugfs", "-R", "rdump / "+root, part)
	configTxt = run(t, []string{"MTOOLS_SKIP_CHECK=1"}, "mtype", "-i", img+"@@"+itoa(bootStart*512), "::config.txt")
	return root, configTxt
}

// i2cLines returns config.txt's lines that turn on I2C bus 1.
func i2cLines(configTxt string) []string {
	var out []string
	for _, l := range strings.Split(configTxt, "\n") {
		l = strings.TrimSpace(l)
		if !strings.HasPrefix(l, "#") && (strings.Contains(l, "i2c_arm=on") || strings.Contains(l, "i2c-gpio")) {
			out = append(out, l)
		}
	}
	return out
}

// noLeftovers fails when build.sh image left a loop device on img or a
// mount or mount point of its own.
func noLeftovers(t *testing.T, imgs ...string) {
	t.Helper()
	// Every loop device with its backing file ("(deleted)" appended when the
	// file is gone, as after a failed run removed OUT).
	loops := run(t, nil, "losetup", "--list", "--noheadings", "--output", "NAME,BACK-FILE")
	for _, line := range strings.Split(strings.TrimSpace(loops), "\n") {
		dev, file, _ := strings.Cut(line, " ")
		for _, img := range imgs {
			if strings.Contains(file, img) {
				t.Errorf("loop device %s left on %s", dev, file)
				// Put the host back: unmount and detach what the script left.
				runErr(nil, "umount", dev)
				runErr(nil, "losetup", "-d", dev)
			}
		}
	}
	if mi, err := os.ReadFile("/proc/self/mountinfo"); err != nil || strings.Contains(string(mi), "/headnode-image.") {
		t.Errorf("a headnode-image mount is left (%v)", err)
	}
	if left, _ := filepath.Glob("/tmp/headnode-image.*"); len(left) > 0 {
		t.Errorf("mount points left: %q", left)
	}
	if left, _ := filepath.Glob("/tmp/headnode-config.txt.*"); len(left) > 0 {
		t.Errorf("temporary files left: %q", left)
	}
}

// testImage runs `build.sh image` on synthetic Raspberry Pi OS images.
func testImage(t *testing.T, env []string, debs map[string]string) {
	need(t, true, "losetup", "partx", "mount", "mkfs.ext4", "mkfs.vfat", "mcopy", "mtype", "sfdisk", "debugfs", "dpkg", "systemctl")
	buildSh := filepath.Join(repo(t), "build.sh")
	defaults, err := os.ReadFile(filepath.Join(repo(t), "cmd/headnode/internal/config/default.toml"))
	if err != nil {
		t.Fatal(err)
	}

	// A 64-bit image; the package is built for the architecture found.
	t.Run("arm64", func(t *testing.T) {
		dir := t.TempDir()
		fakeRootfs(t, filepath.Join(dir, "tree"), "arm64", true)
		// Commented out, as in Raspberry Pi OS; the file ends inside a
		// [pi4] section and without a newline.
		in := makeImage(t, dir, filepath.Join(dir, "tree"), "#dtparam=i2c_arm=on\n[all]\ndtoverlay=vc4-kms-v3d\n[pi4]\narm_boost=1")
		out := filepath.Join(dir, "out.img")
		t.Cleanup(func() { noLeftovers(t, in, out) })
		run(t, append(env, "DIST="+t.TempDir()), buildSh, "image", in, out)
		noLeftovers(t, in, out)
		root, cfg := readImage(t, out)

		if m, _ := elfOf(t, filepath.Join(root, "usr/bin/headnode")); m != elf.EM_AARCH64 {
			t.Errorf("/usr/bin/headnode is for %v, want EM_AARCH64", m)
		}
		if conf, err := os.ReadFile(filepath.Join(root, "etc/headnode/config.toml")); err != nil || string(conf) != string(defaults) {
			t.Errorf("/etc/headnode/config.toml is not the default configuration (%v)", err)
		}
		if target, err := os.Readlink(filepath.Join(root, "etc/systemd/system/multi-user.target.wants/headnode.service")); err != nil || target != "/usr/lib/systemd/system/headnode.service" {
			t.Errorf("headnode.service is not enabled: %q %v", target, err)
		}
		if got := dpkgStatus(t, root); got != "install ok installed" {
			t.Errorf("dpkg status of headnode in the image: %q", got)
		}
		// The control socket's group, in the image's /etc.
		if g := systemGroup(t, root, "headnode"); g == "" {
			t.Errorf("the image has no system group headnode")
		}
		// deb-systemd-helper's record: upgrades on the Pi keep an admin's
		// `systemctl disable`.
		if _, err := os.Stat(filepath.Join(root, "var/lib/systemd/deb-systemd-helper-enabled/headnode.service.dsh-also")); err != nil {
			t.Errorf("the image's deb-systemd-helper state lacks headnode.service: %v", err)
		}
		if l := i2cLines(cfg); len(l) != 1 || l[0] != "dtparam=i2c_arm=on" {
			t.Errorf("config.txt I2C lines %q, want one dtparam=i2c_arm=on; config.txt:\n%s", l, cfg)
		}
		if !strings.Contains(cfg, "\narm_boost=1\n[all]\n") {
			t.Errorf("config.txt: the added line is not in an [all] section after the old last line:\n%s", cfg)
		}
	})

	// Stock Raspberry Pi OS Lite (no iptables, no nftables), bookworm and
	// trixie, armhf and arm64, with and without first-boot options.
	t.Run("lite", func(t *testing.T) { testLiteImages(t, env, debs) })
	t.Run("rpi-preseed", func(t *testing.T) { testPreseedImage(t, env, debs) })

	// An image with neither cloud-init nor raspberrypi-sys-mods reads no
	// first-boot files: the options are refused, and nothing is left.
	t.Run("first boot without a format", func(t *testing.T) {
		dir := t.TempDir()
		fakeRootfs(t, filepath.Join(dir, "tree"), "armhf", true)
		in := makeImage(t, dir, filepath.Join(dir, "tree"), "dtparam=audio=on\n")
		out := filepath.Join(dir, "out.img")
		t.Cleanup(func() { noLeftovers(t, in, out) })
		_, stderr, err := runErr(env, buildSh, "image", "--deb", debs["armhf"], "--hostname", "head", in, out)
		if err == nil || !strings.Contains(stderr, "reads no first-boot settings") {
			t.Errorf("build.sh image --hostname on an image without a first-boot format: %v, stderr:\n%s", err, stderr)
		}
		for _, f := range []string{out, filepath.Join(dir, "out.rpi-imager-manifest")} {
			if _, err := os.Stat(f); err == nil {
				t.Errorf("%s was left behind after the failure", f)
			}
		}
		noLeftovers(t, in, out)
	})

	// A ClusterHAT image has the official clusterctrl: headnode's takes its
	// place, the official one is moved aside by a diversion the image's
	// dpkg knows, and removing headnode there brings it back.
	t.Run("official clusterctrl", func(t *testing.T) {
		dir := t.TempDir()
		tree := filepath.Join(dir, "tree")
		fakeRootfs(t, tree, "armhf", true)
		official := officialClusterctrl(t, tree)
		in := makeImage(t, dir, tree, "[all]\ndtoverlay=i2c-gpio,bus=1,i2c_gpio_sda=2,i2c_gpio_scl=3\n")
		out := filepath.Join(dir, "out.img")
		t.Cleanup(func() { noLeftovers(t, in, out) })
		_, stderr, err := runErr(env, buildSh, "image", "--deb", debs["armhf"], in, out)
		if err != nil {
			t.Fatalf("build.sh image: %v\n%s", err, stderr)
		}
		if !strings.Contains(stderr, "moved the official /usr/sbin/clusterctrl to /usr/sbin/clusterctrl.official") {
			t.Errorf("build.sh image did not say it moved the official tool:\n%s", stderr)
		}
		noLeftovers(t, in, out)
		root, _ := readImage(t, out)
		checkDiverted(t, root, official)
		if target, err := os.Readlink(filepath.Join(root, "usr/sbin/clusterhat")); err != nil || target != "clusterctrl" {
			t.Errorf("/usr/sbin/clusterhat -> %q %v, want clusterctrl (now headnode's)", target, err)
		}
		// Restorable: removing the package in the image puts it back.
		fakes, log := fakeCommands(t, liveCommands...)
		inNamespace(t, true, fakes, "dpkg", "--root="+root, "--force-script-chrootless", "--force-architecture", "--remove", "headnode")
		if c := calls(t, log); len(c) > 0 {
			t.Errorf("dpkg --remove ran host commands: %q", c)
		}
		checkRestored(t, root, official)
	})

	// A ClusterHAT image turns on I2C with i2c-gpio: no second line. The
	// wrong package is refused first.
	t.Run("i2c-gpio", func(t *testing.T) {
		dir := t.TempDir()
		fakeRootfs(t, filepath.Join(dir, "tree"), "armhf", true)
		orig := "[all]\ndtoverlay=i2c-gpio,bus=1,i2c_gpio_sda=2,i2c_gpio_scl=3\n"
		in := makeImage(t, dir, filepath.Join(dir, "tree"), orig)
		out := filepath.Join(dir, "out.img")
		t.Cleanup(func() { noLeftovers(t, in, out) })

		_, stderr, err := runErr(env, buildSh, "image", "--deb", debs["arm64"], in, out)
		if err == nil || !strings.Contains(stderr, "is for arm64, but") {
			t.Errorf("build.sh image with an arm64 package for an armhf image: %v, stderr:\n%s", err, stderr)
		}
		noLeftovers(t, in, out)

		run(t, env, buildSh, "image", "--deb", debs["armhf"], in, out)
		noLeftovers(t, in, out)
		root, cfg := readImage(t, out)
		// Not Raspberry Pi OS's first-boot tools: Imager is told to offer
		// no customisation.
		if b, err := os.ReadFile(filepath.Join(dir, "out.rpi-imager-manifest")); err != nil || !strings.Contains(string(b), `"init_format": "none"`) {
			t.Errorf("manifest of an image without first-boot tools: %v\n%s", err, b)
		}
		if cfg != orig {
			t.Errorf("config.txt changed:\n%s\nwant:\n%s", cfg, orig)
		}
		if m, _ := elfOf(t, filepath.Join(root, "usr/bin/headnode")); m != elf.EM_ARM {
			t.Errorf("/usr/bin/headnode is for %v, want EM_ARM", m)
		}
	})
}
