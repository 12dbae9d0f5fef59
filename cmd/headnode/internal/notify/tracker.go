// Package notify tells people about the cluster without Prometheus: it
// follows the daemon's published status, turns it into events (the health
// changed; a node that should be up stopped answering, or answers again)
// and delivers each event to webhooks, in a generic JSON body or in ntfy's
// publish format, with retries, a rate limit and a bounded queue. It only
// reads published statuses, so nothing it does (a slow or dead receiver
// included) can hold up the daemon's loop.
package notify

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
)

// Event is one thing a person is told.
type Event struct {
	// ID is unique per event, so that a receiver can drop a copy that a
	// retry delivered twice (after a reply that got lost).
	ID   string    `json:"id"`
	Time time.Time `json:"time"`
	Head string    `json:"head"`
	// Kind is "health" or "node"; Subject "health" or the node's name.
	Kind    string `json:"kind"`
	Subject string `json:"subject"`
	// State is the new state (a health state; for nodes "unreachable",
	// "up" or "off"), Previous the one before.
	State    string `json:"state"`
	Previous string `json:"previous"`
	// Severity is "critical", "warning" or "ok" (a recovery).
	Severity string   `json:"severity"`
	Summary  string   `json:"summary"`
	Reasons  []string `json:"reasons,omitempty"`
	// Dropped counts earlier events this receiver lost because too many
	// waited for it (see QueueLimit).
	Dropped int `json:"dropped,omitempty"`
}

// Event kinds.
const (
	KindHealth = "health"
	KindNode   = "node"
)

// Memory is what was last told, kept across daemon restarts (and reloads)
// so that a restart tells nothing again.
type Memory struct {
	Health      string   `json:"health"`
	Unreachable []string `json:"unreachable,omitempty"`
	// Pending are events told but not delivered when the notifier last
	// stopped, by webhook URL; the next start sends them first.
	Pending map[string][]Event `json:"pending,omitempty"`
}

// Tracker turns successive statuses into events. A health state is told
// once it has lasted Settle, so that a blip, and the daemon's own start,
// tell nothing; a node is told about when it becomes unreachable (which
// [power] down_after already debounces) and when it is up or off again.
// A node powered off on request is never unreachable.
type Tracker struct {
	Head   string
	Settle time.Duration

	told    Memory
	pending string // the health state seen, not told yet
	since   time.Time
	last    map[string]string // each node's state in the last status
	seq     int
	prefix  string
}

// NewTracker starts from what was told before (Memory{} for nothing:
// then the first settled health is told unless it is ok).
func NewTracker(head string, settle time.Duration, told Memory, now time.Time) *Tracker {
	if told.Health == "" {
		told.Health = api.HealthOK
	}
	return &Tracker{Head: head, Settle: settle, told: told, last: map[string]string{}, prefix: fmt.Sprintf("%x", now.UnixNano())}
}

// Memory returns what has been told.
func (t *Tracker) Memory() Memory {
	m := t.told
	m.Unreachable = slices.Clone(m.Unreachable)
	m.Pending = nil
	return m
}

// Observe takes a published status and returns the events it makes.
func (t *Tracker) Observe(s *api.Status, now time.Time) []Event {
	var out []Event
	if st := s.Health.State; st != api.HealthStarting && st != api.HealthStopped && st != t.pending {
		t.pending, t.since = st, now
	}
	if ev, ok := t.settled(s.Health.Reasons, now); ok {
		out = append(out, ev)
	}
	if s.Health.State == api.HealthStarting {
		return out // nodes are not followed yet
	}
	present := map[string]bool{}
	for _, n := range s.Power.Nodes {
		present[n.Name] = true
		prev := t.last[n.Name]
		t.last[n.Name] = n.State
		was := slices.Contains(t.told.Unreachable, n.Name)
		switch {
		case !was && n.State == api.NodeUnreachable && n.Requested != "off":
			t.told.Unreachable = append(t.told.Unreachable, n.Name)
			out = append(out, t.event(now, KindNode, n.Name, api.NodeUnreachable, prev, "warning",
				fmt.Sprintf("%s: node %s is powered on but does not answer", t.Head, n.Name), nil))
		case was && (n.State == api.NodeUp || n.State == api.NodeOff):
			t.told.Unreachable = slices.DeleteFunc(t.told.Unreachable, func(x string) bool { return x == n.Name })
			summary := fmt.Sprintf("%s: node %s answers again", t.Head, n.Name)
			if n.State == api.NodeOff {
				summary = fmt.Sprintf("%s: node %s is off now (it was unreachable)", t.Head, n.Name)
			}
			out = append(out, t.event(now, KindNode, n.Name, n.State, api.NodeUnreachable, "ok", summary, nil))
		}
	}
	// Nodes taken out of the configuration are forgotten silently.
	t.told.Unreachable = slices.DeleteFunc(t.told.Unreachable, func(x string) bool { return !present[x] })
	for name := range t.last {
		if !present[name] {
			delete(t.last, name)
		}
	}
	return out
}

// Tick tells a health state that has now lasted Settle; the caller calls
// it at Due.
func (t *Tracker) Tick(reasons []string, now time.Time) []Event {
	if ev, ok := t.settled(reasons, now); ok {
		return []Event{ev}
	}
	return nil
}

// Due is when a pending health state will have settled; zero when none
// is pending.
func (t *Tracker) Due() time.Time {
	if t.pending == "" || t.pending == t.told.Health {
		return time.Time{}
	}
	return t.since.Add(t.Settle)
}

func (t *Tracker) settled(reasons []string, now time.Time) (Event, bool) {
	if t.pending == "" || t.pending == t.told.Health || now.Sub(t.since) < t.Settle {
		return Event{}, false
	}
	prev := t.told.Health
	t.told.Health = t.pending
	severity := map[string]string{api.HealthOK: "ok", api.HealthDegraded: "warning", api.HealthFailed: "critical"}[t.pending]
	summary := fmt.Sprintf("%s: health %s", t.Head, t.pending)
	if t.pending != api.HealthOK && len(reasons) > 0 {
		summary += ": " + strings.Join(reasons, "; ")
	} else if t.pending == api.HealthOK {
		summary += " again (was " + prev + ")"
	}
	var rs []string
	if t.pending != api.HealthOK {
		rs = slices.Clone(reasons)
	}
	return t.event(now, KindHealth, KindHealth, t.pending, prev, severity, summary, rs), true
}

func (t *Tracker) event(now time.Time, kind, subject, state, prev, severity, summary string, reasons []string) Event {
	t.seq++
	return Event{
		ID: fmt.Sprintf("%s-%d", t.prefix, t.seq), Time: now, Head: t.Head, Kind: kind, Subject: subject,
		State: state, Previous: prev, Severity: severity, Summary: summary, Reasons: reasons,
	}
}
