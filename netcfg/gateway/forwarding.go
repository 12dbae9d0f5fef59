// Package gateway makes the head node the cluster's IPv4 gateway at the IP
// layer: IPv4 forwarding on (the net.ipv4.ip_forward sysctl, described in
// the kernel's Documentation/networking/ip-sysctl.rst) and the gateway
// address on the cluster interface. Each operation says what it changed, so
// that the caller can record it and undo exactly that later; the firewall
// rules are package firewall's, and the composition of both is package nat.
package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Forwarding reads and sets net.ipv4.ip_forward through /proc/sys, which
// resolves to the network namespace of the calling thread.
type Forwarding struct {
	// ProcSys is the sysctl tree; "" means /proc/sys. Tests point it at a
	// temporary directory.
	ProcSys string
}

func (f Forwarding) path() string {
	root := f.ProcSys
	if root == "" {
		root = "/proc/sys"
	}
	return filepath.Join(root, "net/ipv4/ip_forward")
}

// Enabled reports whether IPv4 forwarding is on.
func (f Forwarding) Enabled() (bool, error) {
	b, err := os.ReadFile(f.path())
	if err != nil {
		return false, fmt.Errorf("read ip_forward: %w", err)
	}
	return string(bytes.TrimSpace(b)) == "1", nil
}

// Enable turns forwarding on, writing only when it is off: with systemd's
// ProtectKernelTunables the file is read-only, and the sysctl.d drop-in has
// already set it. changed reports whether we switched it from 0 to 1.
func (f Forwarding) Enable() (changed bool, err error) {
	on, err := f.Enabled()
	if err != nil {
		return false, err
	}
	if on {
		return false, nil
	}
	if err := os.WriteFile(f.path(), []byte("1\n"), 0o644); err != nil {
		if errors.Is(err, syscall.EROFS) {
			// Under the systemd unit /proc/sys is read-only
			// (ProtectKernelTunables); the package's sysctl.d file is
			// what turns forwarding on at boot.
			return false, fmt.Errorf("IPv4 forwarding is off and /proc/sys is read-only here: turn it on with `sysctl -w net.ipv4.ip_forward=1` (the package's /usr/lib/sysctl.d/60-headnode.conf does it at boot): %w", err)
		}
		return false, fmt.Errorf("enable ip_forward: %w", err)
	}
	return true, nil
}

// Disable turns forwarding off.
func (f Forwarding) Disable() error {
	if err := os.WriteFile(f.path(), []byte("0\n"), 0o644); err != nil {
		return fmt.Errorf("disable ip_forward: %w", err)
	}
	return nil
}

// otherForwarders are interface name prefixes of programs that need
// forwarding for themselves (Docker, Kubernetes CNI plugins, Tailscale,
// libvirt, LXC/LXD, WireGuard, tun devices): when one exists, `nat clear`
// leaves ip_forward on even though we turned it on.
var otherForwarders = []string{"docker", "br-", "cni", "flannel", "cali", "kube-", "tailscale", "virbr", "lxcbr", "lxdbr", "wg", "tun"}

// OtherForwarder returns the first of names (interface names) that belongs
// to another program that needs forwarding, or "".
func OtherForwarder(names []string) string {
	for _, n := range names {
		for _, p := range otherForwarders {
			if strings.HasPrefix(n, p) {
				return n
			}
		}
	}
	return ""
}
