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
#   ./build.sh bench [DNS_DURATION [DNS_RATE]]  every figure of issue 13 beside the
#                         incumbents, measured in the same run: this tree against BENCH_BASE
#                         (default main), python3, the old NAT path, dnsmasq (root;
#                         BENCH_FOR=60s per CPU figure: a whole minute of the beat, hw/wake)
#   ./build.sh soak [DURATION [nft|legacy]]  the daemon under injected faults (default 30m, nft; root)
#   ./build.sh deb        Debian packages dist/headnode_<version>_{armhf,arm64}.deb
#   ./build.sh image [--deb FILE] [first-boot options] IN.img[.xz] OUT.img
#                         bake the package into a Raspberry Pi OS image and write
#                         OUT.rpi-imager-manifest beside it (root); first boot:
#                         --hostname NAME, --user NAME with --password-hash HASH
#                         and/or --ssh-key KEY|FILE, --wifi-ssid SSID
#                         --wifi-country CC [--wifi-psk PSK]
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
	[dhcrelay]=isc-dhcp-relay
	[perfdhcp]=kea-admin
	[kea-dhcp4]=kea-dhcp4-server
	[dnsmasq]=dnsmasq
	[udhcpc]=udhcpc
	[dhcpcd]=dhcpcd-base
	[busybox]=busybox
	[dnsmasq]=dnsmasq-base
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
	[lintian]=lintian
	[groff]=groff-base
	[dig]=bind9-dnsutils
	[nft]=nftables
	[dnsmasq]=dnsmasq-base
	[hyperfine]=hyperfine
	[python3]=python3
)

# Debian packages the tests use that bring no command, by a file they
# install (a glob). erlang-snmp: the base MIB modules (SNMPv2-SMI, -TC,
# -CONF) that smilint and snmptranslate check HEADNODE-MIB against.
# python3-yaml: the image tests parse cloud-init's user-data with it.
declare -A PACKAGE_FILES=(
	['/usr/lib/erlang/lib/snmp-*/mibs/SNMPv2-SMI.mib']=erlang-snmp
	['/usr/lib/python3/dist-packages/yaml/__init__.py']=python3-yaml
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
	# The project's own address; DEBFULLNAME and DEBEMAIL override it (a
	# fork that publishes its own packages).
	maint="${DEBFULLNAME:-The headnode authors} <${DEBEMAIL:-headnode@users.noreply.github.com}>"
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
	# The head resolves the nodes' names: NetworkManager's dnsmasq asks
	# headnode's DNS server for the cluster domain (README, "DNS").
	install -D -m 0644 systemd/NetworkManager/headnode-dns.conf "$stage/usr/lib/NetworkManager/conf.d/headnode-dns.conf"
	install -D -m 0644 systemd/NetworkManager/dnsmasq-headnode.conf "$stage/etc/NetworkManager/dnsmasq.d/headnode.conf"
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
	# headnode(8) and the bash completion are written by the binary from its
	# own help texts and command table (run here, built for this machine).
	host_headnode
	mkdir -p "$stage/usr/share/man/man8" "$stage/usr/share/bash-completion/completions"
	"$HOST_BIN" __man | gzip -9n >"$stage/usr/share/man/man8/headnode.8.gz"
	ln -s headnode.8.gz "$stage/usr/share/man/man8/clusterctrl.8.gz"
	"$HOST_BIN" __bash-completion >"$stage/usr/share/bash-completion/completions/headnode"
	install -D -m 0644 systemd/debian/lintian-overrides "$stage/usr/share/lintian/overrides/headnode"
	# Debian policy wants a changelog: this one names the version's source.
	printf 'headnode (%s) unstable; urgency=medium\n\n  * Built from headnode %s.\n\n -- %s  %s\n' \
		"$(deb_version)" "$VERSION" "$maint" "$(date -R -d "@$SOURCE_DATE_EPOCH")" |
		gzip -9n >"$stage/usr/share/doc/headnode/changelog.gz"
	install -D -m 0755 -t "$stage/DEBIAN" systemd/debian/preinst systemd/debian/postinst systemd/debian/prerm systemd/debian/postrm
	# dpkg asks before replacing an edited conffile, and keeps it on remove.
	printf '%s\n' /etc/headnode/config.toml /etc/NetworkManager/dnsmasq.d/headnode.conf >"$stage/DEBIAN/conffiles"
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
	# dpkg -V checks the installed files against these.
	(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0r md5sum) >"$stage/DEBIAN/md5sums"
	chmod 0644 "$stage/DEBIAN/md5sums"
	dpkg-deb --root-owner-group -Zxz --build "$stage" "$out" >/dev/null
	rm -rf "$stage"
	echo "build.sh: $out" >&2
}

