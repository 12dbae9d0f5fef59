package bridge

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/headnode/headnode/netcfg/change"
	"github.com/headnode/headnode/netcfg/sandbox"
	"github.com/headnode/headnode/netcfg/sandbox/sandboxtest"
	"github.com/vishvananda/netlink"
)

func TestGadgetNode(t *testing.T) {
	for name, want := range map[string]string{"ethpi1": "p1", "ethpi12": "p12", "ethupi3": "p3", "ethpi0": "", "ethpi": "", "ethpi01": "", "eth0": "", "ethpix": ""} {
		if got, _ := GadgetNode(name); got != want {
			t.Errorf("GadgetNode(%q) = %q, want %q", name, got, want)
		}
	}
}

// bridgeLab is a head namespace with gadget-like interfaces whose other
// ends sit in a node namespace (as the USB gadget's other end sits in the
// Pi Zero).
type bridgeLab struct {
	head, node *sandbox.NS
	n          int
}

func newBridgeLab(t *testing.T) *bridgeLab {
	t.Helper()
	sandboxtest.Need(t)
	prefix := fmt.Sprintf("hnb%d", os.Getpid())
	l := &bridgeLab{}
	var err error
	if l.head, err = sandbox.New(prefix + "h"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.head.Close() })
	if l.node, err = sandbox.New(prefix + "n"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.node.Close() })
	return l
}

// plug makes interface name appear in head, down, as a fresh gadget link.
func (l *bridgeLab) plug(t *testing.T, name string) {
	t.Helper()
	l.n++
	if err := sandbox.Veth(l.head, name, l.node, fmt.Sprintf("usb%d", l.n)); err != nil {
		t.Fatal(err)
	}
	if err := l.head.Down(name); err != nil {
		t.Fatal(err)
	}
}

