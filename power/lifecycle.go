package power

import "time"

// Node lifecycle states.
const (
	StateOff         = "off"         // powered off
	StateBooting     = "booting"     // powered, not yet reachable, within the grace period
	StateUp          = "up"          // powered and reachable
	StateUnreachable = "unreachable" // powered, was up and stopped answering, or never answered within the grace period
	StateUnknown     = "unknown"     // no power control for it, and no answer to a probe yet
)

// Lifecycle follows each node through off, booting, up and unreachable
// from three kinds of evidence: its power as read back from the board,
// answers to reachability probes, and (for ClusterHAT USB gadget nodes)
// the carrier of its ethpiN link. It is a plain value owned by one
// goroutine (the daemon loop) and takes the time as an argument, so tests
// drive it with any clock.
type Lifecycle struct {
	// Grace is how long a node may take from power-on to its first
	// answer before it counts as unreachable.
	Grace time.Duration
	// DownAfter is how long without an answer makes a node that was up
	// unreachable.
	DownAfter time.Duration
	// Probing is false when no reachability probe runs: powered nodes
	// are then taken as up unless a gadget link says otherwise.
	Probing bool

	nodes map[string]*life
}

type life struct {
	powered   *bool
	poweredAt time.Time
	lastSeen  time.Time
	gadget    bool // a gadget link exists for it
	linkUp    bool
	wasUp     bool
	state     string
	since     time.Time
}

// NodeView is what users see of one node.
type NodeView struct {
	State     string
	Since     time.Time
	Powered   *bool
	Reachable bool
}

func (l *Lifecycle) node(name string, now time.Time) *life {
	if l.nodes == nil {
		l.nodes = map[string]*life{}
	}
	n, ok := l.nodes[name]
	if !ok {
		n = &life{state: StateUnknown, since: now}
		l.nodes[name] = n
	}
	return n
}

// SetPowered records the read-back power of a node; nil means no power
// control (or its board cannot be read).
func (l *Lifecycle) SetPowered(name string, powered *bool, now time.Time) {
	n := l.node(name, now)
	was := n.powered != nil && *n.powered
	is := powered != nil && *powered
	if is && !was {
		n.poweredAt, n.wasUp, n.lastSeen = now, false, time.Time{}
	}
	n.powered = powered
}

// Seen records a probe round's answer for a node.
func (l *Lifecycle) Seen(name string, answered bool, now time.Time) {
	if answered {
		l.node(name, now).lastSeen = now
	}
}

// SetLink records the state of a node's USB gadget link (exists: there is
// an ethpiN interface for it).
func (l *Lifecycle) SetLink(name string, exists, carrier bool, now time.Time) {
	n := l.node(name, now)
	n.gadget, n.linkUp = exists, exists && carrier
}

// Forget drops nodes not in keep.
func (l *Lifecycle) Forget(keep map[string]bool) {
	for name := range l.nodes {
		if !keep[name] {
			delete(l.nodes, name)
		}
	}
}

func (l *Lifecycle) reachable(n *life, now time.Time) bool {
	if n.linkUp {
		return true
	}
	if !n.lastSeen.IsZero() && now.Sub(n.lastSeen) <= l.DownAfter {
		return true
	}
	return !l.Probing && !n.gadget
}

// Update recomputes every node's state at now and reports whether any
// changed.
func (l *Lifecycle) Update(now time.Time) bool {
	changed := false
	for _, n := range l.nodes {
		st := l.stateOf(n, now)
		if st != n.state {
			n.state, n.since, changed = st, now, true
		}
	}
	return changed
}

func (l *Lifecycle) stateOf(n *life, now time.Time) string {
	switch {
	case n.powered == nil:
		// No power control (network-booted nodes on a switch, a
		// thousand of them): the probe is the only evidence. A node
		// that answers is up; one that answered and stopped is
		// unreachable; one never heard from stays unknown.
		if !l.Probing {
			return StateUnknown
		}
		if n.linkUp || !n.lastSeen.IsZero() && now.Sub(n.lastSeen) <= l.DownAfter {
			n.wasUp = true
			return StateUp
		}
		if n.wasUp {
			return StateUnreachable
		}
		return StateUnknown
	case !*n.powered:
		return StateOff
	case l.reachable(n, now):
		n.wasUp = true
		return StateUp
	case !n.wasUp && now.Sub(n.poweredAt) < l.Grace:
		return StateBooting
	}
	return StateUnreachable
}

// View returns a node's state.
func (l *Lifecycle) View(name string, now time.Time) NodeView {
	n := l.node(name, now)
	reach := n.linkUp || (!n.lastSeen.IsZero() && now.Sub(n.lastSeen) <= l.DownAfter)
	return NodeView{State: n.state, Since: n.since, Powered: n.powered, Reachable: reach}
}
