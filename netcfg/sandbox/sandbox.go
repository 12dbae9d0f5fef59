// Package sandbox builds throwaway network namespaces joined by veth pairs:
// the test bed for netcfg's kernel tests, the daemon's end-to-end tests and
// `headnode sim`. Everything it creates lives in namespaces it created, so
// the host's own interfaces, addresses and firewall are never touched.
//
// Namespaces are per OS thread. Work inside one runs on a goroutine that
// locks its thread and never unlocks it, so the runtime discards the thread
// afterwards instead of reusing one that is still in the namespace (the rule
// from containernetworking/plugins' pkg/ns README).
package sandbox

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// NS is a named network namespace, visible to `ip netns`.
type NS struct {
	Name   string
	Handle netns.NsHandle
	// NL is a netlink handle whose sockets live in the namespace, so its
	// calls need no thread switching.
	NL *netlink.Handle
}

// Check reports why namespaces cannot be created here, or nil.
func Check() error {
	if os.Geteuid() != 0 {
		return errors.New("network namespace tests need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return errors.New("network namespace tests need `ip` (Debian package iproute2)")
	}
	return nil
}

// New creates the namespace name, replacing a stale one of that name left
// by an earlier run. Loopback is brought up.
func New(name string) (*NS, error) {
	_ = netns.DeleteNamed(name)
	type result struct {
		h   netns.NsHandle
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		// Never unlocked: this thread ends in the new namespace and must
		// die with the goroutine.
		h, err := netns.NewNamed(name)
		ch <- result{h, err}
	}()
	r := <-ch
	if r.err != nil {
		return nil, fmt.Errorf("create netns %s: %w", name, r.err)
	}
	nl, err := netlink.NewHandleAt(r.h)
	if err != nil {
		r.h.Close()
		_ = netns.DeleteNamed(name)
		return nil, fmt.Errorf("netlink in %s: %w", name, err)
	}
	n := &NS{Name: name, Handle: r.h, NL: nl}
	if err := n.Up("lo"); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// Close deletes the namespace; its interfaces go with it (a veth's peer in
// another namespace too).
func (n *NS) Close() error {
	n.NL.Close()
	n.Handle.Close()
	return netns.DeleteNamed(n.Name)
}

// Do runs fn on a thread inside the namespace. Processes fn starts inherit
// the namespace; goroutines fn starts do not.
func (n *NS) Do(fn func() error) error {
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := netns.Set(n.Handle); err != nil {
			ch <- err
			return
		}
		ch <- fn()
	}()
	return <-ch
}

// Command returns a command that runs inside the namespace, through
// `ip netns exec`, which also gives it a matching /sys.
func (n *NS) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// Run runs a command inside the namespace and returns its combined output.
func (n *NS) Run(name string, args ...string) (string, error) {
	out, err := n.Command(name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s in %s: %w: %s", name, strings.Join(args, " "), n.Name, err, out)
	}
	return string(out), nil
}

// Veth creates a veth pair: aName in a, bName in b, both up.
func Veth(a *NS, aName string, b *NS, bName string) error {
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: aName}, PeerName: bName, PeerNamespace: netlink.NsFd(b.Handle)}
	if err := a.NL.LinkAdd(v); err != nil {
		return fmt.Errorf("veth %s/%s-%s/%s: %w", a.Name, aName, b.Name, bName, err)
	}
	if err := a.Up(aName); err != nil {
		return err
	}
	return b.Up(bName)
}

// Bridge creates a bridge, up.
func (n *NS) Bridge(name string) error {
	if err := n.NL.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}); err != nil {
		return fmt.Errorf("bridge %s in %s: %w", name, n.Name, err)
	}
	return n.Up(name)
}

// Enslave puts link into bridge.
func (n *NS) Enslave(link, bridge string) error {
	l, err := n.NL.LinkByName(link)
	if err != nil {
		return err
	}
	b, err := n.NL.LinkByName(bridge)
	if err != nil {
		return err
	}
	return n.NL.LinkSetMaster(l, b)
}

// Up sets a link up.
func (n *NS) Up(link string) error {
	l, err := n.NL.LinkByName(link)
	if err != nil {
		return fmt.Errorf("%s in %s: %w", link, n.Name, err)
	}
	return n.NL.LinkSetUp(l)
}

// Down sets a link down.
func (n *NS) Down(link string) error {
	l, err := n.NL.LinkByName(link)
	if err != nil {
		return fmt.Errorf("%s in %s: %w", link, n.Name, err)
	}
	return n.NL.LinkSetDown(l)
}

// AddAddr adds an address (CIDR notation) to link.
func (n *NS) AddAddr(link, cidr string) error {
	l, err := n.NL.LinkByName(link)
	if err != nil {
		return fmt.Errorf("%s in %s: %w", link, n.Name, err)
	}
	a, err := netlink.ParseAddr(cidr)
	if err != nil {
		return err
	}
	if err := n.NL.AddrAdd(l, a); err != nil {
		return fmt.Errorf("add %s to %s in %s: %w", cidr, link, n.Name, err)
	}
	return nil
}

// DelAddr removes an address (CIDR notation) from link.
func (n *NS) DelAddr(link, cidr string) error {
	l, err := n.NL.LinkByName(link)
	if err != nil {
		return fmt.Errorf("%s in %s: %w", link, n.Name, err)
	}
	a, err := netlink.ParseAddr(cidr)
	if err != nil {
		return err
	}
	if err := n.NL.AddrDel(l, a); err != nil {
		return fmt.Errorf("remove %s from %s in %s: %w", cidr, link, n.Name, err)
	}
	return nil
}

// DefaultRoute sets the default IPv4 route via gw.
func (n *NS) DefaultRoute(gw string) error {
	ip := net.ParseIP(gw)
	if ip == nil {
		return fmt.Errorf("bad gateway %q", gw)
	}
	return n.NL.RouteReplace(&netlink.Route{Gw: ip})
}

// Route adds a route to dst (CIDR) via gw.
func (n *NS) Route(dst, gw string) error {
	_, d, err := net.ParseCIDR(dst)
	if err != nil {
		return err
	}
	return n.NL.RouteReplace(&netlink.Route{Dst: d, Gw: net.ParseIP(gw)})
}

// Listen opens a TCP listener inside the namespace.
func (n *NS) Listen(addr string) (net.Listener, error) {
	var l net.Listener
	err := n.Do(func() error {
		var err error
		l, err = net.Listen("tcp4", addr)
		return err
	})
	return l, err
}

// ServeSourceAddress answers every connection on l with the IPv4 address
// it came from and a newline, until l is closed: the "internet" side of a
// sandbox, which shows whether a connection was NATed.
func ServeSourceAddress(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		fmt.Fprintf(c, "%s\n", c.RemoteAddr().(*net.TCPAddr).IP)
		c.Close()
	}
}

// Dial connects to addr from inside the namespace. The socket stays in the
// namespace it was created in, so the connection can be used from any
// goroutine afterwards.
func (n *NS) Dial(addr string, d net.Dialer) (net.Conn, error) {
	var c net.Conn
	err := n.Do(func() error {
		var err error
		c, err = d.Dial("tcp4", addr)
		return err
	})
	return c, err
}
