package gateway

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/headnode/headnode/netcfg/change"
	"github.com/headnode/headnode/netcfg/netlinksafe"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// AddressResult says what EnsureAddress did, for the caller's record.
type AddressResult struct {
	Changes []change.Change
	// Added: want was not on the interface and is now.
	Added bool
	// RemovedOld: the earlier address we had added there is gone.
	RemovedOld bool
}

// EnsureAddress puts want on interface ifname and brings the interface up.
// old is the address an earlier configuration had us add there (invalid if
// none): if it is still present and differs from want, it is removed. Other
// addresses are left alone. A missing interface changes nothing and is not
// an error.
func EnsureAddress(h *netlink.Handle, ifname string, want, old netip.Prefix) (AddressResult, error) {
	var res AddressResult
	link, err := netlinksafe.LinkByName(h, ifname)
	if err != nil || link == nil {
		return res, err
	}
	addrs, err := netlinksafe.AddrList(h, link, netlink.FAMILY_V4)
	if err != nil {
		return res, err
	}
	present := false
	for _, a := range addrs {
		p, ok := prefixOf(a)
		if !ok {
			continue
		}
		if p == want {
			present = true
			continue
		}
		if p == old {
			if err := h.AddrDel(link, &a); err != nil {
				return res, fmt.Errorf("remove old cluster address %s from %s: %w", p, ifname, err)
			}
			res.Changes = append(res.Changes, change.Change{Kind: change.Address, Text: fmt.Sprintf("removed %s from %s (no longer configured)", p, ifname)})
			res.RemovedOld = true
		}
	}
	if !present {
		if err := h.AddrReplace(link, netlinkAddr(want)); err != nil {
			return res, fmt.Errorf("add %s to %s: %w", want, ifname, err)
		}
		res.Added = true
		res.Changes = append(res.Changes, change.Change{Kind: change.Address, Text: fmt.Sprintf("added %s to %s", want, ifname)})
	}
	if link.Attrs().Flags&net.FlagUp == 0 {
		if err := h.LinkSetUp(link); err != nil {
			return res, fmt.Errorf("set %s up: %w", ifname, err)
		}
		res.Changes = append(res.Changes, change.Change{Kind: change.Address, Text: fmt.Sprintf("set %s up", ifname)})
	}
	return res, nil
}

// RemoveAddress takes p off interface ifname. An address or interface that
// is already gone is not an error; the change is reported only when the
// address was there.
func RemoveAddress(h *netlink.Handle, ifname string, p netip.Prefix) ([]change.Change, error) {
	link, err := netlinksafe.LinkByName(h, ifname)
	if err != nil || link == nil {
		return nil, err
	}
	err = h.AddrDel(link, netlinkAddr(p))
	switch {
	case errors.Is(err, unix.EADDRNOTAVAIL):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("remove %s from %s: %w", p, ifname, err)
	}
	return []change.Change{{Kind: change.Address, Text: fmt.Sprintf("removed %s from %s", p, ifname)}}, nil
}

func netlinkAddr(p netip.Prefix) *netlink.Addr {
	return &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 32)}}
}

func prefixOf(a netlink.Addr) (netip.Prefix, bool) {
	if a.IPNet == nil {
		return netip.Prefix{}, false
	}
	ip, ok := netip.AddrFromSlice(a.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := a.Mask.Size()
	return netip.PrefixFrom(ip.Unmap(), ones), true
}
