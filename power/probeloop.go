package power

import (
	"context"
	"net/netip"
	"time"

	"github.com/headnode/headnode/power/probe"
)

// RunProbes asks every address once per interval with p (nil: no probe,
// report still ticks so grace periods expire) until ctx ends. Each round
// waits at most 90% of the interval for answers, then report gets them
// (nil without a probe) and the time.
func RunProbes(ctx context.Context, p probe.Prober, addrs []netip.Addr, interval time.Duration, report func(answered []bool, at time.Time)) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		var answered []bool
		if p != nil && len(addrs) > 0 {
			// A failed send leaves those addresses unanswered: that is
			// what the round reports.
			answered, _ = p.Round(ctx, addrs, time.Now().Add(interval*9/10))
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
