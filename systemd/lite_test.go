package systemd_test

import (
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// A stock Raspberry Pi OS Lite image, as pi-gen's stages 0-2 leave it: no
// iptables, no nftables; raspberrypi-sys-mods (imager_custom, sshswitch)
// and userconf-pi (userconf.txt) on every release; cloud-init with the
// Raspberry Pi module cc_raspberry_pi on the newest trixie.
type liteImage struct {
	arch      string // armhf or arm64
	codename  string // bookworm or trixie
	cloudInit bool   // the newest trixie images
	preseed   bool   // the rpi-preseed package (Imager's rpi-preseed format)
}

// The kernel command line of a fresh Lite image.
const liteCmdline = "console=serial0,115200 console=tty1 root=PARTUUID=4e639091-02 rootfstype=ext4 fsck.repair=yes rootwait quiet init=/usr/lib/raspberrypi-sys-mods/firstboot"

// fakeLite writes the root file system of a Lite image into dir.
func fakeLite(t *testing.T, dir string, img liteImage) {
	t.Helper()
	fakeRootfs(t, dir, img.arch, false)
	version := map[string]string{"bookworm": "12", "trixie": "13"}[img.codename]
	pkgs := []string{"raspberrypi-sys-mods", "userconf-pi", "openssh-server", "avahi-daemon", "network-manager", "raspi-config", "man-db"}
	if img.cloudInit {
		pkgs = append(pkgs, "cloud-init", "rpi-cloud-init-mods")
	}
	if img.preseed {
		pkgs = append(pkgs, "rpi-preseed")
	}
	status, err := os.ReadFile(filepath.Join(dir, "var/lib/dpkg/status"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range append(pkgs, "base-files") {
		putFile(t, filepath.Join(dir, "var/lib/dpkg/info", p+".list"), "")
	}
	for _, p := range pkgs {
		status = fmt.Appendf(status, "Package: %s\nStatus: install ok installed\nArchitecture: %s\nVersion: 1\nMaintainer: t <t@t>\nDescription: %s\n %s\n\n", p, img.arch, p, p)
	}
	files := map[string]string{
		"var/lib/dpkg/status": string(status),
		"usr/lib/os-release":  fmt.Sprintf("PRETTY_NAME=\"Debian GNU/Linux %s (%s)\"\nVERSION_ID=\"%s\"\nVERSION_CODENAME=%s\nID=debian\n", version, img.codename, version, img.codename),
		"etc/rpi-issue":       "Raspberry Pi reference 2025-11-24\nGenerated using pi-gen, https://github.com/RPi-Distro/pi-gen, 1234567, stage2\n",
		"etc/fstab":           "proc /proc proc defaults 0 0\nPARTUUID=4e639091-01 /boot/firmware vfat defaults 0 2\nPARTUUID=4e639091-02 / ext4 defaults,noatime 0 1\n",
		"etc/hostname":        "raspberrypi\n",
		"etc/passwd":          "root:x:0:0:root:/root:/bin/bash\npi:x:1000:1000:,,,:/home/pi:/bin/bash\n",
		"usr/lib/raspberrypi-sys-mods/imager_custom": "#!/bin/sh\n",
		"usr/lib/userconf-pi/userconf":               "#!/bin/sh\n",
		// man-db's file trigger on /usr/share/man, which the package's man
		// page sets off: it is left pending for the Pi's first dpkg run
		// (build.sh runs nothing from the image).
		"var/lib/dpkg/info/man-db.triggers": "interest-noawait /usr/share/man\n",
		"var/lib/dpkg/triggers/File":        "/usr/share/man man-db/noawait\n",
	}
	if img.cloudInit {
		files["usr/bin/cloud-init"] = "#!/usr/bin/python3\n"
		files["usr/lib/python3/dist-packages/cloudinit/config/cc_raspberry_pi.py"] = "# cc_raspberry_pi\n"
		files["etc/cloud/cloud.cfg"] = "datasource_list: [ NoCloud, None ]\n"
	}
	for p, content := range files {
		putFile(t, filepath.Join(dir, p), content)
	}
	// Debian's /etc/os-release is a relative link into /usr/lib.
	if err := os.Symlink("../usr/lib/os-release", filepath.Join(dir, "etc/os-release")); err != nil {
		t.Fatal(err)
	}
}

// liteBoot is the boot partition of a fresh Lite image: I2C commented out.
func liteBoot() map[string]string {
	return map[string]string{
		"config.txt":  "# For more options and information see\n# http://rptl.io/configtxt\n#dtparam=i2c_arm=on\n#dtparam=spi=on\ndtparam=audio=on\n\n[all]\n",
		"cmdline.txt": liteCmdline + "\n",
	}
}

// bootFile returns a file of img's boot partition and whether it exists.
func bootFile(t *testing.T, img, name string) (string, bool) {
	t.Helper()
	out, _, err := runErr([]string{"MTOOLS_SKIP_CHECK=1"}, "mtype", "-i", img+"@@"+itoa(bootStart*512), "::"+name)
	return out, err == nil
}

// The first-boot options of one test case, as `build.sh image` takes them.
type firstBoot struct {
	hostname, user, hash string
	keys                 []string // given through a .pub file
	ssid, psk, country   string
}

func (fb firstBoot) args(t *testing.T) []string {
	var a []string
	for _, o := range []struct{ flag, v string }{{"--hostname", fb.hostname}, {"--user", fb.user}, {"--password-hash", fb.hash}, {"--wifi-ssid", fb.ssid}, {"--wifi-psk", fb.psk}, {"--wifi-country", fb.country}} {
		if o.v != "" {
			a = append(a, o.flag, o.v)
		}
	}
	if len(fb.keys) > 0 {
		pub := filepath.Join(t.TempDir(), "id.pub")
		putFile(t, pub, "# the laptop's keys\n"+strings.Join(fb.keys, "\r\n")+"\n\n")
		a = append(a, "--ssh-key", pub)
	}
	return a
}

// wpaPSK is the WPA key of a passphrase: PBKDF2-HMAC-SHA1 over the SSID,
// 4096 rounds, 32 bytes (IEEE 802.11i), as hex.
func wpaPSK(t *testing.T, pass, ssid string) string {
	if pass == "" || len(pass) == 64 {
		return pass
	}
	k, err := pbkdf2.Key(sha1.New, pass, []byte(ssid), 4096, 32)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(k)
}

const (
	testHash = "$y$j9T$Wz3XQ0Tq6P0Gm1b4Q2lX4.$3mYkA3Tn0hCwQ8tQFv9nZk3hGZ7mJqzR9c9nS3oT6m1"
	testKey1 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG9wZW5zc2gtdGVzdC1rZXktb25lLWZvci1oZWFkbm9kZQ alice@laptop"
	testKey2 = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTY= alice's other key"
)

// testLiteImages bakes each stock Lite image: the package goes in without
// iptables, the manifest matches Imager's format with the image's
// init_format, and the first-boot options land where that format reads
// them.
func testLiteImages(t *testing.T, env []string, debs map[string]string) {
	buildSh := filepath.Join(repo(t), "build.sh")
	for _, c := range []struct {
		img    liteImage
		format string
		fb     firstBoot
	}{
		{liteImage{"armhf", "bookworm", false, false}, "systemd", firstBoot{"headnode1", "alice", testHash, []string{testKey1, testKey2}, `Lab "west" wing's`, "correct horse battery", "GB"}},
		// Keys only: no userconf.txt, the first user renamed by firstrun.sh.
		{liteImage{"arm64", "bookworm", false, false}, "systemd", firstBoot{hostname: "cluster-head", user: "bob", keys: []string{testKey1}}},
		{liteImage{"armhf", "trixie", true, false}, "cloudinit-rpi", firstBoot{"headnode1", "alice", testHash, []string{testKey1, testKey2}, `Lab "west" wing's`, "correct horse battery", "GB"}},
		// An open network, keys only.
		{liteImage{"arm64", "trixie", true, false}, "cloudinit-rpi", firstBoot{user: "bob", keys: []string{testKey2}, ssid: "cafe", country: "DE"}},
		// The first trixie release had no cloud-init yet; no options: the
		// boot partition is left as it was but for config.txt.
		{liteImage{"arm64", "trixie", false, false}, "systemd", firstBoot{}},
	} {
		name := c.img.codename + "-" + c.img.arch
		if c.img.codename == "trixie" && !c.img.cloudInit {
			name += "-first-release"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			tree := filepath.Join(dir, "tree")
			fakeLite(t, tree, c.img)
			in := makeImageFiles(t, dir, tree, liteBoot())
			out := filepath.Join(dir, "headnode.img")
			t.Cleanup(func() { noLeftovers(t, in, out) })
			args := append(append([]string{"image", "--deb", debs[c.img.arch]}, c.fb.args(t)...), in, out)
			_, stderr, err := runErr(env, buildSh, args...)
			if err != nil {
				t.Fatalf("build.sh image: %v\n%s", err, stderr)
			}
			t.Logf("build.sh image:\n%s", stderr)
			noLeftovers(t, in, out)
			root, cfg := readImage(t, out)

			if got := dpkgStatus(t, root); got != "install ok installed" {
				t.Errorf("dpkg status of headnode: %q", got)
			}
			if out, _, _ := runErr(nil, "dpkg-query", "--admindir="+filepath.Join(root, "var/lib/dpkg"), "-W", "-f=${Status}", "man-db"); out != "install ok triggers-pending" {
				t.Errorf("dpkg status of man-db: %q, want its trigger left pending", out)
			}
			if target, err := os.Readlink(filepath.Join(root, "etc/systemd/system/multi-user.target.wants/headnode.service")); err != nil || target != "/usr/lib/systemd/system/headnode.service" {
				t.Errorf("headnode.service is not enabled: %q %v", target, err)
			}
			for _, p := range []string{"usr/sbin/iptables", "usr/sbin/nft"} {
				if _, err := os.Lstat(filepath.Join(root, p)); err == nil {
					t.Errorf("%s appeared in the image", p)
				}
			}
			if l := i2cLines(cfg); len(l) != 1 || l[0] != "dtparam=i2c_arm=on" {
				t.Errorf("config.txt I2C lines %q, want one dtparam=i2c_arm=on", l)
			}
			checkManifest(t, filepath.Join(dir, "headnode.rpi-imager-manifest"), out, c.img.arch, c.format, c.img.codename)
			check := func(img string) {
				t.Helper()
				switch {
				case c.fb.hostname == "" && c.fb.user == "" && c.fb.ssid == "":
					checkNoFirstBoot(t, img)
				case c.format == "systemd":
					checkFirstBootSystemd(t, img, c.fb)
				default:
					checkFirstBootCloudInit(t, img, c.fb)
				}
			}
			check(out)
			// Baking the baked image again: the package is reinstalled and
			// the kernel command line has the first boot's arguments once.
			if c.img.arch == "armhf" {
				again := filepath.Join(dir, "again.img")
				args := append(append([]string{"image", "--deb", debs[c.img.arch]}, c.fb.args(t)...), out, again)
				if _, stderr, err := runErr(env, buildSh, args...); err != nil {
					t.Fatalf("build.sh image on its own output: %v\n%s", err, stderr)
				}
				noLeftovers(t, out, again)
				check(again)
			}
		})
	}
}

// testPreseedImage: an image with rpi-preseed is listed in the manifest
// with that format (Imager writes its rpi-preseed.toml); build.sh does not
// write that format, so it refuses first-boot options there.
func testPreseedImage(t *testing.T, env []string, debs map[string]string) {
	buildSh := filepath.Join(repo(t), "build.sh")
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	fakeLite(t, tree, liteImage{"arm64", "trixie", true, true})
	in := makeImageFiles(t, dir, tree, liteBoot())
	out := filepath.Join(dir, "headnode.img")
	t.Cleanup(func() { noLeftovers(t, in, out) })
	_, stderr, err := runErr(env, buildSh, "image", "--deb", debs["arm64"], "--hostname", "head", in, out)
	if err == nil || !strings.Contains(stderr, "rpi-preseed.toml, which build.sh does not write") {
		t.Errorf("build.sh image --hostname on an rpi-preseed image: %v\n%s", err, stderr)
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("%s left after the refusal", out)
	}
	noLeftovers(t, in, out)
	if _, stderr, err := runErr(env, buildSh, "image", "--deb", debs["arm64"], in, out); err != nil {
		t.Fatalf("build.sh image: %v\n%s", err, stderr)
	}
	noLeftovers(t, in, out)
	checkManifest(t, filepath.Join(dir, "headnode.rpi-imager-manifest"), out, "arm64", "rpi-preseed", "trixie")
	checkNoFirstBoot(t, out)
}

// checkNoFirstBoot: without options nothing is added to the boot partition.
func checkNoFirstBoot(t *testing.T, img string) {
	t.Helper()
	for _, f := range []string{"ssh", "userconf.txt", "firstrun.sh", "user-data", "meta-data", "network-config"} {
		if _, ok := bootFile(t, img, f); ok {
			t.Errorf("boot partition has %s without first-boot options", f)
		}
	}
	if got, _ := bootFile(t, img, "cmdline.txt"); got != liteCmdline+"\n" {
		t.Errorf("cmdline.txt changed: %q", got)
	}
}

// checkFirstBootSystemd checks bookworm's files: ssh, userconf.txt and
// firstrun.sh with the kernel command line that runs it once. firstrun.sh
// is run, with recording stand-ins for the image's imager_custom and
// userconf and a scratch directory for /boot: that shows the commands and
// their arguments exactly as the Pi's shell would pass them.
func checkFirstBootSystemd(t *testing.T, img string, fb firstBoot) {
	t.Helper()
	if got, ok := bootFile(t, img, "ssh"); !ok || got != "" {
		t.Errorf("boot partition: ssh %v %q, want an empty file (sshswitch turns SSH on)", ok, got)
	}
	userconf, ok := bootFile(t, img, "userconf.txt")
	switch {
	case fb.hash != "" && userconf != fb.user+":"+fb.hash+"\n":
		t.Errorf("userconf.txt %q, want %q", userconf, fb.user+":"+fb.hash+"\n")
	case fb.hash == "" && ok:
		t.Errorf("userconf.txt %q written without a password hash", userconf)
	}
	for _, f := range []string{"user-data", "meta-data", "network-config"} {
		if _, ok := bootFile(t, img, f); ok {
			t.Errorf("a systemd-format image got cloud-init's %s", f)
		}
	}
	cmdline, _ := bootFile(t, img, "cmdline.txt")
	want := liteCmdline
	if fb.country != "" {
		want += " cfg80211.ieee80211_regdom=" + fb.country
	}
	want += " systemd.run=/boot/firstrun.sh systemd.run_success_action=reboot systemd.unit=kernel-command-line.target\n"
	if cmdline != want {
		t.Errorf("cmdline.txt:\n%q\nwant:\n%q", cmdline, want)
	}
	script, ok := bootFile(t, img, "firstrun.sh")
	if !ok {
		t.Fatal("boot partition has no firstrun.sh")
	}
	// raspberrypi-sys-mods' imager_fixup (initramfs) cuts firstrun.sh at
	// the line removing it and appends its own cleanup for /boot/firmware.
	if !regexp.MustCompile(`(?m)^rm -f /boot/firstrun\.sh\n.*\nexit 0\n\z`).MatchString(script) {
		t.Errorf("firstrun.sh does not end with Imager's cleanup that imager_fixup expects:\n%s", script)
	}

	dir := t.TempDir()
	fakes := filepath.Join(dir, "fakes")
	boot := filepath.Join(dir, "boot")
	log := filepath.Join(dir, "log")
	for _, n := range []string{"imager_custom", "userconf"} {
		putFile(t, filepath.Join(fakes, n), "#!/bin/sh\n{ printf '%s' "+n+"; for a; do printf ' [%s]' \"$a\"; done; echo; } >>"+log+"\n")
		if err := os.Chmod(filepath.Join(fakes, n), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	putFile(t, filepath.Join(boot, "cmdline.txt"), cmdline)
	local := strings.NewReplacer("/usr/lib/raspberrypi-sys-mods/imager_custom", filepath.Join(fakes, "imager_custom"),
		"/usr/lib/userconf-pi/userconf", filepath.Join(fakes, "userconf"), "/boot/", boot+"/").Replace(script)
	putFile(t, filepath.Join(boot, "firstrun.sh"), local)
	if _, stderr, err := runErr(nil, "sh", filepath.Join(boot, "firstrun.sh")); err != nil {
		t.Fatalf("firstrun.sh: %v\n%s", err, stderr)
	}
	var calls []string
	if fb.hostname != "" {
		calls = append(calls, "imager_custom [set_hostname] ["+fb.hostname+"]")
	}
	if len(fb.keys) > 0 {
		c := "imager_custom [enable_ssh]"
		if fb.hash == "" {
			c += " [-k]" // keys only: no password logins
		}
		for _, k := range fb.keys {
			c += " [" + k + "]"
		}
		calls = append(calls, c)
		if fb.hash == "" {
			calls = append(calls, "userconf ["+fb.user+"] []")
		}
	}
	if fb.ssid != "" {
		calls = append(calls, "imager_custom [set_wlan] ["+fb.ssid+"] ["+wpaPSK(t, fb.psk, fb.ssid)+"] ["+fb.country+"]")
	}
	got, _ := os.ReadFile(log)
	if strings.TrimSpace(string(got)) != strings.Join(calls, "\n") {
		t.Errorf("firstrun.sh ran:\n%s\nwant:\n%s", got, strings.Join(calls, "\n"))
	}
	if _, err := os.Stat(filepath.Join(boot, "firstrun.sh")); err == nil {
		t.Error("firstrun.sh did not remove itself")
	}
	after, _ := os.ReadFile(filepath.Join(boot, "cmdline.txt"))
	wantAfter := liteCmdline
	if fb.country != "" {
		wantAfter += " cfg80211.ieee80211_regdom=" + fb.country
	}
	if string(after) != wantAfter+"\n" {
		t.Errorf("cmdline.txt after firstrun.sh: %q, want %q", after, wantAfter+"\n")
	}
}

// yamlJSON parses YAML with Debian's python3-yaml (the parser family
// cloud-init itself uses) and returns it as JSON values.
func yamlJSON(t *testing.T, doc string) any {
	t.Helper()
	need(t, false, "/usr/bin/python3")
	out, stderr, err := command(nil, doc, "/usr/bin/python3", "-c", "import json, sys, yaml; print(json.dumps(yaml.safe_load(sys.stdin)))")
	if err != nil {
		prerequisiteMissing(t, fmt.Sprintf("python3-yaml cannot parse: %v %s", err, stderr))
		return nil
	}
	var v any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// checkFirstBootCloudInit checks the NoCloud seed on the boot partition:
// meta-data's instance ID also on the kernel command line, user-data and
// network-config parsed as YAML and compared as data.
func checkFirstBootCloudInit(t *testing.T, img string, fb firstBoot) {
	t.Helper()
	for _, f := range []string{"ssh", "userconf.txt", "firstrun.sh"} {
		if _, ok := bootFile(t, img, f); ok {
			t.Errorf("a cloud-init image got %s", f)
		}
	}
	meta, _ := bootFile(t, img, "meta-data")
	m := regexp.MustCompile(`^instance-id: (headnode-[0-9a-z-]+)\n$`).FindStringSubmatch(meta)
	if m == nil {
		t.Fatalf("meta-data %q, want one instance-id line", meta)
	}
	cmdline, _ := bootFile(t, img, "cmdline.txt")
	want := liteCmdline
	if fb.country != "" {
		want += " cfg80211.ieee80211_regdom=" + fb.country
	}
	want += " ds=nocloud;i=" + m[1] + "\n"
	if cmdline != want {
		t.Errorf("cmdline.txt:\n%q\nwant:\n%q", cmdline, want)
	}

	userData, _ := bootFile(t, img, "user-data")
	if !strings.HasPrefix(userData, "#cloud-config\n") {
		t.Errorf("user-data does not start with #cloud-config:\n%s", userData)
	}
	wantUser := map[string]any{"manage_resolv_conf": false}
	if fb.hostname != "" {
		wantUser["hostname"], wantUser["manage_etc_hosts"] = fb.hostname, true
	}
	user := map[string]any{"name": fb.user, "shell": "/bin/bash", "lock_passwd": fb.hash == ""}
	if fb.hash != "" {
		user["passwd"], user["sudo"] = fb.hash, nil
	}
	var keys []any
	for _, k := range fb.keys {
		keys = append(keys, k)
	}
	user["ssh_authorized_keys"] = keys
	wantUser["user"], wantUser["ssh_pwauth"] = user, fb.hash != ""
	wantUser["runcmd"] = []any{[]any{"systemctl", "enable", "--now", "ssh"}}
	if got := yamlJSON(t, userData); !reflect.DeepEqual(got, any(wantUser)) {
		t.Errorf("user-data:\n%s\nparsed: %v\nwant: %v", userData, got, wantUser)
	}

	netcfg, ok := bootFile(t, img, "network-config")
	if fb.ssid == "" {
		if ok {
			t.Errorf("network-config without --wifi-ssid:\n%s", netcfg)
		}
		return
	}
	ap := map[string]any{"auth": map[string]any{"key-management": "none"}}
	if fb.psk != "" {
		ap = map[string]any{"password": wpaPSK(t, fb.psk, fb.ssid)}
	}
	wantNet := map[string]any{"network": map[string]any{
		"version":   2.0,
		"ethernets": map[string]any{"eth0": map[string]any{"dhcp4": true, "optional": true}},
		"wifis": map[string]any{"wlan0": map[string]any{"dhcp4": true, "optional": true, "regulatory-domain": fb.country,
			"access-points": map[string]any{fb.ssid: ap}}},
	}}
	if got := yamlJSON(t, netcfg); !reflect.DeepEqual(got, any(wantNet)) {
		t.Errorf("network-config:\n%s\nparsed: %v\nwant: %v", netcfg, got, wantNet)
	}
}

// The manifest format, from raspberrypi/rpi-imager at commit
// 72ad1179ff46a8355291898416fe65cbe6bbd450: doc/local_json/README.md (a
// local manifest is a repository file, imager.devices and os_list),
// doc/json-schema/os-list-schema.json (required fields, their types, the
// init_format and capability values) and doc/os_customisation_formats.md
// (which init_format Raspberry Pi OS releases take).
var (
	manifestOSRequired = []string{"name", "description", "icon", "url", "extract_size", "extract_sha256", "image_download_size", "release_date", "devices"}
	manifestOSStrings  = []string{"name", "description", "icon", "url", "extract_sha256", "image_download_sha256", "release_date", "init_format", "architecture", "website", "bmap_url", "tooltip"}
	manifestOSInts     = []string{"extract_size", "image_download_size"}
	manifestImagerKeys = []string{"latest_version", "url", "default_os", "embedded_default_os", "embedded_default_destination", "devices", "refresh_interval_minutes", "refresh_jitter_minutes"} // additionalProperties: false
	initFormats        = []string{"", "systemd", "cloudinit", "cloudinit-rpi", "rpi-preseed", "none"}
	osCapabilities     = []string{"rpi_connect", "secure_boot", "passwordless_sudo", "i2c", "spi", "onewire", "serial", "usb_otg"}
	deviceCapabilities = []string{"i2c", "spi", "onewire", "serial", "serial_on_console_only", "usb_otg"}
	architectures      = []string{"armel", "armhf", "armv8"}
	// The device tags of Imager's online manifest for the Pis each
	// Raspberry Pi OS architecture runs on.
	deviceTags = map[string][]string{
		"armhf": {"pi5-32bit", "pi4-32bit", "pi3-32bit", "pi2-32bit", "pi1-32bit"},
		"arm64": {"pi5-64bit", "pi4-64bit", "pi3-64bit"},
	}
)

// checkManifest checks the manifest beside img against Imager's documented
// format and against the image: size, SHA-256, file URL, init_format, the
// architecture's devices and the I2C capability on both sides.
func checkManifest(t *testing.T, file, img, arch, format, codename string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("no manifest beside the image: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	var top map[string]any
	if err := dec.Decode(&top); err != nil {
		t.Fatalf("manifest is not JSON: %v\n%s", err, b)
	}
	for k := range top {
		if k != "imager" && k != "os_list" {
			t.Errorf("manifest: unknown top-level key %q", k)
		}
	}
	imager, _ := top["imager"].(map[string]any)
	for k := range imager {
		if !slices.Contains(manifestImagerKeys, k) {
			t.Errorf("manifest: imager.%s is not in the schema (additionalProperties: false)", k)
		}
	}
	devices, _ := imager["devices"].([]any)
	if len(devices) == 0 {
		t.Error("manifest: no imager.devices: Imager lists no device to choose")
	}
	var tags []string
	for i, d := range devices {
		dev, _ := d.(map[string]any)
		for _, k := range []string{"name", "description"} {
			if s, ok := dev[k].(string); !ok || s == "" {
				t.Errorf("manifest: imager.devices[%d].%s: %v, want a string", i, k, dev[k])
			}
		}
		tt, ok := dev["tags"].([]any)
		if !ok || len(tt) == 0 {
			t.Errorf("manifest: imager.devices[%d].tags: %v, want an array of tags", i, dev["tags"])
		}
		for _, tag := range tt {
			s, _ := tag.(string)
			tags = append(tags, s)
		}
		caps, _ := dev["capabilities"].([]any)
		if !slices.Contains(caps, any("i2c")) {
			t.Errorf("manifest: imager.devices[%d] lacks the i2c capability: %v", i, caps)
		}
		for _, c := range caps {
			if s, _ := c.(string); !slices.Contains(deviceCapabilities, s) {
				t.Errorf("manifest: imager.devices[%d]: capability %v is not a device capability", i, c)
			}
		}
	}
	list, _ := top["os_list"].([]any)
	if len(list) != 1 {
		t.Fatalf("manifest: os_list has %d entries, want 1", len(list))
	}
	osEntry, _ := list[0].(map[string]any)
	for _, k := range manifestOSRequired {
		if _, ok := osEntry[k]; !ok {
			t.Errorf("manifest: os_list[0] lacks the required %q", k)
		}
	}
	for _, k := range manifestOSStrings {
		if v, ok := osEntry[k]; ok {
			if _, isString := v.(string); !isString {
				t.Errorf("manifest: os_list[0].%s: %v, want a string", k, v)
			}
		}
	}
	for _, k := range manifestOSInts {
		if n, ok := osEntry[k].(json.Number); !ok || !regexp.MustCompile(`^[0-9]+$`).MatchString(n.String()) {
			t.Errorf("manifest: os_list[0].%s: %v, want an integer", k, osEntry[k])
		}
	}
	st, err := os.Stat(img)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	u := url.URL{Scheme: "file", Path: img}
	want := map[string]any{
		"extract_size": json.Number(itoa(st.Size())), "image_download_size": json.Number(itoa(st.Size())),
		"extract_sha256": hex.EncodeToString(sum[:]), "image_download_sha256": hex.EncodeToString(sum[:]),
		"url": u.String(), "init_format": format, "release_date": "2025-11-24",
		"architecture": map[string]string{"armhf": "armhf", "arm64": "armv8"}[arch],
	}
	for k, v := range want {
		if osEntry[k] != v {
			t.Errorf("manifest: os_list[0].%s = %v, want %v", k, osEntry[k], v)
		}
	}
	if !slices.Contains(initFormats, osEntry["init_format"].(string)) || !slices.Contains(architectures, osEntry["architecture"].(string)) {
		t.Errorf("manifest: init_format %v or architecture %v is not a documented value", osEntry["init_format"], osEntry["architecture"])
	}
	if name, _ := osEntry["name"].(string); !strings.Contains(name, "headnode") || !strings.Contains(name, codename) {
		t.Errorf("manifest: name %q does not say headnode and %s", name, codename)
	}
	var osTags []string
	for _, d := range osEntry["devices"].([]any) {
		s, _ := d.(string)
		osTags = append(osTags, s)
		if !slices.Contains(tags, s) {
			t.Errorf("manifest: os_list[0].devices has %q, which no imager.devices entry has: Imager would filter the image out", s)
		}
	}
	if !slices.Equal(osTags, deviceTags[arch]) {
		t.Errorf("manifest: os_list[0].devices %q, want %q", osTags, deviceTags[arch])
	}
	caps, _ := osEntry["capabilities"].([]any)
	if !slices.Contains(caps, any("i2c")) {
		t.Errorf("manifest: os_list[0].capabilities %v lacks i2c", caps)
	}
	for _, c := range caps {
		if s, _ := c.(string); !slices.Contains(osCapabilities, s) {
			t.Errorf("manifest: os_list[0]: capability %v is not an OS capability", c)
		}
	}
}

// TestImageFirstBootBadOptions: a bad first-boot option is one line naming
// it, exit 1, and nothing written; checked before the image is read, so it
// needs neither root nor an image.
func TestImageFirstBootBadOptions(t *testing.T) {
	buildSh := filepath.Join(repo(t), "build.sh")
	dir := t.TempDir()
	in := filepath.Join(dir, "in.img")
	putFile(t, in, "not read")
	out := filepath.Join(dir, "out.img")
	badKey := filepath.Join(dir, "bad.pub")
	putFile(t, badKey, "ssh-ed25519 AAAA ok\nnot a key\n")
	ok := []string{"--user", "alice", "--password-hash", testHash}
	for _, c := range []struct {
		args []string
		want string // in the one line
	}{
		{[]string{"--hostname", "-bad-"}, `--hostname "-bad-" is not a host name`},
		{[]string{"--hostname", "has space"}, `--hostname "has space"`},
		{[]string{"--hostname", strings.Repeat("a", 64)}, "1 to 63 letters"},
		{[]string{"--user", "Alice", "--password-hash", testHash}, `--user "Alice" is not a user name`},
		{[]string{"--user", "root", "--password-hash", testHash}, `--user "root"`},
		{[]string{"--user", "alice"}, "needs --password-hash HASH or --ssh-key KEY"},
		{[]string{"--password-hash", testHash}, "--user NAME, which is missing"},
		{[]string{"--user", "alice", "--password-hash", "hunter2"}, `--password-hash "hunter2" is not a crypt(5) password hash`},
		{[]string{"--user", "alice", "--password-hash", "$6$salt$a:b"}, "is not a crypt(5) password hash"},
		{[]string{"--user", "alice", "--ssh-key", "ssh-ed25519 !!!"}, `"ssh-ed25519 !!!" is not an OpenSSH public key line`},
		{[]string{"--user", "alice", "--ssh-key", badKey}, `"not a key" is not an OpenSSH public key line`},
		{[]string{"--user", "alice", "--ssh-key", filepath.Join(dir, "missing.pub")}, "is neither an OpenSSH public key nor a file"},
		{append(ok, "--wifi-ssid", "lab"), "--wifi-ssid needs --wifi-country CC"},
		{append(ok, "--wifi-ssid", "lab", "--wifi-country", "gb"), `--wifi-country "gb" is not a two-letter`},
		{append(ok, "--wifi-ssid", "lab", "--wifi-country", "GB", "--wifi-psk", "short"), "--wifi-psk is not a WPA passphrase"},
		{append(ok, "--wifi-ssid", strings.Repeat("x", 33), "--wifi-country", "GB"), "is not a Wi-Fi network name"},
		// 32 bytes is the limit, not 32 characters.
		{append(ok, "--wifi-ssid", strings.Repeat("é", 17), "--wifi-country", "GB"), "is not a Wi-Fi network name: 1 to 32"},
		{append(ok, "--wifi-ssid", "lab", "--wifi-country", "GB", "--wifi-psk", "pässwörter"), "printable ASCII"},
		{append(ok, "--wifi-psk", "long enough"), "--wifi-ssid SSID, which is missing"},
		{[]string{"--hostname="}, "--hostname needs a non-empty value"},
		{[]string{"--wifi"}, `unknown option "--wifi"`},
	} {
		args := append(append([]string{"image"}, c.args...), in, out)
		stdout, stderr, err := runErr(nil, buildSh, args...)
		lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
		if err == nil || exitCode(err) != 1 || len(lines) != 1 || !strings.Contains(lines[0], c.want) || stdout != "" {
			t.Errorf("build.sh %q: %v, stdout %q, stderr:\n%s\nwant exit 1 and one line with %q", args, err, stdout, stderr, c.want)
		}
		// The secret is not repeated back.
		if slices.Contains(c.args, "short") && strings.Contains(stderr, "short") {
			t.Errorf("the Wi-Fi passphrase was printed: %s", stderr)
		}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if n := e.Name(); n != "in.img" && n != "bad.pub" {
				t.Errorf("build.sh %q left %s", args, n)
			}
		}
	}
}

// putFile writes a file, making its directory.
func putFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, content)
}
