#!/usr/bin/env bash
# headnode build script.
#
#   ./build.sh            build dist/ binaries: host, linux/arm (GOARM=6, every Pi), linux/arm64
#   ./build.sh test       gofmt, go vet, staticcheck, build, run the ARM binaries under
#                         qemu, run every test, again under -race, and a 3-minute soak
#                         (needs root: the kernel tests use network namespaces)
#   ./build.sh sim        build and run `headnode sim` (needs root)
#   ./build.sh deps       install the Debian packages the tests need (root)
#   ./build.sh footprint  the idle daemon's CPU and memory over 60 s, emulated hardware (root)
#   ./build.sh bench      every figure of issue 13 beside the incumbents, measured in the
#                         same run: this tree against BENCH_BASE (default main), python3,
#                         the old NAT path (root; BENCH_FOR=30s per CPU figure)
#   ./build.sh soak [DURATION [nft|legacy]]  the daemon under injected faults (default 30m, nft; root)
#   ./build.sh deb        Debian packages dist/headnode_<version>_{armhf,arm64}.deb
#   ./build.sh image [--deb FILE] IN.img[.xz] OUT.img
#                         bake the package into a Raspberry Pi OS image (root)
#
# VERSION overrides the version stamped into the binaries and packages
# (default: git describe). DIST overrides the output directory (default: dist).
set -euo pipefail
cd "$(dirname "$0")"

# sudo resets PATH; Go's standard install location is not on root's.
command -v go >/dev/null 2>&1 || PATH=$PATH:/usr/local/go/bin
# A user's PATH lacks the sbin directories (losetup, mkfs.*, iptables-nft).
PATH=$PATH:/usr/sbin:/sbin

VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
DIST=${DIST:-dist}
# Only building needs Go: `image --deb FILE` and `deps` work without it.
HOST_OS="" HOST_ARCH=""
if command -v go >/dev/null 2>&1; then
	HOST_OS=$(go env GOHOSTOS)
	HOST_ARCH=$(go env GOHOSTARCH)
fi

# Debian packages the tests use, by the command that shows they are there.
declare -A PACKAGES=(
	[iptables-nft]=iptables
	[ip]=iproute2
	[qemu-arm]=qemu-user
	[qemu-aarch64]=qemu-user
	[unshare]=util-linux
	[promtool]=prometheus
	[prometheus]=prometheus
	[prometheus-node-exporter]=prometheus-node-exporter
	[snmpd]=snmpd
	[snmpwalk]=snmp
	[snmptranslate]=snmp
	[smilint]=smitools
	[chromium]=chromium
	[dhclient]=isc-dhcp-client
	[udhcpc]=udhcpc
	[busybox]=busybox
	[losetup]=mount
	[partx]=util-linux
	[dpkg-deb]=dpkg
	[systemd-analyze]=systemd
	[systemd-nspawn]=systemd-container
	[nsenter]=util-linux
	[mtype]=mtools
	[mcopy]=mtools
	[sfdisk]=fdisk
	[mkfs.vfat]=dosfstools
	[mkfs.ext4]=e2fsprogs
	[debugfs]=e2fsprogs
	[hyperfine]=hyperfine
	[python3]=python3
)

# Debian packages the tests use that bring no command, by a file they
# install (a glob). erlang-snmp: the base MIB modules (SNMPv2-SMI, -TC,
# -CONF) that smilint and snmptranslate check HEADNODE-MIB against.
declare -A PACKAGE_FILES=(
	['/usr/lib/erlang/lib/snmp-*/mibs/SNMPv2-SMI.mib']=erlang-snmp
)

die() { echo "build.sh: $*" >&2; exit 1; }

deps() {
	local missing=()
	for cmd in "${!PACKAGES[@]}"; do
		command -v "$cmd" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin:/sbin command -v "$cmd" >/dev/null 2>&1 || missing+=("${PACKAGES[$cmd]}")
	done
	local pattern
	for pattern in "${!PACKAGE_FILES[@]}"; do
		# shellcheck disable=SC2086 # the pattern is meant to be expanded
		compgen -G $pattern >/dev/null || missing+=("${PACKAGE_FILES[$pattern]}")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
	if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
		echo "build.sh: installing missing Debian packages: ${missing[*]}" >&2
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
	else
		die "missing Debian packages: ${missing[*]} (sudo apt-get install ${missing[*]})"
	fi
}

