// Package bridge keeps the cluster bridge of a ClusterHAT head node: each
// Pi Zero appears on the head as a USB gadget network interface once it has
// booted, and has to be a port of the bridge that holds the cluster address
// to reach anything. Bridge creates the bridge, takes the ports in as they
// appear, and undoes exactly what it did, from a record kept in the state
// directory.
//
// The interface names are the ones the ClusterHAT images give the gadget
// links, from burtyb/clusterhat-image: the udev rules
// (files/etc/udev/rules.d/90-clusterctrl.rules, commit 08a2e615) name the
// link ethpi<serial> for a node booted from its SD card and ethupi<serial>
// for one booted over USB, and the node's gadget setup
// (files/usr/sbin/composite-clusterctrl, commit 09710ffe) writes the node
// number as the gadget's serial number: ethpi3 is node p3.
package bridge

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/renameio/v2"
	"github.com/headnode/headnode/hw/wake"
	"github.com/headnode/headnode/netcfg/change"
	"github.com/headnode/headnode/netcfg/netlinksafe"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Options configures a Bridge.
type Options struct {
	// Name of the bridge, e.g. "br0". Empty for a Bridge that only
	// removes what an earlier one recorded.
	Name string
	// Ports are name patterns (path.Match syntax) of the interfaces that
	// join the bridge, e.g. "ethpi*".
	Ports []string
	// Exclude, when set, names interfaces that must not join whatever the
	// patterns say: those that carry the default route or on which
	// another DHCP server answers (a LAN). Called from Apply.
	Exclude func(name string) bool
	// StateDir keeps the record of what Apply created, for Remove.
	StateDir string
	// Namespace to work in; nil means the process's own.
	Namespace *netns.NsHandle
}

// Bridge keeps the cluster bridge of a ClusterHAT head node: each Pi Zero
// shows up as a USB gadget network interface (ethpiN, ethupiN when booted
// over USB) only once it has booted, and has to join the bridge that
// holds the cluster address to reach anything.
//
// Apply creates the bridge if needed (STP off, so ports forward at once;
// a fixed MAC address, so the head's address does not move to another MAC
// whenever a node powers off) and puts every matching interface in it. It
// is idempotent. Remove undoes exactly what Apply did: ports it added are
// released, and the bridge is deleted if Apply created it in this boot.
type Bridge struct {
	o Options
	h *netlink.Handle
}

// New opens netlink in the namespace.
func New(o Options) (*Bridge, error) {
	h, err := netlinksafe.Open(o.Namespace)
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	return &Bridge{o: o, h: h}, nil
}

// Close releases the netlink handle.
func (b *Bridge) Close() { b.h.Close() }

