#!/usr/bin/env bash
# headnode build script.
#
#   ./build.sh            build dist/ binaries: host, linux/arm (GOARM=6, every Pi), linux/arm64
#   ./build.sh test       go vet, build, run the ARM binaries under qemu, run every test
#                         (needs root: the kernel tests use network namespaces)
#   ./build.sh sim        build and run `headnode sim` (needs root)
#   ./build.sh deps       install the Debian packages the tests need (root)
#
# VERSION overrides the version stamped into the binaries (default: git describe).
set -euo pipefail
cd "$(dirname "$0")"

# sudo resets PATH; Go's standard install location is not on root's.
command -v go >/dev/null 2>&1 || PATH=$PATH:/usr/local/go/bin
command -v go >/dev/null 2>&1 || { echo "build.sh: Go is not installed: get Go 1.26 or newer from https://go.dev/dl/" >&2; exit 1; }

VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
HOST_OS=$(go env GOHOSTOS)
HOST_ARCH=$(go env GOHOSTARCH)

# Debian packages the tests use, by the command that shows they are there.
declare -A PACKAGES=(
	[iptables-nft]=iptables
	[ip]=iproute2
	[qemu-arm]=qemu-user
	[qemu-aarch64]=qemu-user
	[unshare]=util-linux
	[promtool]=prometheus
	[chromium]=chromium
	[dhclient]=isc-dhcp-client
	[udhcpc]=udhcpc
	[busybox]=busybox
)

die() { echo "build.sh: $*" >&2; exit 1; }

deps() {
	local missing=()
	for cmd in "${!PACKAGES[@]}"; do
		command -v "$cmd" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin:/sbin command -v "$cmd" >/dev/null 2>&1 || missing+=("${PACKAGES[$cmd]}")
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

# build GOOS GOARCH GOARM OUTPUT
build_one() {
	echo "build.sh: dist/$4 ($1/$2${3:+ GOARM=$3}, version $VERSION)" >&2
	GOOS=$1 GOARCH=$2 GOARM=$3 CGO_ENABLED=0 \
		go build -trimpath -ldflags "-s -w -X main.version=$VERSION" -o "dist/$4" ./cmd/headnode
}

build() {
	mkdir -p dist
	build_one "$HOST_OS" "$HOST_ARCH" "" "headnode-$HOST_OS-$HOST_ARCH"
	build_one linux arm 6 headnode-linux-armv6
	build_one linux arm64 "" headnode-linux-arm64
}

# check_arm proves the ARM binaries start on the CPUs they are for: an
# ARM1176 (Pi 1 and Pi Zero, ARMv6) and a 64-bit ARM.
check_arm() {
	local out
	out=$(qemu-arm -cpu arm1176 dist/headnode-linux-armv6 version) || die "armv6 binary failed under qemu-arm -cpu arm1176"
	echo "build.sh: qemu-arm -cpu arm1176: $out" >&2
	[[ $out == "headnode $VERSION "*"linux/arm)" ]] || die "armv6 binary printed: $out"
	out=$(qemu-aarch64 dist/headnode-linux-arm64 version) || die "arm64 binary failed under qemu-aarch64"
	echo "build.sh: qemu-aarch64: $out" >&2
	[[ $out == "headnode $VERSION "*"linux/arm64)" ]] || die "arm64 binary printed: $out"
}

run_tests() {
	[ "$(id -u)" -eq 0 ] || die "the tests need root for network namespaces: sudo ./build.sh test"
	deps
	echo "build.sh: go vet ./..." >&2
	go vet ./...
	build
	check_arm
	echo "build.sh: go test ./..." >&2
	# Namespace tests fail instead of skipping when they cannot run.
	HEADNODE_REQUIRE_NETNS=1 PATH=$PATH:/usr/sbin:/sbin go test -count=1 ./...
}

case "${1:-build}" in
	build) build ;;
	test) run_tests ;;
	sim)
		[ "$(id -u)" -eq 0 ] || die "sim builds network namespaces: sudo ./build.sh sim"
		deps
		build_one "$HOST_OS" "$HOST_ARCH" "" "headnode-$HOST_OS-$HOST_ARCH"
		shift
		exec "dist/headnode-$HOST_OS-$HOST_ARCH" sim "$@"
		;;
	deps) deps ;;
	*) die "unknown command \"$1\": use build, test, sim or deps" ;;
esac