# need CMD...: fail naming the Debian packages of the missing commands.
need() {
	local missing=() cmd
	for cmd; do
		command -v "$cmd" >/dev/null 2>&1 || missing+=("${PACKAGES[$cmd]:-$cmd}")
	done
	[ ${#missing[@]} -eq 0 ] || die "missing commands; install them with: sudo apt-get install $(printf '%s\n' "${missing[@]}" | sort -u | xargs)"
}

# build GOOS GOARCH GOARM OUTPUT
build_one() {
	command -v go >/dev/null 2>&1 || die "Go is not installed: get Go 1.26 or newer from https://go.dev/dl/"
	echo "build.sh: $DIST/$4 ($1/$2${3:+ GOARM=$3}, version $VERSION)" >&2
	GOOS=$1 GOARCH=$2 GOARM=$3 CGO_ENABLED=0 \
		go build -trimpath -ldflags "-s -w -X main.version=$VERSION" -o "$DIST/$4" ./cmd/headnode
}

build() {
	mkdir -p "$DIST"
	build_one "$HOST_OS" "$HOST_ARCH" "" "headnode-$HOST_OS-$HOST_ARCH"
	build_one linux arm 6 headnode-linux-armv6
	build_one linux arm64 "" headnode-linux-arm64
}

# check_arm proves the ARM binaries start on the CPUs they are for: an
# ARM1176 (Pi 1 and Pi Zero, ARMv6) and a 64-bit ARM.
check_arm() {
	local out
	out=$(qemu-arm -cpu arm1176 "$DIST"/headnode-linux-armv6 version) || die "armv6 binary failed under qemu-arm -cpu arm1176"
	echo "build.sh: qemu-arm -cpu arm1176: $out" >&2
	[[ $out == "headnode $VERSION "*"linux/arm)" ]] || die "armv6 binary printed: $out"
	out=$(qemu-aarch64 "$DIST"/headnode-linux-arm64 version) || die "arm64 binary failed under qemu-aarch64"
	echo "build.sh: qemu-aarch64: $out" >&2
	[[ $out == "headnode $VERSION "*"linux/arm64)" ]] || die "arm64 binary printed: $out"
}

# deb_version prints VERSION as a Debian version: git describe's
# "v1.2.0-3-gabc1234-dirty" becomes "1.2.0+3+gabc1234+dirty" (after 1.2.0,
# before 1.2.1); a version not starting with a digit (an untagged tree's
# commit hash, "dev") gets "0~" in front, so any tagged release sorts after it.
deb_version() {
	local v=${VERSION#v}
	v=${v//-/+}
	v=${v//[^A-Za-z0-9.+~]/.}
	[[ $v =~ ^[0-9] ]] || v="0~$v"
	printf '%s\n' "$v"
}

# deb_one ARCH: build $DIST/headnode_<version>_ARCH.deb, ARCH armhf (the
# GOARM=6 binary: Raspberry Pi OS armhf is ARMv6, every Pi) or arm64.
deb_one() {
	local arch=$1 bin stage out maint
	maint="${DEBFULLNAME:-headnode developers} <${DEBEMAIL:-headnode@invalid}>"
	# Dates in the package (files, changelog) are the commit's, so building
	# the same commit again gives the same package.
	export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
	case $arch in
		armhf) bin=headnode-linux-armv6; build_one linux arm 6 "$bin" ;;
		arm64) bin=headnode-linux-arm64; build_one linux arm64 "" "$bin" ;;
		*) die "no package for architecture \"$arch\": use armhf or arm64" ;;
	esac
	out="$DIST/headnode_$(deb_version)_$arch.deb"
	stage="$DIST/deb-$arch"
	rm -rf "$stage"
	# Modes come from the tree (dpkg-deb keeps them); owners are root.
	umask 022
	install -D -m 0755 "$DIST/$bin" "$stage/usr/bin/headnode"
	# Run as clusterctrl, headnode is the official tool's command line.
	mkdir -p "$stage/usr/sbin"
	ln -s ../bin/headnode "$stage/usr/sbin/clusterctrl"
	install -D -m 0644 systemd/headnode.service "$stage/usr/lib/systemd/system/headnode.service"
	install -D -m 0644 systemd/sysctl.d/60-headnode.conf "$stage/usr/lib/sysctl.d/60-headnode.conf"
	install -D -m 0644 systemd/modules-load.d/headnode.conf "$stage/usr/lib/modules-load.d/headnode.conf"
	install -D -m 0644 systemd/udev/60-headnode-blinkstick.rules "$stage/usr/lib/udev/rules.d/60-headnode-blinkstick.rules"
	install -D -m 0644 systemd/NetworkManager/headnode.conf "$stage/usr/lib/NetworkManager/conf.d/headnode.conf"
	install -D -m 0644 systemd/tmpfiles.d/headnode.conf "$stage/usr/lib/tmpfiles.d/headnode.conf"
	install -D -m 0644 systemd/sysusers.d/headnode.conf "$stage/usr/lib/sysusers.d/headnode.conf"
	# What `headnode config default` prints (the binary embeds this file).
	install -D -m 0644 cmd/headnode/internal/config/default.toml "$stage/etc/headnode/config.toml"
	install -D -m 0644 README.md "$stage/usr/share/doc/headnode/README.md"
	# Monitoring: Prometheus alert rules and an example configuration, the
	# Grafana dashboard, the MIB that `headnode snmp` serves.
	install -D -m 0644 cmd/headnode/internal/web/prometheus/alerts.yml "$stage/usr/share/headnode/prometheus/alerts.yml"
	install -D -m 0644 cmd/headnode/internal/web/prometheus/prometheus.yml "$stage/usr/share/headnode/prometheus/prometheus.yml"
	install -D -m 0644 cmd/headnode/internal/web/grafana/headnode-dashboard.json "$stage/usr/share/headnode/grafana/headnode-dashboard.json"
	install -D -m 0644 cmd/headnode/internal/snmp/HEADNODE-MIB.txt "$stage/usr/share/headnode/mibs/HEADNODE-MIB.txt"
	install -D -m 0644 LICENSE "$stage/usr/share/doc/headnode/copyright"
	# Debian policy wants a changelog: this one names the version's source.
	printf 'headnode (%s) unstable; urgency=medium\n\n  * Built from headnode %s.\n\n -- %s  %s\n' \
		"$(deb_version)" "$VERSION" "$maint" "$(date -R -d "@$SOURCE_DATE_EPOCH")" |
		gzip -9n >"$stage/usr/share/doc/headnode/changelog.gz"
	install -D -m 0755 -t "$stage/DEBIAN" systemd/debian/preinst systemd/debian/postinst systemd/debian/prerm systemd/debian/postrm
	# dpkg asks before replacing an edited conffile, and keeps it on remove.
	echo /etc/headnode/config.toml >"$stage/DEBIAN/conffiles"
	cat >"$stage/DEBIAN/control" <<-CONTROL
		Package: headnode
		Version: $(deb_version)
		Architecture: $arch
		Maintainer: $maint
		Installed-Size: $(du -sk --apparent-size --exclude=DEBIAN "$stage" | cut -f1)
		Suggests: nftables, iptables
		Section: net
		Priority: optional
		Description: head node daemon for Raspberry Pi clusters
		 NAT from the cluster network to the uplink (kept in place while
		 addresses change and other programs rewrite the firewall), node power
		 for ClusterHAT and ClusterCTRL boards, the uplink address on an I2C
		 character LCD and the cluster's health on a BlinkStick LED.
		 .
		 Commands: headnode status, headnode on/off pN, headnode nat status.
	CONTROL
	dpkg-deb --root-owner-group -Zxz --build "$stage" "$out" >/dev/null
	rm -rf "$stage"
	echo "build.sh: $out" >&2
}

deb() {
	need dpkg-deb
	mkdir -p "$DIST"
	deb_one armhf
	deb_one arm64
}

# elf_arch FILE prints the Debian architecture of an ARM ELF executable
# from its header (e_machine at byte 18): 40 is ARM, 183 is AArch64.
elf_arch() {
	[ "$(head -c4 "$1" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ] || return 1
	case $(od -An -tu2 --endian=little -j18 -N2 "$1" | tr -d ' ') in
		40) echo armhf ;;
		183) echo arm64 ;;
		*) return 1 ;;
	esac
}

