package firewall

import (
	"errors"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// FlushConntrack deletes the conntrack entries whose original source is in
// subnet, in h's network namespace.
//
// Flows that started before our MASQUERADE rule existed keep their
// un-NATed mapping while a nat hook is already registered (as on any host
// running Docker); deleting the entries makes their next packet go through
// NAT afresh. Connection tracking itself keeps working.
func FlushConntrack(h *netlink.Handle, subnet netip.Prefix) error {
	f := &netlink.ConntrackFilter{}
	ipnet := &net.IPNet{IP: subnet.Addr().AsSlice(), Mask: net.CIDRMask(subnet.Bits(), 32)}
	if err := f.AddIPNet(netlink.ConntrackOrigSrcIP, ipnet); err != nil {
		return err
	}
	_, err := h.ConntrackDeleteFilters(netlink.ConntrackTable, unix.AF_INET, f)
	return err
}

// ConntrackCount returns how many connections the calling thread's network
// namespace tracks (net/netfilter/nf_conntrack_count under procSys, ""
// meaning /proc/sys, which resolves through the calling thread's
// namespace). Without the file conntrack is not loaded, and nothing is
// tracked.
func ConntrackCount(procSys string) (int, error) {
	if procSys == "" {
		procSys = "/proc/sys"
	}
	b, err := os.ReadFile(filepath.Join(procSys, "net", "netfilter", "nf_conntrack_count"))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}
