// Package routes follows the IPv4 default routes of the main table through
// netlink (the RTNLGRP_IPV4_ROUTE multicast group, see rtnetlink(7)), so
// that the uplink moves with them: Ethernet-to-Wi-Fi failover, or a USB
// adaptor whose DHCP client installs a route with a lower metric.
//
// Every event, and a relist every minute as a safety net, re-reads the
// whole set: an event says what changed, a relist says what is, and the
// latter is what the role decision needs.
package routes

import (
	"context"
	"log/slog"
	"net"
	"slices"
	"time"

	"github.com/headnode/headnode/hw/wake"
	"github.com/headnode/headnode/netcfg/netlinksafe"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Default is one IPv4 default route.
type Default struct {
	Interface string
	Index     int
	Metric    int
	Gateway   string
}

// Read lists the IPv4 default routes of the main table, lowest metric
// first.
func Read(h *netlink.Handle) ([]Default, error) {
	rs, err := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, err
	}
	names := map[int]string{}
	if ls, err := netlinksafe.LinkList(h); err == nil {
		for _, l := range ls {
			names[l.Attrs().Index] = l.Attrs().Name
		}
	}
	var out []Default
	for _, r := range rs {
		if !isDefault(r) {
			continue
		}
		d := Default{Index: r.LinkIndex, Metric: r.Priority, Interface: names[r.LinkIndex]}
		if r.Gw != nil {
			d.Gateway = r.Gw.String()
		}
		if d.Interface != "" {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(a, b Default) int {
		if a.Metric != b.Metric {
			return a.Metric - b.Metric
		}
		return a.Index - b.Index
	})
	return out, nil
}

func isDefault(r netlink.Route) bool {
	if r.Type != unix.RTN_UNICAST && r.Type != 0 {
		return false
	}
	if r.Dst == nil {
		return true
	}
	ones, _ := r.Dst.Mask.Size()
	return ones == 0 && r.Dst.IP.Equal(net.IPv4zero)
}

// WatchOptions configures Watch.
type WatchOptions struct {
	// Namespace to watch; nil is the process's own.
	Namespace *netns.NsHandle
	Log       *slog.Logger
	// Relist is the safety-net interval; 0 means a minute.
	Relist time.Duration
	// Changed, when set, is called (from Watch's goroutine) after every
	// burst of route updates in any table, default or not: for a check
	// of every route (the cluster subnet's), which would otherwise have
	// to poll.
	Changed func()
}

// Watch calls publish with the default routes at start and whenever they
// change, until ctx ends. Subscription failures are retried; they never
// end the watch.
func Watch(ctx context.Context, o WatchOptions, publish func([]Default)) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Relist == 0 {
		o.Relist = time.Minute
	}
	var last []Default
	first := true
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		h, err := netlinksafe.Open(o.Namespace)
		if err != nil {
			o.Log.Warn("netlink for routes failed; retrying", "err", err)
			if !sleep(ctx, backoff) {
				return
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		relist := func() {
			rs, err := Read(h)
			if err != nil {
				o.Log.Warn("listing routes failed", "err", err)
				return
			}
			if first || !slices.Equal(rs, last) {
				first, last = false, rs
				publish(slices.Clone(rs))
			}
		}
		updates := make(chan netlink.RouteUpdate, 256)
		done := make(chan struct{})
		errc := make(chan error, 1)
		err = netlink.RouteSubscribeWithOptions(updates, done, netlink.RouteSubscribeOptions{
			Namespace: o.Namespace,
			ErrorCallback: func(e error) {
				select {
				case errc <- e:
				default:
				}
			},
		})
		if err != nil {
			h.Close()
			o.Log.Warn("route subscription failed; retrying", "err", err)
			if !sleep(ctx, backoff) {
				return
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		relist()
		tick := wake.NewTicker(o.Relist)
	consume:
		for {
			select {
			case <-ctx.Done():
				break consume
			case _, ok := <-updates:
				if !ok {
					break consume
				}
				// Coalesce a burst (a DHCP client replacing its routes).
				for more := true; more; {
					select {
					case _, ok := <-updates:
						more = ok
					default:
						more = false
					}
				}
				relist()
				if o.Changed != nil {
					o.Changed()
				}
			case e := <-errc:
				o.Log.Warn("route subscription lost; resubscribing", "err", e)
				break consume
			case <-tick.C:
				relist()
			}
		}
		tick.Stop()
		close(done)
		for range updates { // netlink closes it after done
		}
		h.Close()
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}