# partitions IMG prints "BOOT_START ROOT_START ROOT_SECTORS" (512-byte
# sectors): the first FAT and the first Linux partition. partx reads the
# table from the file, so the kernel need not scan partitions of a loop
# device (losetup -P), which not every kernel supports.
partitions() {
	partx --raw --noheadings -o NR,START,SECTORS,TYPE "$1" | awk '
		# MBR types FAT32 (LBA), FAT32, FAT16 (LBA); GPT basic data
		!boot && $4 ~ /^(0xc|0xb|0xe|ebd0a0a2-b9e5-4433-87c0-68b6b72699c7)$/ { boot = $2 }
		# MBR Linux; GPT Linux file system
		!root && $4 ~ /^(0x83|0fc63daf-8483-4772-8e79-3d69d8477de4)$/ { root = $2 " " $3 }
		END { if (boot && root) print boot, root; else exit 1 }'
}

# Cleanup for image, on every exit: unmount, detach, and delete an
# unfinished OUT so that nobody flashes a half-baked image.
IMG_OUT="" IMG_MNT="" IMG_LOOP="" IMG_TMP="" IMG_DONE=""
image_cleanup() {
	if [ -n "$IMG_TMP" ]; then rm -f "$IMG_TMP"; fi
	if [ -n "$IMG_MNT" ]; then
		if mountpoint -q "$IMG_MNT"; then umount "$IMG_MNT" || echo "build.sh: could not unmount $IMG_MNT" >&2; fi
		rmdir "$IMG_MNT" 2>/dev/null || true
	fi
	if [ -n "$IMG_LOOP" ]; then losetup -d "$IMG_LOOP" || echo "build.sh: could not detach $IMG_LOOP" >&2; fi
	if [ -n "$IMG_OUT" ] && [ -z "$IMG_DONE" ]; then rm -f "$IMG_OUT"; fi
}

