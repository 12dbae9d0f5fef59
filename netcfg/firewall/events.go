package firewall

import (
	"context"
	"log/slog"
	"time"

	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// WatchNFTables calls changed whenever any nftables object (table, chain,
// rule) changes in the namespace: the kernel multicasts every nf_tables
// transaction to the NFNLGRP_NFTABLES group, including those made by
// iptables-nft, `nft flush ruleset` and other programs. Read-only commands
// send nothing. A lost subscription (for instance ENOBUFS after a huge
// burst) is also reported as a change, since events were missed.
//
// It runs until ctx is done. This only covers the nf_tables kernel
// interface; iptables-legacy changes are found by nat.Keeper's periodic
// check.
func WatchNFTables(ctx context.Context, ns *netns.NsHandle, log *slog.Logger, changed func()) {
	target := netns.None()
	if ns != nil {
		target = *ns
	}
	for ctx.Err() == nil {
		s, err := nl.SubscribeAt(target, netns.None(), unix.NETLINK_NETFILTER, unix.NFNLGRP_NFTABLES)
		if err != nil {
			log.Warn("cannot subscribe to nftables events; relying on the periodic check", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(30 * time.Second):
			}
			continue
		}
		_ = s.SetReceiveBufferSize(1<<20, true)
		stop := context.AfterFunc(ctx, s.Close)
		for {
			msgs, _, err := s.Receive()
			if err != nil {
				if ctx.Err() == nil {
					log.Debug("nftables event subscription lost; resubscribing", "err", err)
					changed()
				}
				break
			}
			if len(msgs) > 0 {
				changed()
			}
		}
		stop()
		s.Close()
		if ctx.Err() == nil {
			time.Sleep(100 * time.Millisecond)
		}
	}
}
