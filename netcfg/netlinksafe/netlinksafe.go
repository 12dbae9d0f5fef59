// Package netlinksafe wraps the sharp edges of github.com/vishvananda/netlink
// once, for every netcfg package that reads links and addresses:
//
//   - a handle opened in a given network namespace, or in the calling
//     thread's when none is given;
//   - dumps (link and address lists) retried when the kernel interrupted
//     them, instead of acting on half a list;
//   - a link that does not exist reported as nil, not as an error.
//
// The retry is what containernetworking/plugins' pkg/netlinksafe does for
// the same reason.
package netlinksafe

import (
	"errors"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Open opens netlink in ns, or in the calling thread's namespace when ns is
// nil (the daemon's normal case; tests and sim pass one).
func Open(ns *netns.NsHandle) (*netlink.Handle, error) {
	if ns != nil {
		return netlink.NewHandleAt(*ns)
	}
	return netlink.NewHandle()
}

// dumpRetries bounds retries of a netlink dump that the kernel interrupted
// because the data changed under it (NLM_F_DUMP_INTR). netlink v1.3.1
// returns partial results with ErrDumpInterrupted; we retry instead of
// acting on a half list.
const dumpRetries = 5

// retryDump runs dump until it completes without interruption. After the
// last retry it returns the partial result with the error, so the caller
// can decide; ErrDumpInterrupted is rare enough that this does not happen in
// practice.
func retryDump[T any](dump func() ([]T, error)) ([]T, error) {
	var out []T
	var err error
	for range dumpRetries {
		out, err = dump()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return out, err
		}
	}
	return out, err
}

// LinkList lists every link in h's namespace.
func LinkList(h *netlink.Handle) ([]netlink.Link, error) {
	return retryDump(h.LinkList)
}

// AddrList lists the addresses of link (every link when nil) in family.
func AddrList(h *netlink.Handle, link netlink.Link, family int) ([]netlink.Addr, error) {
	return retryDump(func() ([]netlink.Addr, error) { return h.AddrList(link, family) })
}

// LinkByName returns (nil, nil) when the link does not exist: a missing
// interface is a normal state (USB Ethernet appears late), not an error.
func LinkByName(h *netlink.Handle, name string) (netlink.Link, error) {
	l, err := h.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil, nil
		}
		return nil, err
	}
	return l, nil
}