# divert_official_clusterctrl ROOT: an official clusterctrl in the image
# (ClusterHAT images carry /usr/sbin/clusterctrl, not from a package) is
# moved to /usr/sbin/clusterctrl.official by a dpkg diversion for package
# headnode, which ships /usr/sbin/clusterctrl as a link to itself: the
# image's dpkg knows, and `apt remove headnode` on the Pi puts the official
# tool back (the package's postrm removes the diversion). The preinst
# makes the same diversion on a Pi with `apt install`; here it is made, and
# said, before the package goes in.
divert_official_clusterctrl() {
	local root=$1 f=/usr/sbin/clusterctrl
	if [ -L "$root$f" ] && [ "$(readlink "$root$f")" = ../bin/headnode ]; then
		return
	fi
	if [ -e "$root$f" ] || [ -L "$root$f" ]; then
		dpkg-divert --root="$root" --package headnode --divert "$f.official" --rename --add "$f" >/dev/null
		echo "build.sh: moved the official $f to $f.official (a dpkg diversion: \`apt remove headnode\` brings it back)" >&2
	fi
}

# image [--deb FILE] IN OUT: copy a Raspberry Pi OS image and bake headnode
# into the copy, offline (no chroot, no qemu, nothing runs from the image):
# the package is installed into its root file system with the host's dpkg,
# the unit enabled, and I2C turned on in config.txt.
image() {
	local deb="" in out arch boot_start root_start root_sectors i2c_re cfg avail need_kb
	while [ $# -gt 0 ]; do
		case $1 in
			--deb) [ $# -ge 2 ] || die "image: --deb needs a .deb file"; deb=$2; shift 2 ;;
			--deb=*) deb=${1#--deb=}; shift ;;
			-*) die "image: unknown option \"$1\": the only option is --deb FILE" ;;
			*) break ;;
		esac
	done
	[ $# -eq 2 ] || die "usage: build.sh image [--deb FILE] IN.img[.xz] OUT.img"
	in=$1 out=$2
	[ "$(id -u)" -eq 0 ] || die "image loop-mounts the image's root file system: sudo ./build.sh image $*"
	[ -f "$in" ] || die "image: \"$in\" is not a file; give a Raspberry Pi OS image (.img or .img.xz)"
	[ ! -e "$out" ] || die "image: \"$out\" already exists; remove it or choose another output name"
	[ -z "$deb" ] || [ -f "$deb" ] || die "image: --deb \"$deb\" is not a file"
	need losetup partx mount mountpoint unshare mtype mcopy dpkg dpkg-query dpkg-deb dpkg-divert systemctl
	[[ $in != *.xz ]] || need xz

	trap image_cleanup EXIT
	trap 'exit 130' INT TERM HUP
	IMG_OUT=$out
	echo "build.sh: copying $in to $out" >&2
	case $in in
		*.xz) xz -dc "$in" >"$out" ;;
		*) cp --sparse=always "$in" "$out" ;;
	esac
	read -r boot_start root_start root_sectors < <(partitions "$out") ||
		die "image: $in has no FAT boot partition and Linux root partition in its partition table: is it a Raspberry Pi OS image?"

	IMG_LOOP=$(losetup --find --show --offset $((root_start * 512)) --sizelimit $((root_sectors * 512)) "$out")
	IMG_MNT=$(mktemp -d /tmp/headnode-image.XXXXXX)
	mount "$IMG_LOOP" "$IMG_MNT"

	# The architecture of the image's own programs, not of its kernel (32-bit
	# Raspberry Pi OS boots a 64-bit kernel on a Pi 4).
	if [ ! -f "$IMG_MNT/usr/bin/dpkg" ] || [ -L "$IMG_MNT/usr/bin/dpkg" ]; then
		die "image: $in has no /usr/bin/dpkg: is it a Raspberry Pi OS image?"
	fi
	arch=$(elf_arch "$IMG_MNT/usr/bin/dpkg") ||
		die "image: $in is not an armhf or arm64 system (its /usr/bin/dpkg is not an ARM executable)"
	echo "build.sh: $in is Raspberry Pi OS $arch" >&2

	# The daemon runs iptables, and dpkg would refuse the Depends anyway.
	# Raspberry Pi OS Lite ships without it; installing it here would need
	# apt inside the image (a chroot with qemu and a network).
	if ! { [ -e "$IMG_MNT/usr/sbin/iptables" ] || [ -L "$IMG_MNT/usr/sbin/iptables" ]; } ||
		! dpkg-query --admindir="$IMG_MNT/var/lib/dpkg" -W -f='${db:Status-Status}\n' 'iptables:*' 2>/dev/null | grep -qx installed; then
		die "image: $in has no iptables, which headnode needs for NAT (Raspberry Pi OS Lite does not include it): use an image with iptables installed (such as a ClusterHAT CNAT image), or flash this one and run \`sudo apt install ./headnode_$(deb_version)_$arch.deb\` on the Pi, which installs iptables too"
	fi

	if [ -z "$deb" ]; then
		mkdir -p "$DIST"
		deb_one "$arch"
		deb="$DIST/headnode_$(deb_version)_$arch.deb"
	fi
	[ "$(dpkg-deb -f "$deb" Architecture)" = "$arch" ] ||
		die "image: $deb is for $(dpkg-deb -f "$deb" Architecture), but $in is $arch: use headnode_*_$arch.deb"
	need_kb=$(dpkg-deb -f "$deb" Installed-Size)
	avail=$(df --output=avail -k "$IMG_MNT" | tail -n1 | tr -d ' ')
	[ "$avail" -gt $((need_kb + 1024)) ] ||
		die "image: the root file system of $in has $avail KiB free and headnode needs $need_kb KiB: enlarge its second partition and file system first"

	# Register the package with the image's dpkg, as `apt install` would: apt
	# knows it, the conffile is tracked, `apt remove` works. The host's dpkg
	# does it: --force-script-chrootless runs our maintainer scripts here with
	# DPKG_ROOT set (they touch only files below it), --force-architecture
	# because the host's dpkg calls its own architecture native, and
	# --no-triggers leaves other packages' triggers (none expected) to the
	# Pi's first dpkg run instead of running the image's scripts here.
	divert_official_clusterctrl "$IMG_MNT"
	echo "build.sh: installing $deb into $in's root file system" >&2
	# The scripts run on this machine, so they run in a mount namespace where
	# this machine's systemd state is empty scratch space: whatever would
	# ignore DPKG_ROOT (an old deb-systemd-helper) cannot change this machine.
	# shellcheck disable=SC2016 # the inner shell expands $d and $@
	unshare --mount --propagation private sh -ec '
		for d in /run /etc/systemd/system /var/lib/systemd; do
			if [ -d "$d" ]; then mount -t tmpfs headnode-image "$d"; fi
		done
		exec "$@"' sh \
		dpkg --root="$IMG_MNT" --force-script-chrootless --force-architecture --no-triggers --install "$deb"
	[ -e "$IMG_MNT/var/lib/systemd/deb-systemd-helper-enabled/headnode.service.dsh-also" ] ||
		echo "build.sh: warning: this machine's deb-systemd-helper ignores DPKG_ROOT; the image's dpkg will not remember that headnode.service was enabled by the package" >&2
	# The postinst enabled the unit through deb-systemd-helper; systemctl
	# --root does it with systemd's own rules too, whatever the host's
	# deb-systemd-helper version (a no-op when already enabled).
	systemctl --root="$IMG_MNT" --quiet enable headnode.service
	[ "$(systemctl --root="$IMG_MNT" is-enabled headnode.service)" = enabled ] ||
		die "image: headnode.service is not enabled in $out"

	# config.txt is on the FAT boot partition. mtools edits it inside the
	# image file: no vfat driver and no second mount needed.
	export MTOOLS_SKIP_CHECK=1
	IMG_TMP=$(mktemp /tmp/headnode-config.txt.XXXXXX)
	cfg=$IMG_TMP
	mtype -i "$out@@$((boot_start * 512))" ::config.txt >"$cfg" 2>/dev/null ||
		die "image: $in has no config.txt on its boot partition: is it a Raspberry Pi OS image?"
	# Either turns on /dev/i2c-1: the Pi's I2C controller, or the bit-banged
	# bus ClusterHAT images use on Pi 0-4 (it handles clock stretching).
	i2c_re='^[[:space:]]*(dtparam=([^#]*,)?i2c(_arm)?=on|dtoverlay=i2c-gpio,([^#]*,)?bus=1)([[:space:],#]|$)'
	if grep -Eq "$i2c_re" "$cfg"; then
		echo "build.sh: config.txt already turns on I2C bus 1" >&2
	else
		# Finish a last line that has no newline.
		if [ -s "$cfg" ] && [ -n "$(tail -c1 "$cfg")" ]; then echo >>"$cfg"; fi
		# The file may end inside a [pi4]-style section; [all] applies to every Pi.
		printf '[all]\n# headnode: I2C bus 1 for the power board and the LCD\ndtparam=i2c_arm=on\n' >>"$cfg"
		mcopy -o -i "$out@@$((boot_start * 512))" "$cfg" ::config.txt
		echo "build.sh: config.txt: added dtparam=i2c_arm=on" >&2
	fi

	IMG_DONE=1
	image_cleanup
	IMG_MNT="" IMG_LOOP="" IMG_TMP=""
	echo "build.sh: $out: headnode $(dpkg-deb -f "$deb" Version) ($arch) installed and enabled" >&2
}

