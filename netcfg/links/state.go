// Package links reports the state of the head node's network interfaces:
// whether each exists, is up and has carrier, which bridge it is in, and its
// usable addresses. Read and ReadAll take one snapshot; a Watcher follows
// every change through netlink (the rtnetlink multicast groups
// RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR and RTNLGRP_IPV6_IFADDR, see
// rtnetlink(7)) and publishes the whole set each time.
package links

import (
	"net"
	"net/netip"
	"slices"

	"github.com/headnode/headnode/netcfg/netlinksafe"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// State is what the daemon needs to know about one interface.
type State struct {
	Name    string `json:"name"`
	Index   int    `json:"index,omitempty"`
	Exists  bool   `json:"exists"`
	Up      bool   `json:"up"`      // administratively up (IFF_UP)
	Carrier bool   `json:"carrier"` // link detected (IFF_RUNNING)
	// Master is the ifindex of the bridge this interface is enslaved to.
	Master int `json:"master,omitempty"`
	// IPv4 holds the primary, global-scope addresses, not 169.254/16, in
	// the kernel's order: the first one is "the" address of the interface.
	IPv4 []netip.Prefix `json:"ipv4,omitempty"`
	// IPv6 holds global-scope addresses that have passed DAD.
	IPv6 []netip.Prefix `json:"ipv6,omitempty"`
}

// Address returns the interface's primary IPv4 address, if any.
func (l State) Address() (netip.Prefix, bool) {
	if len(l.IPv4) == 0 {
		return netip.Prefix{}, false
	}
	return l.IPv4[0], true
}

// Equal reports whether two states would look the same to a user. Lease
// lifetimes are deliberately not part of State: a DHCP renewal re-adds
// the same address with a fresh lifetime, and that is not a change.
func (l State) Equal(o State) bool {
	return l.Name == o.Name && l.Index == o.Index && l.Exists == o.Exists &&
		l.Up == o.Up && l.Carrier == o.Carrier && l.Master == o.Master &&
		slices.Equal(l.IPv4, o.IPv4) && slices.Equal(l.IPv6, o.IPv6)
}

func stateOf(l netlink.Link, addrs []netlink.Addr) State {
	a := l.Attrs()
	st := State{
		Name:    a.Name,
		Index:   a.Index,
		Exists:  true,
		Up:      a.Flags&net.FlagUp != 0,
		Carrier: a.RawFlags&unix.IFF_RUNNING != 0,
		Master:  a.MasterIndex,
	}
	for _, ad := range addrs {
		if ad.LinkIndex != 0 && ad.LinkIndex != a.Index {
			continue
		}
		if p, ok := usableAddr(ad); ok {
			if p.Addr().Is4() {
				st.IPv4 = append(st.IPv4, p)
			} else {
				st.IPv6 = append(st.IPv6, p)
			}
		}
	}
	return st
}

// usableAddr reports whether an address is one to show a user as "the
// address of this interface": global scope, primary, not link-local (an
// IPv4LL 169.254 fallback is not an address anyone can reach us at), and for
// IPv6 not still tentative.
func usableAddr(ad netlink.Addr) (netip.Prefix, bool) {
	if ad.IPNet == nil || ad.Scope != unix.RT_SCOPE_UNIVERSE {
		return netip.Prefix{}, false
	}
	ip, ok := netip.AddrFromSlice(ad.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ip = ip.Unmap()
	if ip.IsLinkLocalUnicast() || ip.IsLoopback() {
		return netip.Prefix{}, false
	}
	if ad.Flags&unix.IFA_F_SECONDARY != 0 {
		return netip.Prefix{}, false
	}
	if ip.Is6() && ad.Flags&(unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED) != 0 {
		return netip.Prefix{}, false
	}
	ones, _ := ad.Mask.Size()
	return netip.PrefixFrom(ip, ones), true
}

// Read returns the current state of one interface; a missing interface
// is a state (Exists false), not an error.
func Read(h *netlink.Handle, name string) (State, error) {
	l, err := netlinksafe.LinkByName(h, name)
	if err != nil || l == nil {
		return State{Name: name}, err
	}
	addrs, err := netlinksafe.AddrList(h, l, netlink.FAMILY_ALL)
	if err != nil {
		return State{Name: name}, err
	}
	return stateOf(l, addrs), nil
}

// ReadAll returns the state of every interface, keyed by name.
func ReadAll(h *netlink.Handle) (map[string]State, error) {
	links, err := netlinksafe.LinkList(h)
	if err != nil {
		return nil, err
	}
	addrs, err := netlinksafe.AddrList(h, nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, err
	}
	byIndex := map[int][]netlink.Addr{}
	for _, a := range addrs {
		byIndex[a.LinkIndex] = append(byIndex[a.LinkIndex], a)
	}
	out := make(map[string]State, len(links))
	for _, l := range links {
		out[l.Attrs().Name] = stateOf(l, byIndex[l.Attrs().Index])
	}
	return out, nil
}