# host_headnode builds headnode for this machine once, as $HOST_BIN, to run
# at package build time.
HOST_BIN=""
host_headnode() {
	[ -z "$HOST_BIN" ] || return 0
	build_one "$HOST_OS" "$HOST_ARCH" "" "headnode-$HOST_OS-$HOST_ARCH"
	HOST_BIN="$DIST/headnode-$HOST_OS-$HOST_ARCH"
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

# The first-boot options of `build.sh image` (all empty: none given).
FB_HOSTNAME="" FB_USER="" FB_HASH="" FB_KEYS="" FB_SSID="" FB_PSK="" FB_COUNTRY=""

# firstboot_check validates the first-boot options before anything is
# written: one line naming the bad value and what would be valid.
firstboot_check() {
	# Bytes and ASCII classes: an SSID is at most 32 bytes, a passphrase
	# printable ASCII, a host name ASCII letters and digits.
	local line LC_ALL=C
	if [ -n "$FB_HOSTNAME" ] && ! [[ $FB_HOSTNAME =~ ^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$ ]]; then
		die "image: --hostname \"$FB_HOSTNAME\" is not a host name: 1 to 63 letters, digits and hyphens, not starting or ending with a hyphen"
	fi
	# userconf-pi's rule for the user it renames the first user to.
	if [ -n "$FB_USER" ] && { ! [[ $FB_USER =~ ^[a-z][a-z0-9-]{0,31}$ ]] || [ "$FB_USER" = root ]; }; then
		die "image: --user \"$FB_USER\" is not a user name: 1 to 32 lower-case letters, digits and hyphens, starting with a letter, not root"
	fi
	# A crypt(5) hash ($y$ yescrypt, $6$ SHA-512, ...); a colon or space
	# would break userconf.txt and chpasswd -e.
	if [ -n "$FB_HASH" ] && ! [[ $FB_HASH =~ ^\$[0-9a-z]+\$[./0-9A-Za-z\$=,]+$ ]]; then
		die "image: --password-hash \"$FB_HASH\" is not a crypt(5) password hash such as \`mkpasswd -m yescrypt\` or \`openssl passwd -6\` prints (\$y\$... or \$6\$...)"
	fi
	if [ -n "$FB_KEYS" ]; then
		while IFS= read -r line; do
			[[ $line =~ ^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com)\ [A-Za-z0-9+/]+=*(\ [^[:cntrl:]]*)?$ ]] ||
				die "image: --ssh-key: \"$line\" is not an OpenSSH public key line (ssh-ed25519 AAAA... comment); give the key or its .pub file"
		done <<<"$FB_KEYS"
	fi
	if [ -n "$FB_USER" ] && [ -z "$FB_HASH" ] && [ -z "$FB_KEYS" ]; then
		die "image: --user \"$FB_USER\" needs --password-hash HASH or --ssh-key KEY, or nobody could log in"
	fi
	if [ -z "$FB_USER" ] && { [ -n "$FB_HASH" ] || [ -n "$FB_KEYS" ]; }; then
		die "image: --password-hash and --ssh-key are for the user named by --user NAME, which is missing"
	fi
	if [ -n "$FB_SSID" ]; then
		{ [ ${#FB_SSID} -le 32 ] && ! [[ $FB_SSID =~ [[:cntrl:]] ]]; } ||
			die "image: --wifi-ssid \"$FB_SSID\" is not a Wi-Fi network name: 1 to 32 bytes (UTF-8), no control characters"
		[ -n "$FB_COUNTRY" ] || die "image: --wifi-ssid needs --wifi-country CC (the two-letter country code, e.g. GB), or the Pi keeps Wi-Fi off"
	elif [ -n "$FB_PSK" ] || [ -n "$FB_COUNTRY" ]; then
		die "image: --wifi-psk and --wifi-country are for the network named by --wifi-ssid SSID, which is missing"
	fi
	if [ -n "$FB_PSK" ] && ! [[ $FB_PSK =~ ^[[:print:]]{8,63}$ || $FB_PSK =~ ^[0-9A-Fa-f]{64}$ ]]; then
		die "image: --wifi-psk is not a WPA passphrase (8 to 63 printable ASCII characters) or a 64-digit hex key"
	fi
	if [ -n "$FB_COUNTRY" ] && ! [[ $FB_COUNTRY =~ ^[A-Z]{2}$ ]]; then
		die "image: --wifi-country \"$FB_COUNTRY\" is not a two-letter ISO 3166 country code in capitals, e.g. GB, DE, US"
	fi
}

firstboot_wanted() { [ -n "$FB_HOSTNAME$FB_USER$FB_SSID" ]; }

# sh_quote VALUE quotes a value for /bin/sh (dash): single quotes, each ' as '"'"'.
sh_quote() { printf "'%s'" "${1//\'/\'\"\'\"\'}"; }

# yaml_str VALUE quotes a value as a YAML double-quoted string.
yaml_str() {
	local v=${1//\\/\\\\}
	printf '"%s"' "${v//\"/\\\"}"
}

# wifi_psk prints the key for the network: a 64-digit hex key as given, a
# passphrase as its WPA-PSK (PBKDF2-HMAC-SHA1, 4096 rounds, salted with the
# SSID), as Imager writes it, so the passphrase itself is not on the card;
# without python3 or openssl the passphrase is written as it is.
wifi_psk() {
	if [[ $FB_PSK =~ ^[0-9A-Fa-f]{64}$ ]] || [ -z "$FB_PSK" ]; then
		printf '%s' "$FB_PSK"
	elif command -v python3 >/dev/null 2>&1; then
		PSK=$FB_PSK SSID=$FB_SSID python3 -c 'import hashlib, os; print(hashlib.pbkdf2_hmac("sha1", os.environ["PSK"].encode(), os.environ["SSID"].encode(), 4096, 32).hex(), end="")'
	else
		echo "build.sh: note: no python3 here to derive the WPA key: the Wi-Fi passphrase is written as typed" >&2
		printf '%s' "$FB_PSK"
	fi
}

# pkg_installed ROOT PACKAGE: the package is installed in ROOT's dpkg.
pkg_installed() {
	dpkg-query --admindir="$1/var/lib/dpkg" -W -f='${db:Status-Status}\n' "$2" 2>/dev/null | grep -qx installed
}

# init_format ROOT prints the customisation format Raspberry Pi Imager uses
# for an image, in its manifest's terms (init_format, rpi-imager
# doc/os_customisation_formats.md): an image with the rpi-preseed package
# reads Imager's rpi-preseed.toml ("rpi-preseed"); the newest Raspberry Pi
# OS (trixie) carries cloud-init, with the Raspberry Pi module
# cc_raspberry_pi ("cloudinit-rpi"); bookworm and the first trixie release
# carry raspberrypi-sys-mods and no cloud-init, and take Imager's
# firstrun.sh ("systemd"); anything else takes no customisation ("none").
init_format() {
	local root=$1
	if pkg_installed "$root" rpi-preseed; then
		echo rpi-preseed
	elif pkg_installed "$root" cloud-init; then
		if compgen -G "$root/usr/lib/python3/dist-packages/cloudinit/config/cc_raspberry_pi.py" >/dev/null; then
			echo cloudinit-rpi
		else
			echo cloudinit
		fi
	elif pkg_installed "$root" raspberrypi-sys-mods; then
		echo systemd
	else
		echo none
	fi
}

# boot_put IMG@@OFFSET NAME CONTENT-FILE writes a file to the boot partition.
boot_put() { mcopy -o -i "$1" "$3" "::$2"; }

# firstboot_systemd BOOT writes the first-boot options the way Raspberry Pi
# OS bookworm reads them from its boot partition:
#   - ssh: sshswitch.service (raspberrypi-sys-mods) turns SSH on and
#     deletes the file;
#   - userconf.txt, "user:hash": userconfig.service (userconf-pi) renames
#     the first user (uid 1000) and sets the password;
#   - firstrun.sh, run once by systemd.run= on the kernel command line as
#     Imager's "systemd" format does: the host name, SSH keys and Wi-Fi,
#     through raspberrypi-sys-mods' imager_custom; the initramfs's
#     imager_fixup moves its path to /boot/firmware, and its last lines
#     remove it and the systemd.run= arguments.
firstboot_systemd() {
	local boot=$1 f=$IMG_TMP cmdline="" key tool
	# Older releases (bullseye) lack these; nothing is written then.
	for tool in ${FB_HOSTNAME:+imager_custom} ${FB_KEYS:+imager_custom} ${FB_SSID:+imager_custom}; do
		[ -f "$IMG_MNT/usr/lib/raspberrypi-sys-mods/$tool" ] ||
			die "image: this image's raspberrypi-sys-mods has no $tool, which firstrun.sh needs for --hostname, --ssh-key and --wifi-ssid: use a bookworm or newer Raspberry Pi OS image"
	done
	if [ -n "$FB_USER" ] && ! pkg_installed "$IMG_MNT" userconf-pi; then
		die "image: this image has no userconf-pi, which renames the first user to --user: use a bookworm or newer Raspberry Pi OS image"
	fi
	if [ -n "$FB_USER" ]; then
		: >"$f"
		boot_put "$boot" ssh "$f"
		echo "build.sh: first boot: ssh (SSH on)" >&2
	fi
	if [ -n "$FB_HASH" ]; then
		printf '%s:%s\n' "$FB_USER" "$FB_HASH" >"$f"
		boot_put "$boot" userconf.txt "$f"
		echo "build.sh: first boot: userconf.txt (user $FB_USER with the password hash)" >&2
	fi
	if [ -n "$FB_HOSTNAME$FB_KEYS$FB_SSID" ]; then
		{
			printf '#!/bin/sh\n# Written by headnode build.sh image: the first boot of this card, once.\nset +e\n'
			if [ -n "$FB_HOSTNAME" ]; then
				printf '/usr/lib/raspberrypi-sys-mods/imager_custom set_hostname %s\n' "$FB_HOSTNAME"
			fi
			if [ -n "$FB_KEYS" ]; then
				printf '/usr/lib/raspberrypi-sys-mods/imager_custom enable_ssh'
				# Keys only: no password logins over SSH.
				[ -n "$FB_HASH" ] || printf ' -k'
				while IFS= read -r key; do printf ' %s' "$(sh_quote "$key")"; done <<<"$FB_KEYS"
				printf '\n'
				if [ -z "$FB_HASH" ]; then
					# No userconf.txt: rename the first user here, as Imager does.
					printf '/usr/lib/userconf-pi/userconf %s %s\n' "$(sh_quote "$FB_USER")" "''"
				fi
			fi
			if [ -n "$FB_SSID" ]; then
				printf '/usr/lib/raspberrypi-sys-mods/imager_custom set_wlan %s %s %s\n' "$(sh_quote "$FB_SSID")" "$(sh_quote "$(wifi_psk)")" "$(sh_quote "$FB_COUNTRY")"
			fi
			printf 'rm -f /boot/firstrun.sh\nsed -i %s /boot/cmdline.txt\nexit 0\n' "'s| systemd.run.*||g'"
		} >"$f"
		boot_put "$boot" firstrun.sh "$f"
		cmdline=" systemd.run=/boot/firstrun.sh systemd.run_success_action=reboot systemd.unit=kernel-command-line.target"
		echo "build.sh: first boot: firstrun.sh (${FB_HOSTNAME:+host name, }${FB_KEYS:+SSH keys, }${FB_SSID:+Wi-Fi, }run once)" >&2
	fi
	cmdline_append "$boot" "$cmdline"
}

# firstboot_cloudinit BOOT writes the first-boot options as cloud-init's
# NoCloud data source on the boot partition, as Imager's "cloudinit" and
# "cloudinit-rpi" formats do (the newest Raspberry Pi OS trixie): meta-data
# with an instance ID, user-data (#cloud-config: host name, the user, SSH)
# and network-config (netplan version 2: Wi-Fi beside eth0), and
# "ds=nocloud;i=ID" on the kernel command line.
firstboot_cloudinit() {
	local boot=$1 f=$IMG_TMP id key
	id="headnode-$(date -u +%Y%m%d%H%M%S)-$$"
	printf 'instance-id: %s\n' "$id" >"$f"
	boot_put "$boot" meta-data "$f"
	{
		printf '#cloud-config\n# Written by headnode build.sh image.\nmanage_resolv_conf: false\n'
		if [ -n "$FB_HOSTNAME" ]; then
			printf 'hostname: %s\nmanage_etc_hosts: true\n' "$FB_HOSTNAME"
		fi
		if [ -n "$FB_USER" ]; then
			# user: (singular) renames the image's default user and keeps its
			# groups (sudo, i2c, gpio...).
			printf 'user:\n  name: %s\n  shell: /bin/bash\n' "$FB_USER"
			if [ -n "$FB_HASH" ]; then
				printf '  lock_passwd: false\n  passwd: %s\n' "$(yaml_str "$FB_HASH")"
			else
				printf '  lock_passwd: true\n'
			fi
			if [ -n "$FB_KEYS" ]; then
				printf '  ssh_authorized_keys:\n'
				while IFS= read -r key; do printf '    - %s\n' "$(yaml_str "$key")"; done <<<"$FB_KEYS"
			fi
			# The distribution's default user has passwordless sudo; asking for
			# the password is the safer default for a router.
			[ -z "$FB_HASH" ] || printf '  sudo: null\n'
			if [ -n "$FB_HASH" ]; then printf 'ssh_pwauth: true\n'; else printf 'ssh_pwauth: false\n'; fi
			# cloud-init writes the keys but Raspberry Pi OS ships sshd disabled.
			printf 'runcmd:\n  - [ systemctl, enable, --now, ssh ]\n'
		fi
	} >"$f"
	boot_put "$boot" user-data "$f"
	echo "build.sh: first boot: meta-data, user-data (${FB_HOSTNAME:+host name, }${FB_USER:+user $FB_USER, SSH on})" >&2
	if [ -n "$FB_SSID" ]; then
		{
			printf 'network:\n  version: 2\n  ethernets:\n    eth0:\n      dhcp4: true\n      optional: true\n'
			printf '  wifis:\n    wlan0:\n      dhcp4: true\n      optional: true\n      regulatory-domain: %s\n' "$(yaml_str "$FB_COUNTRY")"
			printf '      access-points:\n        %s:\n' "$(yaml_str "$FB_SSID")"
			if [ -n "$FB_PSK" ]; then
				printf '          password: %s\n' "$(yaml_str "$(wifi_psk)")"
			else
				printf '          auth:\n            key-management: none\n'
			fi
		} >"$f"
		boot_put "$boot" network-config "$f"
		echo "build.sh: first boot: network-config (Wi-Fi $FB_SSID)" >&2
	fi
	cmdline_append "$boot" " ds=nocloud;i=$id"
}

# cmdline_append BOOT ARGS appends to cmdline.txt's one line (and the Wi-Fi
# regulatory domain, as Imager does, when a country is given).
cmdline_append() {
	local boot=$1 args=$2 f=$IMG_TMP line
	# Before systemd.run=: firstrun.sh's last line cuts from there to the end.
	[ -z "$FB_COUNTRY" ] || args=" cfg80211.ieee80211_regdom=$FB_COUNTRY$args"
	[ -n "$args" ] || return 0
	mtype -i "$boot" ::cmdline.txt >"$f" 2>/dev/null ||
		die "image: the boot partition has no cmdline.txt: is it a Raspberry Pi OS image?"
	line=$(head -n1 "$f" | tr -d '\r')
	# An image baked before keeps its first boot's arguments only once.
	line=$(printf '%s\n' "$line" | tr ' ' '\n' | grep -v -e '^systemd\.run=' -e '^systemd\.run_success_action=' \
		-e '^systemd\.unit=kernel-command-line\.target$' -e '^ds=nocloud' -e '^cfg80211\.ieee80211_regdom=' -e '^$' | paste -sd' ') || true
	printf '%s%s\n' "$line" "$args" >"$f"
	boot_put "$boot" cmdline.txt "$f"
	echo "build.sh: cmdline.txt: added$args" >&2
}

# json VALUE prints a JSON string.
json() {
	local v=${1//\\/\\\\}
	v=${v//\"/\\\"}
	v=${v//$'\t'/\\t}
	v=${v//$'\n'/\\n}
	printf '"%s"' "$v"
}

# file_uri PATH prints a file: URI of an absolute path, bytes outside the
# unreserved set and "/" percent-encoded (as Python's pathlib as_uri).
file_uri() {
	local LC_ALL=C path=$1 out="file://" c i
	for ((i = 0; i < ${#path}; i++)); do
		c=${path:i:1}
		case $c in
			[A-Za-z0-9._~/-]) out+=$c ;;
			*) out+=$(printf '%%%02X' "'$c") ;;
		esac
	done
	printf '%s' "$out"
}

# manifest OUT ARCH FORMAT CODENAME RELEASE VERSION writes
# OUT-without-.img.rpi-imager-manifest: a Raspberry Pi Imager repository
# with this one image, in the local-manifest format of rpi-imager's
# doc/local_json (raspberrypi/rpi-imager at commit 72ad1179ff46, schema
# doc/json-schema/os-list-schema.json). Opening it in Imager (double-click,
# or `rpi-imager --repo FILE`) lists the image with its init_format, so
# Imager offers its customisation (host name, user, SSH, Wi-Fi). The devices
# are the tags of Imager's own manifest for the Pis the architecture runs
# on (an image's "devices" must match a device's "tags"); "i2c" is both an
# OS and a device capability, as Imager needs both to offer the I2C switch.
manifest() {
	local out=$1 arch=$2 format=$3 codename=$4 release=$5 version=$6 file size sum tags architecture bits name
	file=${out%.img}.rpi-imager-manifest
	size=$(stat -c %s "$out")
	sum=$(sha256sum "$out" | cut -d' ' -f1)
	case $arch in
		armhf) tags='"pi5-32bit", "pi4-32bit", "pi3-32bit", "pi2-32bit", "pi1-32bit"' architecture=armhf bits=32 ;;
		arm64) tags='"pi5-64bit", "pi4-64bit", "pi3-64bit"' architecture=armv8 bits=64 ;;
	esac
	name="headnode $version (Raspberry Pi OS ${codename:-unknown release}, $bits-bit)"
	IMG_MANIFEST=$file
	{
		printf '{\n  "imager": {\n    "devices": [\n'
		printf '      {"name": "Raspberry Pi 5", "description": "Raspberry Pi 5, 500 and Compute Module 5", "tags": ["pi5-%sbit"], "capabilities": ["i2c"]},\n' "$bits"
		printf '      {"name": "Raspberry Pi 4", "description": "Raspberry Pi 4, 400 and Compute Module 4", "tags": ["pi4-%sbit"], "capabilities": ["i2c"]},\n' "$bits"
		if [ "$arch" = armhf ]; then
			printf '      {"name": "Raspberry Pi 3", "description": "Raspberry Pi 3, Zero 2 W and Compute Module 3", "tags": ["pi3-32bit"], "capabilities": ["i2c"]},\n'
			printf '      {"name": "Raspberry Pi 2", "description": "Raspberry Pi 2", "tags": ["pi2-32bit"], "capabilities": ["i2c"]},\n'
			printf '      {"name": "Raspberry Pi 1 and Zero", "description": "Raspberry Pi 1, Zero and Zero W", "tags": ["pi1-32bit"], "capabilities": ["i2c"]}\n'
		else
			printf '      {"name": "Raspberry Pi 3", "description": "Raspberry Pi 3, Zero 2 W and Compute Module 3", "tags": ["pi3-64bit"], "capabilities": ["i2c"]}\n'
		fi
		printf '    ]\n  },\n  "os_list": [\n    {\n'
		printf '      "name": %s,\n' "$(json "$name")"
		printf '      "description": %s,\n' "$(json "Head node of a Raspberry Pi cluster: NAT, node power, DHCP, LCD and LED. Built by headnode build.sh image.")"
		printf '      "icon": "",\n'
		printf '      "url": %s,\n' "$(json "$(file_uri "$(realpath "$out")")")"
		printf '      "extract_size": %s,\n      "extract_sha256": "%s",\n' "$size" "$sum"
		printf '      "image_download_size": %s,\n      "image_download_sha256": "%s",\n' "$size" "$sum"
		printf '      "release_date": "%s",\n' "$release"
		printf '      "init_format": "%s",\n' "$format"
		printf '      "architecture": "%s",\n' "$architecture"
		printf '      "devices": [%s],\n' "$tags"
		printf '      "capabilities": ["i2c"]\n'
		printf '    }\n  ]\n}\n'
	} >"$file"
	echo "build.sh: $file: Raspberry Pi Imager manifest (init_format $format): open it in Imager to customise the card" >&2
}

# Cleanup for image, on every exit: unmount, detach, and delete an
# unfinished OUT (and its manifest) so that nobody flashes a half-baked image.
IMG_OUT="" IMG_MNT="" IMG_LOOP="" IMG_TMP="" IMG_DONE="" IMG_MANIFEST=""
image_cleanup() {
	if [ -n "$IMG_TMP" ]; then rm -f "$IMG_TMP"; fi
	if [ -n "$IMG_MNT" ]; then
		if mountpoint -q "$IMG_MNT"; then umount "$IMG_MNT" || echo "build.sh: could not unmount $IMG_MNT" >&2; fi
		rmdir "$IMG_MNT" 2>/dev/null || true
	fi
	if [ -n "$IMG_LOOP" ]; then losetup -d "$IMG_LOOP" || echo "build.sh: could not detach $IMG_LOOP" >&2; fi
	if [ -n "$IMG_OUT" ] && [ -z "$IMG_DONE" ]; then
		rm -f "$IMG_OUT"
		if [ -n "$IMG_MANIFEST" ]; then rm -f "$IMG_MANIFEST"; fi
	fi
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

# image [options] IN OUT: copy a Raspberry Pi OS image and bake headnode
# into the copy, offline (no chroot, no qemu, nothing runs from the image):
# the package is installed into its root file system with the host's dpkg,
# the unit enabled, I2C turned on in config.txt, the first-boot options
# written in the image's own format, and an Imager manifest beside OUT.
image() {
	local deb="" in out arch boot_start root_start root_sectors i2c_re cfg avail need_kb format codename release boot
	local usage="usage: build.sh image [--deb FILE] [--hostname NAME] [--user NAME (--password-hash HASH | --ssh-key KEY|FILE)] [--wifi-ssid SSID --wifi-country CC [--wifi-psk PSK]] IN.img[.xz] OUT.img"
	local opt val
	while [ $# -gt 0 ]; do
		case $1 in
			--deb | --hostname | --user | --password-hash | --ssh-key | --wifi-ssid | --wifi-psk | --wifi-country)
				[ $# -ge 2 ] || die "image: $1 needs a value; $usage"
				opt=$1 val=$2
				shift 2
				;;
			--deb=* | --hostname=* | --user=* | --password-hash=* | --ssh-key=* | --wifi-ssid=* | --wifi-psk=* | --wifi-country=*)
				opt=${1%%=*} val=${1#*=}
				shift
				;;
			-*) die "image: unknown option \"$1\": valid options are --deb, --hostname, --user, --password-hash, --ssh-key, --wifi-ssid, --wifi-psk, --wifi-country" ;;
			*) break ;;
		esac
		[ -n "$val" ] || die "image: $opt needs a non-empty value"
		case $opt in
			--deb) deb=$val ;;
			--hostname) FB_HOSTNAME=$val ;;
			--user) FB_USER=$val ;;
			--password-hash) FB_HASH=$val ;;
			--ssh-key)
				# A key line, or a file of them (id_ed25519.pub, authorized_keys).
				if [ -f "$val" ]; then
					val=$(grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*$' "$val" | tr -d '\r') || true
					[ -n "$val" ] || die "image: --ssh-key: the file has no public key in it"
				elif [[ $val != ssh-* && $val != ecdsa-* && $val != sk-* ]]; then
					die "image: --ssh-key \"$val\" is neither an OpenSSH public key nor a file"
				fi
				FB_KEYS+=${FB_KEYS:+$'\n'}$val
				;;
			--wifi-ssid) FB_SSID=$val ;;
			--wifi-psk) FB_PSK=$val ;;
			--wifi-country) FB_COUNTRY=$val ;;
		esac
	done
	[ $# -eq 2 ] || die "$usage"
	in=$1 out=$2
	firstboot_check
	[ "$(id -u)" -eq 0 ] || die "image loop-mounts the image's root file system: sudo ./build.sh image $*"
	[ -f "$in" ] || die "image: \"$in\" is not a file; give a Raspberry Pi OS image (.img or .img.xz)"
	[[ $out == *.img ]] || die "image: \"$out\" does not end in .img; the manifest goes beside it as ${out%.*}.rpi-imager-manifest"
	[ ! -e "$out" ] || die "image: \"$out\" already exists; remove it or choose another output name"
	[ ! -e "${out%.img}.rpi-imager-manifest" ] || die "image: \"${out%.img}.rpi-imager-manifest\" already exists; remove it or choose another output name"
	[ -z "$deb" ] || [ -f "$deb" ] || die "image: --deb \"$deb\" is not a file"
	need losetup partx mount mountpoint unshare mtype mcopy dpkg dpkg-query dpkg-deb dpkg-divert systemctl sha256sum
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
	boot="$out@@$((boot_start * 512))"

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
	# Read, not sourced: nothing from the image runs here. /usr/lib's, as
	# /etc/os-release is a link to it that may be absolute (the host's).
	codename=$(sed -n 's/^VERSION_CODENAME=["'\'']\{0,1\}\([a-z]*\).*/\1/p' "$IMG_MNT/usr/lib/os-release" 2>/dev/null | head -n1) || codename=""
	format=$(init_format "$IMG_MNT")
	echo "build.sh: $in is Raspberry Pi OS ${codename:+$codename }$arch, first-boot format $format" >&2
	if firstboot_wanted && [ "$format" = none ]; then
		die "image: $in has neither cloud-init nor raspberrypi-sys-mods, so it reads no first-boot settings; --hostname, --user and --wifi-ssid need a Raspberry Pi OS image"
	fi
	if firstboot_wanted && [ "$format" = rpi-preseed ]; then
		die "image: $in reads its first-boot settings from rpi-preseed.toml, which build.sh does not write: leave out --hostname, --user and --wifi-ssid and set them in Imager through the manifest"
	fi
	# The release of the base image (pi-gen's /etc/rpi-issue: "Raspberry Pi
	# reference 2024-11-19"); Imager hashes passwords with yescrypt for
	# images from 2023 on.
	release=$(grep -s -m1 -o '[0-9]\{4\}-[0-9]\{2\}-[0-9]\{2\}' "$IMG_MNT/etc/rpi-issue") || release=$(date -u +%F)

	# No iptables needed: without the iptables program the daemon programs
	# nf_tables over netlink (see README "NAT"), so stock Raspberry Pi OS
	# Lite, which has neither iptables nor nftables, works as it is.
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
	# --no-triggers leaves other packages' triggers (man-db's, when the image
	# has it) to the Pi's first dpkg run instead of running the image's
	# scripts here.
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
	mtype -i "$boot" ::config.txt >"$cfg" 2>/dev/null ||
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
		boot_put "$boot" config.txt "$cfg"
		echo "build.sh: config.txt: added dtparam=i2c_arm=on" >&2
	fi

	if firstboot_wanted; then
		case $format in
			systemd) firstboot_systemd "$boot" ;;
			cloudinit | cloudinit-rpi) firstboot_cloudinit "$boot" ;;
		esac
	fi

	umount "$IMG_MNT"
	rmdir "$IMG_MNT"
	IMG_MNT=""
	losetup -d "$IMG_LOOP"
	IMG_LOOP=""
	manifest "$out" "$arch" "$format" "$codename" "$release" "$(dpkg-deb -f "$deb" Version)"
	IMG_DONE=1
	image_cleanup
	IMG_TMP=""
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
	HEADNODE_REQUIRE_NETNS=1 go test -count=1 -timeout 0 -run '^TestBench(Ready|Idle|ThousandNodes|LCD)$' -v ./cmd/headnode \
		-bench-figures -bench-binary="$1" -bench-for="${BENCH_FOR:-60s}" >"$2.log" 2>&1 ||
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
	# DURATION and RATE of the DNS figures, as `build.sh bench [30s] [2000]`.
	if declare -F bench_dns >/dev/null; then echo; bench_dns "$@"; fi
	rm -rf "$out"
}

