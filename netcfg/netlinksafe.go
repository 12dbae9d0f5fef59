package netcfg

import (
	"errors"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// newHandle opens netlink in ns, or in the calling thread's namespace when
// ns is nil (the daemon's normal case; tests and sim pass one).
func newHandle(ns *netns.NsHandle) (*netlink.Handle, error) {
	if ns != nil {
		return netlink.NewHandleAt(*ns)
	}
	return netlink.NewHandle()
}

// dumpRetries bounds retries of a netlink dump that the kernel interrupted
// because the data changed under it (NLM_F_DUMP_INTR). netlink v1.3.1
// returns partial results with ErrDumpInterrupted; we retry instead of
// acting on a half list, as CNI's pkg/netlinksafe does.
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

func linkList(h *netlink.Handle) ([]netlink.Link, error) {
	return retryDump(h.LinkList)
}

func addrList(h *netlink.Handle, link netlink.Link, family int) ([]netlink.Addr, error) {
	return retryDump(func() ([]netlink.Addr, error) { return h.AddrList(link, family) })
}

// linkByName returns (nil, nil) when the link does not exist: a missing
// interface is a normal state (USB Ethernet appears late), not an error.
func linkByName(h *netlink.Handle, name string) (netlink.Link, error) {
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
