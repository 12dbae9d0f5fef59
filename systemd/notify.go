// Package systemd holds headnode's systemd integration: the unit and drop-in
// files shipped in the package (in this folder), and the Go side of the
// service protocol (sd_notify readiness, status, watchdog) and of logging to
// the journal.
package systemd

import (
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// Notifier sends service state to systemd. Outside systemd (NOTIFY_SOCKET
// unset) every call is a no-op, so the daemon runs the same by hand.
type Notifier struct {
	// Send is the transport; tests replace it. nil means sd_notify.
	Send func(state string) error
}

func (n Notifier) send(state string) {
	if n.Send != nil {
		_ = n.Send(state)
		return
	}
	_, _ = daemon.SdNotify(false, state)
}

// Ready says the service is up; status is the one-line STATUS= text.
func (n Notifier) Ready(status string) { n.send("READY=1\nSTATUS=" + oneLine(status)) }

// Status updates the line `systemctl status` shows.
func (n Notifier) Status(status string) { n.send("STATUS=" + oneLine(status)) }

// Reloading marks the start of a reload; Ready ends it.
func (n Notifier) Reloading() {
	n.send("RELOADING=1\n" + daemon.SdNotifyMonotonicUsec())
}

// Stopping marks the start of shutdown.
func (n Notifier) Stopping() { n.send("STOPPING=1") }

// Watchdog pings the service watchdog. Call it from the main loop, not
// from a free-running goroutine, so that a hung loop stops the pings.
func (n Notifier) Watchdog() { n.send("WATCHDOG=1") }

// WatchdogInterval returns how often to ping (half of WatchdogSec), or 0
// when systemd's watchdog is off for this process.
func WatchdogInterval() time.Duration {
	d, err := daemon.SdWatchdogEnabled(false)
	if err != nil || d <= 0 {
		return 0
	}
	return d / 2
}

func oneLine(s string) string {
	return strings.ReplaceAll(s, "\n", "; ")
}
