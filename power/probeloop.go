package power

import (
	"context"
	"net/netip"
	"time"

	"github.com/headnode/headnode/power/probe"
)

// RoundWait is the longest a probe round waits for answers (less when the
// interval is shorter: 90 % of it). Nodes on the cluster's own network
// answer an echo or a SYN within milliseconds, from their kernel, however
// busy they are; waiting longer would only delay every report (and so the
// news that a node stopped answering) while any node is silent.
const RoundWait = 250 * time.Millisecond

// RunProbes asks every address once per interval with p (nil: no probe,
// report still ticks so grace periods expire) until ctx ends. Each round
// waits at most RoundWait (at most 90% of the interval) for answers, then
// report gets them (nil without a probe) and the time.
func RunProbes(ctx context.Context, p probe.Prober, addrs []netip.Addr, interval time.Duration, report func(answered []bool, at time.Time)) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	wait := min(interval*9/10, RoundWait)
	for {
		var answered []bool
		if p != nil && len(addrs) > 0 {
			// A failed send leaves those addresses unanswered: that is
			// what the round reports.
			answered, _ = p.Round(ctx, addrs, time.Now().Add(wait))
		}
		if ctx.Err() != nil {
			return
		}
		report(answered, time.Now())
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