run_tests() {
	[ "$(id -u)" -eq 0 ] || die "the tests need root for network namespaces: sudo ./build.sh test"
	deps
	lint
	build
	check_arm
	echo "build.sh: go test ./..." >&2
	# Namespace tests fail instead of skipping when they cannot run.
	HEADNODE_REQUIRE_NETNS=1 PATH=$PATH:/usr/sbin:/sbin go test -count=1 ./...
	race_tests
	soak "${SOAK:-3m}" nft
}

# lint fails on unformatted files, go vet's findings and staticcheck's. The
# staticcheck version is pinned by the tool directive in go.mod (go.sum
# holds its checksums); `go tool` builds it once into the build cache.
lint() {
	local unformatted
	echo "build.sh: gofmt -l ." >&2
	unformatted=$(gofmt -l .)
	[ -z "$unformatted" ] || die "not gofmt-formatted (run gofmt -w on them): $(echo "$unformatted" | xargs)"
	echo "build.sh: go vet ./..." >&2
	go vet ./...
	echo "build.sh: go tool staticcheck ./..." >&2
	go tool staticcheck ./...
}

# race_tests runs the tests again under the race detector: every package
# except those whose tests drive separately built binaries (cmd/headnode's
# end-to-end tests run the daemon and the CLI as processes; systemd's run
# them in a container): the detector watches only the test process, so
# there it would find nothing and cost minutes. New packages are raced
# without being listed here.
race_tests() {
	local mod pkgs
	mod=$(go list -m)
	mapfile -t pkgs < <(go list ./... | grep -vxF -e "$mod/cmd/headnode" -e "$mod/systemd")
	echo "build.sh: go test -race (${#pkgs[@]} packages: all but $mod/cmd/headnode and $mod/systemd)" >&2
	HEADNODE_REQUIRE_NETNS=1 PATH=$PATH:/usr/sbin:/sbin go test -race -count=1 "${pkgs[@]}"
}