# bench_dns: headnode's DNS server and dnsmasq, same zone, same load, from a
# node namespace (cmd/headnode/dns_bench_test.go): DURATION per server,
# RATE queries a second; prints the table.
bench_dns() {
	HEADNODE_REQUIRE_NETNS=1 PATH=$PATH:/usr/sbin:/sbin go test -count=1 -timeout 0 -run '^TestBenchDNS$' -v ./cmd/headnode \
		-dns-bench="${1:-30s}" -dns-bench-rate="${2:-2000}" | grep -E 'dns_bench:|^(ok|FAIL|---)'
}

# bench_dhcp: perfdhcp (ISC, Debian kea-admin) against headnode's DHCP
# server (the real daemon), dnsmasq and Kea (kea-dhcp4), each alone in a
# pair of network namespaces this function creates and removes, with the
# same subnet (10.78.0.0/20), pool (10.78.1.0-10.78.15.254, 3838
# addresses), lease time (1 h) and lease files on disk. Figures: the
# highest offered DORA rate with < 1 % loss (steps from 100/s up to
# 8000/s, 4 s each, 3000 clients so that no client asks more than a real
# one would),
# the achieved rate and loss at 2000/s, a boot storm of 1024 clients at
# once (perfdhcp's avalanche, with retries) from empty leases, and the
# server's CPU time per DORA at 1000/s. Two rounds, interleaved; medians.
bench_dhcp() {
	[ "$(id -u)" -eq 0 ] || die "bench builds network namespaces: sudo ./build.sh bench"
	local p=$PATH:/usr/sbin:/sbin
	local cmd
	for cmd in perfdhcp kea-dhcp4 dnsmasq ip; do
		PATH=$p command -v "$cmd" >/dev/null || die "bench needs $cmd (${PACKAGES[$cmd]:-$cmd})"
	done
	deps
	build_one "$HOST_OS" "$HOST_ARCH" "" "headnode-$HOST_OS-$HOST_ARCH"
	local bin=$DIST/headnode-$HOST_OS-$HOST_ARCH
	BENCH_S=hnb$$s BENCH_C=hnb$$c BENCH_PID=""
	BENCH_DIR=$(mktemp -d /tmp/headnode-bench.XXXXXX)
	# shellcheck disable=SC2317
	bench_dhcp_cleanup() {
		[ -n "$BENCH_PID" ] && kill "$BENCH_PID" 2>/dev/null && wait "$BENCH_PID" 2>/dev/null
		ip netns del "$BENCH_S" 2>/dev/null; ip netns del "$BENCH_C" 2>/dev/null
		rm -rf "$BENCH_DIR"
	}
	trap bench_dhcp_cleanup EXIT
	ip netns add "$BENCH_S" && ip netns add "$BENCH_C" || die "cannot create network namespaces"
	ip -n "$BENCH_S" link set lo up; ip -n "$BENCH_C" link set lo up
	ip -n "$BENCH_S" link add srv0 type veth peer name cli0 netns "$BENCH_C"
	ip -n "$BENCH_S" addr add 10.78.0.1/20 dev srv0; ip -n "$BENCH_S" link set srv0 up
	ip -n "$BENCH_C" addr add 10.78.0.2/20 dev cli0; ip -n "$BENCH_C" link set cli0 up

	cat >"$BENCH_DIR/headnode.toml" <<-EOT
	[network]
	cluster_interface = "srv0"
	cluster_address = "10.78.0.1/20"
	uplink_interface = "up0"
	[dhcp]
	pool = "10.78.1.0-10.78.15.254"
	lease_time = "1h"
	probe = "0s"
	[control]
	socket = "$BENCH_DIR/control.sock"
	[daemon]
	state_dir = "$BENCH_DIR/state"
	[lcd]
	enabled = false
	[led]
	enabled = false
	EOT
	cat >"$BENCH_DIR/kea.json" <<-EOT
	{"Dhcp4": {"interfaces-config": {"interfaces": ["srv0"]},
	  "lease-database": {"type": "memfile", "persist": true, "name": "$BENCH_DIR/kea-leases.csv", "lfc-interval": 3600},
	  "valid-lifetime": 3600, "renew-timer": 1800, "rebind-timer": 3150, "authoritative": true,
	  "subnet4": [{"id": 1, "subnet": "10.78.0.0/20", "pools": [{"pool": "10.78.1.0 - 10.78.15.254"}]}],
	  "loggers": [{"name": "kea-dhcp4", "output_options": [{"output": "$BENCH_DIR/kea.log"}], "severity": "WARN"}]}}
	EOT

	start_server() { # name: starts it with empty leases, sets pid
		rm -rf "$BENCH_DIR/state" "$BENCH_DIR"/kea-leases.csv* "$BENCH_DIR/dnsmasq.leases"
		case $1 in
		headnode) ip netns exec "$BENCH_S" "$bin" daemon --config "$BENCH_DIR/headnode.toml" >"$BENCH_DIR/headnode.log" 2>&1 & ;;
		# dnsmasq --no-ping: its ping check blocks the whole server 3 s per
		# new address (up to 6 every 30 s), so with it every step lost ~100 %
		# (the figure was its ping timeout); Kea has none, headnode's runs
		# concurrently (200 ms per new client, no throughput cap).
		dnsmasq) ip netns exec "$BENCH_S" env PATH="$p" dnsmasq -d -k --port=0 --interface=srv0 --bind-interfaces --dhcp-authoritative --no-ping \
			--dhcp-range=10.78.1.0,10.78.15.254,255.255.240.0,1h --dhcp-lease-max=4096 --dhcp-leasefile="$BENCH_DIR/dnsmasq.leases" \
			--pid-file="$BENCH_DIR/dnsmasq.pid" --log-facility="$BENCH_DIR/dnsmasq.log" >/dev/null 2>&1 & ;;
		kea) ip netns exec "$BENCH_S" env PATH="$p" KEA_PIDFILE_DIR="$BENCH_DIR" KEA_LOCKFILE_DIR="$BENCH_DIR" kea-dhcp4 -c "$BENCH_DIR/kea.json" >"$BENCH_DIR/kea.out" 2>&1 & ;;
		esac
		BENCH_PID=$!
		local i
		for i in $(seq 100); do
			# Answering: a DORA completed (perfdhcp's exit status also
			# counts exchanges still due when it stops).
			acked "$(perf -r 5 -p 1)" && return 0
			sleep 0.2
		done
		echo "bench: $1 did not answer; its log ends:" >&2
		tail -5 "$BENCH_DIR/$1.log" "$BENCH_DIR/$1.out" 2>/dev/null >&2
		return 1
	}
	stop_server() { kill "$BENCH_PID" 2>/dev/null; wait "$BENCH_PID" 2>/dev/null; BENCH_PID=""; }
	perf() { ip netns exec "$BENCH_C" env PATH="$p" perfdhcp -4 -l cli0 -W 1500000 "$@" 10.78.0.1 2>&1 || true; }
	# -W: wait 1.5 s at the end for answers still due (headnode's offer to
	# a new client waits for its 200 ms ping check).
	# loss OUTPUT: lost exchanges in per cent of those started (DISCOVERs
	# unanswered plus REQUESTs unanswered, over DISCOVERs sent).
	loss() { awk '/sent packets:/{s[n+0]=$3} /drops:/{d[n+0]=$2; n++} END{if(s[0]>0) printf "%.2f", 100*(d[0]+d[1])/s[0]; else print 100}' <<<"$1"; }
	acked() { awk '/REQUEST-ACK/{f=1} f&&/received packets:/{exit !($3 > 0)}' <<<"$1"; }
	# achieved OUTPUT SECONDS: DORAs completed per second of the run
	# (perfdhcp's "Rate:" also divides by the -W wait).
	achieved() { awk -v t="$2" '/REQUEST-ACK/{f=1} f&&/received packets:/{printf "%.0f", $3/t; exit}' <<<"$1"; }
	cputicks() { awk '{print $14+$15}' "/proc/$BENCH_PID/stat"; }

	measure() { # name round
		local name=$1 r out l best=0
		start_server "$name" || { printf '%s\t%s\tfailed\n' "$name" "$2" >>"$BENCH_DIR/results"; return; }
		for r in 100 200 300 400 500 1000 2000 3000 4000 5000 6000 8000; do
			out=$(perf -r "$r" -R 3000 -p 4)
			l=$(loss "$out")
			awk -v l="$l" 'BEGIN{exit !(l < 1)}' || break
			best=$r
		done
		out=$(perf -r 2000 -R 3000 -p 4)
		local at2000 loss2000
		at2000=$(achieved "$out" 4); loss2000=$(loss "$out")
		local t0 t1 done
		t0=$(cputicks)
		out=$(perf -r 1000 -R 3000 -p 5)
		t1=$(cputicks)
		done=$(awk '/REQUEST-ACK/{f=1} f&&/received packets:/{print $3; exit}' <<<"$out")
		local cpu
		cpu=$(awk -v t=$((t1 - t0)) -v n="${done:-0}" -v hz="$(getconf CLK_TCK)" 'BEGIN{if(n>0) printf "%.3f", 1000*t/hz/n; else print "nan"}')
		stop_server
		start_server "$name" || return
		out=$(timeout 120 ip netns exec "$BENCH_C" env PATH="$p" perfdhcp -4 -l cli0 -R 1024 --scenario avalanche 10.78.0.1 2>&1 || true)
		local storm
		storm=$(sed -n 's/.*It took \([0-9:.]*\) to provision \([0-9]*\) clients.*/\1 \2/p' <<<"$out" |
			awk '{split($1,a,":"); printf "%.2f", a[1]*3600+a[2]*60+a[3]; if ($2 != 1024) printf "(%s only)", $2}')
		stop_server
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$2" "$best" "$at2000" "$loss2000" "${storm:-never}" "$cpu" >>"$BENCH_DIR/results"
		printf 'bench: %s round %s: max rate <1%% loss %s/s; at 2000/s %s/s, %s%% lost; 1024 storm %s s; CPU/DORA %s ms\n' \
			"$name" "$2" "$best" "$at2000" "$loss2000" "${storm:-never}" "$cpu" >&2
	}
	local round name
	for round in 1 2; do
		for name in headnode dnsmasq kea; do
			measure "$name" "$round"
		done
	done

	echo "DHCP: perfdhcp against each server in namespaces; same subnet /20, pool of 3838, lease 1 h, leases on disk; dnsmasq --no-ping"
	echo "machine: $(uname -srm), $(nproc) CPUs, $(awk -F': ' '/model name|^Model/{print $2; exit}' /proc/cpuinfo)"
	echo "versions: headnode $(git describe --always --dirty 2>/dev/null), $(PATH=$p dnsmasq --version | head -1 | cut -d' ' -f1-3), kea-dhcp4 $(PATH=$p kea-dhcp4 -v), $(PATH=$p perfdhcp -v 2>&1 | head -1)"
	echo "each figure: round 1, round 2 -> median (of two: their mean)"
	awk -F'\t' '
	function med(a, b) { if (a == "" || a == "never" || a == "nan") return b; if (b == "" || b == "never" || b == "nan") return a; return (a + b) / 2 }
	{ v[$1, $2, 3] = $3; v[$1, $2, 4] = $4; v[$1, $2, 5] = $5; v[$1, $2, 6] = $6; v[$1, $2, 7] = $7 }
	END {
		split("highest DORA rate with < 1 % loss (/s)|at 2000/s offered: achieved (/s)|at 2000/s offered: lost (%)|1024 clients at once: all bound (s)|CPU per DORA at 1000/s (ms)", title, "|")
		n = split("headnode dnsmasq kea", srv, " ")
		printf "%-42s", ""; for (i = 1; i <= n; i++) printf "  %-22s", srv[i]; printf "  %s\n", "headnode/kea"
		for (f = 3; f <= 7; f++) {
			printf "%-42s", title[f - 2]
			for (i = 1; i <= n; i++) {
				m[i] = med(v[srv[i], 1, f], v[srv[i], 2, f])
				printf "  %-22s", sprintf("%s, %s -> %s", v[srv[i], 1, f], v[srv[i], 2, f], m[i])
			}
			if (m[3] + 0 > 0) printf "  %.2f", m[1] / m[3]; else printf "  -"
			printf "\n"
		}
	}' "$BENCH_DIR/results"
	trap - EXIT
	bench_dhcp_cleanup
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
	bench)
		shift
		bench "$@"
		;;
	deb) deb ;;
	image)
		shift
		image "$@"
		;;
	*) die "unknown command \"$1\": use build, test, sim, deps, deb, image, footprint, bench or soak" ;;
esac