func (l *bridgeLab) bridge(t *testing.T, dir string) *Bridge {
	t.Helper()
	h := l.head.Handle
	b, err := New(Options{Name: "br0", Ports: []string{"ethpi*", "ethupi*"}, StateDir: dir, Namespace: &h})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

var linkNoise = regexp.MustCompile(`(?m)^\d+: |link-netns \S+|altname \S+|\s+$`)

// links is `ip -d link` minus what changes by itself (counters, indexes).
func links(t *testing.T, ns *sandbox.NS) string {
	t.Helper()
	out, err := ns.Run("ip", "-o", "link", "show")
	if err != nil {
		t.Fatal(err)
	}
	return linkNoise.ReplaceAllString(out, "")
}

func texts(cs []change.Change) string {
	var s []string
	for _, c := range cs {
		s = append(s, c.Text)
	}
	return strings.Join(s, "; ")
}

func masterOf(t *testing.T, ns *sandbox.NS, name string) string {
	t.Helper()
	l, err := ns.NL.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	if l.Attrs().MasterIndex == 0 {
		return ""
	}
	m, err := ns.NL.LinkByIndex(l.Attrs().MasterIndex)
	if err != nil {
		t.Fatal(err)
	}
	return m.Attrs().Name
}

func TestKernelBridgeApplyTwiceAddsLatePortsAndRemoves(t *testing.T) {
	l := newBridgeLab(t)
	dir := t.TempDir()
	l.plug(t, "ethpi1")
	l.plug(t, "ethupi2")
	l.plug(t, "eth5") // not a gadget: stays out
	baseline := links(t, l.head)
	b := l.bridge(t, dir)

	ch, err := b.Apply()
	if err != nil {
		t.Fatal(err)
	}
	want := "created bridge br0; set br0 up; added ethpi1 (p1) to br0; set ethpi1 (p1) up; added ethupi2 (p2) to br0; set ethupi2 (p2) up"
	if got := texts(ch); got != want {
		t.Errorf("first apply:\n got %s\nwant %s", got, want)
	}
	br, err := l.head.NL.LinkByName("br0")
	if err != nil {
		t.Fatal(err)
	}
	mac := br.Attrs().HardwareAddr.String()
	if want := stableMAC("br0"); want != nil && mac != want.String() {
		t.Errorf("bridge MAC %s, want the stable %s", mac, want)
	}
	first := links(t, l.head)
	if ch, err := b.Apply(); err != nil || len(ch) != 0 {
		t.Errorf("second apply changed %q (%v); want nothing", texts(ch), err)
	}
	if second := links(t, l.head); second != first {
		t.Errorf("second apply changed the links:\nfirst:\n%s\nsecond:\n%s", first, second)
	}
	for name, want := range map[string]string{"ethpi1": "br0", "ethupi2": "br0", "eth5": ""} {
		if got := masterOf(t, l.head, name); got != want {
			t.Errorf("%s is in %q, want %q", name, got, want)
		}
	}

	// A node boots: its interface appears; the next apply takes it in,
	// and the bridge keeps its MAC address.
	l.plug(t, "ethpi3")
	if ch, err := b.Apply(); err != nil || texts(ch) != "added ethpi3 (p3) to br0; set ethpi3 (p3) up" {
		t.Errorf("apply after ethpi3 appeared: %q, %v", texts(ch), err)
	}
	br, _ = l.head.NL.LinkByName("br0")
	if got := br.Attrs().HardwareAddr.String(); got != mac {
		t.Errorf("bridge MAC changed from %s to %s when a port joined", mac, got)
	}

	ch, err = b.Remove()
	if err != nil || texts(ch) != "deleted bridge br0" {
		t.Errorf("remove: %q, %v", texts(ch), err)
	}
	// Back to the baseline once ethpi3 (plugged since) is unplugged and
	// the ports are down again (Remove leaves interfaces up).
	if err := l.head.NL.LinkDel(mustLink(t, l.head, "ethpi3")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"ethpi1", "ethupi2"} {
		l.head.Down(name)
	}
	if after := links(t, l.head); after != baseline {
		t.Errorf("after remove, links differ from the baseline:\nbaseline:\n%s\nafter:\n%s", baseline, after)
	}
	if ch, err := b.Remove(); err != nil || len(ch) != 0 {
		t.Errorf("second remove: %q, %v", texts(ch), err)
	}
}

// A bridge that was there before (the user's, or the simulator's) is used
// and kept: remove only takes out the ports we put in.
func TestKernelBridgeKeepsABridgeItDidNotCreate(t *testing.T) {
	l := newBridgeLab(t)
	if err := l.head.Bridge("br0"); err != nil {
		t.Fatal(err)
	}
	l.plug(t, "ethpi1")
	l.plug(t, "ethpi2")
	if err := l.head.Enslave("ethpi2", "br0"); err != nil {
		t.Fatal(err)
	}
	b := l.bridge(t, t.TempDir())
	if ch, err := b.Apply(); err != nil || texts(ch) != "added ethpi1 (p1) to br0; set ethpi1 (p1) up; set ethpi2 (p2) up" {
		t.Errorf("apply: %q, %v", texts(ch), err)
	}
	if ch, err := b.Remove(); err != nil || texts(ch) != "took ethpi1 out of br0" {
		t.Errorf("remove: %q, %v", texts(ch), err)
	}
	if masterOf(t, l.head, "ethpi2") != "br0" {
		t.Error("remove took out a port it had not added")
	}
}

func TestKernelBridgeNameTakenByAnotherKind(t *testing.T) {
	l := newBridgeLab(t)
	l.plug(t, "br0")
	_, err := l.bridge(t, t.TempDir()).Apply()
	if err == nil || err.Error() != "br0 exists and is a veth, not a bridge; rename it or choose another [bridge] name" {
		t.Errorf("got %v", err)
	}
}

func mustLink(t *testing.T, ns *sandbox.NS, name string) netlink.Link {
	t.Helper()
	l, err := ns.NL.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}