# soak DURATION BACKEND runs the daemon under injected faults and prints the
# table of faults and recovery times (cmd/headnode/soak_test.go).
soak() {
	echo "build.sh: soak test, $1 on iptables-$2" >&2
	HEADNODE_REQUIRE_NETNS=1 PATH=$PATH:/usr/sbin:/sbin go test -count=1 -timeout 0 -run '^TestSoak$' -v ./cmd/headnode \
		-soak="$1" -soak-backend="$2" ${SOAK_SEED:+-soak-seed="$SOAK_SEED"} ${SOAK_TABLE:+-soak-table="$SOAK_TABLE"}
}

# bench_machine prints what the figures were measured on.
bench_machine() {
	local cpu mem
	cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
	mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
	echo "machine: ${cpu:-unknown CPU}, $(nproc) cores, $mem, Linux $(uname -r), $(go version | cut -d' ' -f3), load $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "date:    $(date -u '+%Y-%m-%d %H:%M UTC'), this tree $VERSION, incumbent ${BENCH_BASE:-main} ($(git rev-parse --short "${BENCH_BASE:-main}" 2>/dev/null || echo '?'))"
}

# bench_binaries builds the host binary of this tree and of BENCH_BASE
# (default main), the incumbent, both as `build.sh` builds them
# (CGO_ENABLED=0, -trimpath, -s -w), into $DIST/bench.
bench_binaries() {
	local base=${BENCH_BASE:-main} tmp
	mkdir -p "$DIST/bench"
	build_one "$HOST_OS" "$HOST_ARCH" "" "bench/headnode"
	tmp=$(mktemp -d /tmp/headnode-bench.XXXXXX)
	git worktree add --quiet --detach "$tmp/src" "$base" || die "bench: cannot check out BENCH_BASE=$base"
	echo "build.sh: $DIST/bench/headnode-base ($base)" >&2
	(cd "$tmp/src" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$base" -o "$OLDPWD/$DIST/bench/headnode-base" ./cmd/headnode)
	git worktree remove --force "$tmp/src"
	rmdir "$tmp"
}

# bench_figures BINARY OUT: the daemon's figures (cmd/headnode/bench_e2e_test.go)
# for one binary, as "NAME VALUE UNIT" lines in OUT.
bench_figures() {
	HEADNODE_REQUIRE_NETNS=1 go test -count=1 -timeout 0 -run '^TestBench(Idle|ThousandNodes|LCD)$' -v ./cmd/headnode \
		-bench-figures -bench-binary="$1" -bench-for="${BENCH_FOR:-30s}" >"$2.log" 2>&1 ||
		{ tail -40 "$2.log" >&2; die "bench: the figures of $1 failed (log: $2.log)"; }
	sed -n 's/^figure //p' "$2.log" >"$2"
}

# bench_table NEW OLD: the figures side by side, with the ratio
# incumbent/new (above 1: this tree is better, for times, CPU and memory)
# and the target of issue 13.
bench_table() {
	awk -v old="$2" '
		BEGIN {
			while ((getline l < old) > 0) { split(l, f, " "); base[f[1]] = f[2] }
			t["ready"] = "<= 30 ms"; t["idle_cpu"] = "<= 0.1 %"; t["idle_rss"] = "<= 15 MB"
			t["probe1024_cpu"] = "<= 1 %"; t["detect1024"] = "<= 3 s"
			t["status1024_median"] = "<= 50 ms"; t["status_json1024_median"] = "<= 50 ms"
			t["page1024_median"] = "<= 50 ms"; t["json1024_median"] = "<= 50 ms"; t["metrics1024_median"] = "<= 50 ms"
			t["lcd_renumber_p99"] = "<= 10 ms"; t["lcd_row_p99"] = "<= 10 ms"
			printf "%-26s %12s %12s %8s  %s\n", "figure", "this tree", "incumbent", "ratio", "target"
		}
		{
			b = ($1 in base) ? base[$1] : "-"
			r = (b != "-" && $2 > 0) ? sprintf("%.2fx", b / $2) : "-"
			printf "%-26s %9.4g %-2s %9s %-2s %8s  %s\n", $1, $2, $3, b, (b == "-" ? "" : $3), r, t[$1]
		}' "$1"
}

# bench prints every figure of issue 13 beside the incumbents measured in
# the same run: the daemon of this tree beside BENCH_BASE's (idle CPU and
# memory, READY, probing 1024 nodes, `headnode status` beside `python3 -c
# pass`, the page, JSON and metrics of 1024 nodes, the LCD end to end), the
# NAT apply and repair beside the one-process-per-rule incumbent, the
# in-process timings of this tree, then the DHCP and DNS figures where
# those parts provide bench_dhcp and bench_dns.
bench() {
	[ "$(id -u)" -eq 0 ] || die "bench runs daemons in network namespaces: sudo ./build.sh bench"
	deps
	need hyperfine python3
	local out
	out=$(mktemp -d /tmp/headnode-bench.XXXXXX)
	bench_binaries
	echo "== headnode bench (issue 13)"
	bench_machine
	echo "build.sh: measuring this tree" >&2
	bench_figures "$PWD/$DIST/bench/headnode" "$out/new"
	echo "build.sh: measuring the incumbent" >&2
	bench_figures "$PWD/$DIST/bench/headnode-base" "$out/old"
	echo
	echo "== the daemon, this tree beside ${BENCH_BASE:-main} (python3_pass: \`python3 -c pass\` in the same hyperfine run as \`headnode status\`)"
	bench_table "$out/new" "$out/old"
	echo
	echo "== NAT: cold apply and repair after a flush, beside the incumbent (one iptables process per rule, 100 ms debounce)"
	HEADNODE_REQUIRE_NETNS=1 go test -count=1 -run '^$' -bench 'ColdApply|RepairLatency' -benchtime 20x ./netcfg/nat 2>&1 |
		grep -E '^Benchmark' | sed -E 's/-[0-9]+ +/ /'
	echo
	echo "== in process, this tree: 1024 nodes' views, probe CPU, the LCD's Show to last byte"
	{
		go test -count=1 -run '^$' -bench 'ThousandNodes' -benchtime 20x ./cmd/headnode/internal/web ./cmd/headnode/internal/cli
		HEADNODE_REQUIRE_NETNS=1 go test -count=1 -run '^$' -bench 'ProbeCPU1024' -benchtime 2x ./power
		go test -count=1 -run '^$' -bench 'EventToLastByte' -benchtime 200x ./display
	} 2>&1 | grep -E '^Benchmark' | sed -E 's/-[0-9]+ +/ /'
	if declare -F bench_dhcp >/dev/null; then echo; bench_dhcp; fi
	if declare -F bench_dns >/dev/null; then echo; bench_dns; fi
	rm -rf "$out"
}

case "${1:-build}" in
	build) build ;;
	test) run_tests ;;
	sim)
		[ "$(id -u)" -eq 0 ] || die "sim builds network namespaces: sudo ./build.sh sim"
		deps
		build_one "$HOST_OS" "$HOST_ARCH" "" "headnode-$HOST_OS-$HOST_ARCH"
		shift
		exec "$DIST/headnode-$HOST_OS-$HOST_ARCH" sim "$@"
		;;
	deps) deps ;;
	soak)
		[ "$(id -u)" -eq 0 ] || die "soak runs the daemon in network namespaces: sudo ./build.sh soak"
		soak "${2:-30m}" "${3:-nft}"
		;;
	footprint)
		[ "$(id -u)" -eq 0 ] || die "footprint runs the daemon in network namespaces: sudo ./build.sh footprint"
		# The host build, as installed (CGO_ENABLED=0, stripped).
		build_one "$HOST_OS" "$HOST_ARCH" "" "headnode-$HOST_OS-$HOST_ARCH"
		HEADNODE_REQUIRE_NETNS=1 go test -count=1 -run '^TestFootprint$' -v ./cmd/headnode -footprint="${2:-60s}" \
			-bench-binary="$PWD/$DIST/headnode-$HOST_OS-$HOST_ARCH" | grep -E 'idle for|^(ok|FAIL|---)'
		;;
	bench) bench ;;
	deb) deb ;;
	image)
		shift
		image "$@"
		;;
	*) die "unknown command \"$1\": use build, test, sim, deps, deb, image, footprint, bench or soak" ;;
esac
