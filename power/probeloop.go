package power

import (
	"context"
	"net/netip"
	"time"

	"github.com/headnode/headnode/hw/wake"
	"github.com/headnode/headnode/power/probe"
)

// RoundWait is the longest a probe round waits for answers (less when the
// interval is shorter: 90 % of it). Nodes on the cluster's own network
// answer an echo or a SYN within milliseconds, from their kernel, however
// busy they are; waiting longer would only delay every report (and so the
// news that a node stopped answering) while any node is silent.
const RoundWait = 250 * time.Millisecond

// RunProbes asks the addresses once per interval with p (nil: no probe,
// report still ticks so grace periods expire) until ctx ends. Each round
// waits at most RoundWait (at most 90% of the interval) for answers, then
// report gets them (nil without a probe) and the time.
//
// ask, when not nil, says at each round whether address i is to be asked
// (the daemon skips nodes whose power it reads back as off: they cannot
// answer, and a round with a silent address waits its whole RoundWait,
// a second wake-up every interval); skipped addresses are reported
// unanswered. ask is called from RunProbes' goroutine.
func RunProbes(ctx context.Context, p probe.Prober, addrs []netip.Addr, interval time.Duration, ask func(i int) bool, report func(answered []bool, at time.Time)) {
	tick := wake.NewTicker(interval)
	defer tick.Stop()
	wait := min(interval*9/10, RoundWait)
	var asked []netip.Addr
	var index []int
	for {
		var answered []bool
		asked, index = asked[:0], index[:0]
		for i, a := range addrs {
			if ask == nil || ask(i) {
				asked, index = append(asked, a), append(index, i)
			}
		}
		if p != nil && len(asked) > 0 {
			// A failed send leaves those addresses unanswered: that is
			// what the round reports.
			got, _ := p.Round(ctx, asked, time.Now().Add(wait))
			answered = make([]bool, len(addrs))
			for k, ok := range got {
				answered[index[k]] = ok
			}
		} else if p != nil && len(addrs) > 0 {
			answered = make([]bool, len(addrs))
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