// IsPort reports whether an interface of this name belongs in the bridge.
func (b *Bridge) IsPort(name string) bool {
	if name == b.o.Name || b.o.Exclude != nil && b.o.Exclude(name) {
		return false
	}
	for _, p := range b.o.Ports {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// GadgetNode returns the node a ClusterCTRL USB gadget interface belongs
// to: ethpiN and ethupiN are node pN ("ethpi3" -> "p3").
func GadgetNode(ifname string) (string, bool) {
	for _, prefix := range []string{"ethupi", "ethpi"} {
		if n, ok := strings.CutPrefix(ifname, prefix); ok {
			if v, err := strconv.Atoi(n); err == nil && v > 0 && strconv.Itoa(v) == n {
				return "p" + n, true
			}
		}
	}
	return "", false
}

// bridgeRecord is what Apply changed, kept in the state directory.
type bridgeRecord struct {
	Name string `json:"name"`
	// Created: Apply created the bridge, as interface Index during boot
	// BootID. A reboot (or someone else re-creating it) ends our claim.
	Created bool   `json:"created,omitempty"`
	Index   int    `json:"index,omitempty"`
	BootID  string `json:"boot_id,omitempty"`
	// Added are the ports Apply put into the bridge.
	Added []string `json:"added,omitempty"`
}

const bridgeFile = "bridge.json"

func (b *Bridge) loadRecord() (bridgeRecord, error) {
	var r bridgeRecord
	data, err := os.ReadFile(filepath.Join(b.o.StateDir, bridgeFile))
	if errors.Is(err, fs.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return bridgeRecord{}, fmt.Errorf("%s: %w", filepath.Join(b.o.StateDir, bridgeFile), err)
	}
	return r, nil
}

func (b *Bridge) saveRecord(r bridgeRecord) error {
	p := filepath.Join(b.o.StateDir, bridgeFile)
	if r.Name == "" {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(b.o.StateDir, 0o755); err != nil {
		return err
	}
	return renameio.WriteFile(p, append(data, '\n'), 0o644)
}

// Apply makes the bridge exist and be up, and puts every matching
// interface (brought up too) into it. Interfaces already in another bridge
// or bond are left where they are and named in the error.
func (b *Bridge) Apply() ([]change.Change, error) {
	rec, err := b.loadRecord()
	if err != nil || rec.Name != b.o.Name {
		// Unreadable, or for another bridge name: start a new record. The
		// old bridge, if any, stays; Remove with the old name undoes it.
		rec = bridgeRecord{}
	}
	before := rec
	before.Added = slices.Clone(rec.Added)
	rec.Name = b.o.Name
	var changes []change.Change
	br, err := netlinksafe.LinkByName(b.h, b.o.Name)
	if err != nil {
		return nil, err
	}
	if br != nil && br.Type() != "bridge" {
		return nil, fmt.Errorf("%s exists and is a %s, not a bridge; rename it or choose another [bridge] name", b.o.Name, br.Type())
	}
	if br == nil {
		attrs := netlink.LinkAttrs{Name: b.o.Name, HardwareAddr: stableMAC(b.o.Name)}
		if err := b.h.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil {
			return nil, fmt.Errorf("create bridge %s: %w", b.o.Name, err)
		}
		if br, err = netlinksafe.LinkByName(b.h, b.o.Name); err != nil || br == nil {
			return nil, fmt.Errorf("bridge %s vanished after creation: %v", b.o.Name, err)
		}
		rec.Created, rec.Index, rec.BootID, rec.Added = true, br.Attrs().Index, bootID(), nil
		changes = append(changes, change.Change{Kind: change.Bridge, Text: fmt.Sprintf("created bridge %s", b.o.Name)})
	}
	if br.Attrs().Flags&net.FlagUp == 0 {
		if err := b.h.LinkSetUp(br); err != nil {
			return changes, fmt.Errorf("set %s up: %w", b.o.Name, err)
		}
		changes = append(changes, change.Change{Kind: change.Bridge, Text: fmt.Sprintf("set %s up", b.o.Name)})
	}
	links, err := netlinksafe.LinkList(b.h)
	if err != nil {
		return changes, err
	}
	exists := map[string]bool{}
	var elsewhere []string
	for _, l := range links {
		a := l.Attrs()
		exists[a.Name] = true
		if !b.IsPort(a.Name) {
			continue
		}
		what := a.Name
		if node, ok := GadgetNode(a.Name); ok {
			what += " (" + node + ")"
		}
		switch a.MasterIndex {
		case br.Attrs().Index:
		case 0:
			if err := b.h.LinkSetMaster(l, br); err != nil {
				return changes, fmt.Errorf("add %s to %s: %w", a.Name, b.o.Name, err)
			}
			if !slices.Contains(rec.Added, a.Name) {
				rec.Added = append(rec.Added, a.Name)
			}
			changes = append(changes, change.Change{Kind: change.Bridge, Text: fmt.Sprintf("added %s to %s", what, b.o.Name)})
		default:
			elsewhere = append(elsewhere, a.Name)
			continue
		}
		if a.Flags&net.FlagUp == 0 {
			if err := b.h.LinkSetUp(l); err != nil {
				return changes, fmt.Errorf("set %s up: %w", a.Name, err)
			}
			changes = append(changes, change.Change{Kind: change.Bridge, Text: fmt.Sprintf("set %s up", what)})
		}
	}
	// Ports that went away (a node powered off) leave the record; they
	// are added again when they come back.
	rec.Added = slices.DeleteFunc(rec.Added, func(n string) bool { return !exists[n] })
	if !sameRecord(rec, before) {
		if err := b.saveRecord(rec); err != nil {
			return changes, fmt.Errorf("save state: %w", err)
		}
	}
	if len(elsewhere) > 0 {
		return changes, fmt.Errorf("%s already belong to another bridge or bond; left there", strings.Join(elsewhere, ", "))
	}
	return changes, nil
}

func sameRecord(a, b bridgeRecord) bool {
	return a.Name == b.Name && a.Created == b.Created && a.Index == b.Index && a.BootID == b.BootID && slices.Equal(a.Added, b.Added)
}

// Remove undoes what Apply recorded: the bridge is deleted if Apply
// created it (in this boot, and it is still the same interface), else the
// ports Apply added are taken out of it. Interfaces stay up. Without a
// record it does nothing.
func (b *Bridge) Remove() ([]change.Change, error) {
	rec, err := b.loadRecord()
	if err != nil {
		return nil, err
	}
	if rec.Name == "" {
		return nil, nil
	}
	var changes []change.Change
	br, err := netlinksafe.LinkByName(b.h, rec.Name)
	if err != nil {
		return nil, err
	}
	switch {
	case br == nil:
	case rec.Created && br.Attrs().Index == rec.Index && rec.BootID == bootID():
		if err := b.h.LinkDel(br); err != nil {
			return nil, fmt.Errorf("delete bridge %s: %w", rec.Name, err)
		}
		changes = append(changes, change.Change{Kind: change.Bridge, Text: fmt.Sprintf("deleted bridge %s", rec.Name)})
	default:
		for _, name := range rec.Added {
			l, err := netlinksafe.LinkByName(b.h, name)
			if err != nil {
				return changes, err
			}
			if l == nil || l.Attrs().MasterIndex != br.Attrs().Index {
				continue
			}
			if err := b.h.LinkSetNoMaster(l); err != nil {
				return changes, fmt.Errorf("take %s out of %s: %w", name, rec.Name, err)
			}
			changes = append(changes, change.Change{Kind: change.Bridge, Text: fmt.Sprintf("took %s out of %s", name, rec.Name)})
		}
	}
	return changes, b.saveRecord(bridgeRecord{})
}

// Keep applies at once, then on every kick and every interval, until ctx
// ends, reporting each outcome.
func (b *Bridge) Keep(ctx context.Context, kick <-chan struct{}, every time.Duration, report func([]change.Change, error)) {
	t := wake.NewTicker(every)
	defer t.Stop()
	for {
		report(b.Apply())
		select {
		case <-ctx.Done():
			return
		case <-kick:
		case <-t.C:
		}
	}
}

// stableMAC derives the bridge's MAC address from the machine ID and the
// bridge's name: the same across reboots, different between machines,
// locally administered. A bridge without a set address takes the lowest
// port's, so the head's MAC would change as nodes come and go, and every
// node's ARP entry for the head would go stale. nil (let the kernel pick)
// when there is no machine ID.
func stableMAC(name string) net.HardwareAddr {
	id, err := os.ReadFile("/etc/machine-id")
	if err != nil || len(strings.TrimSpace(string(id))) == 0 {
		return nil
	}
	sum := sha256.Sum256([]byte("headnode bridge " + strings.TrimSpace(string(id)) + " " + name))
	mac := net.HardwareAddr(sum[:6])
	mac[0] = mac[0]&^1 | 2 // unicast, locally administered
	return mac
}

func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
